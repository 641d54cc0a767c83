"""Imitation-bootstrapped RL (IBRL; Hu, Mirchandani & Sadigh 2023): a cloned policy proposes actions too.

A policy behaviour-cloned from the demonstrations (`BCProposal`, fitted once before training and then
frozen) proposes an action beside the actor's wherever the agent acts and wherever the critic
bootstraps:

- acting (training and evaluation): of the actor's action and the proposal, the one the critic rates
  higher is executed;
- the TD target: max(Q'(s', π(s')) - α log π(a'|s'), Q'(s', μ(s'))) with the target critics Q' (min of
  the two), so the value of a state already counts what the cloned policy would do from it.

Why on LabPush: a policy cloned from the scripted demonstrations seldom solves the task on its own, but
it pushes the cube, mostly towards the goal, whereas the actor learned by SAC without demonstrations
hovers away from the cube for tens of thousands of steps (measurements: docs/experiments.md,
"Imitation-bootstrapped RL"). The critic-gated proposal puts those pushes in the replay buffer from the
first update, and the actor only has to learn where it does better than the clone. The actor's own loss
is SAC's (the Q-filtered BC term of `embodylab.policies.bc` still applies where `bc_weight` is set).

`ibrl_policy(SAC policy class)` is that class with a `bc_proposal` submodule: its weights, normaliser and
`fitted` flag are saved with the policy's, so a resumed run and `embodylab eval` act exactly as the
trained agent did. `fit_proposal` fits it from demonstration episodes (`demos.load_demo_episodes`).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from torch import nn

from embodylab.policies.normalization import TCP_SLICE, RunningNormExtractor


class BCProposal(nn.Module):
    """A deterministic policy cloned from demonstrations: standardised features (the observation keys and,
    for position goals, the relative goal features of `RunningNormExtractor`), two ReLU layers, tanh.

    The standardisation is fitted once from the demonstrations (`fit_proposal`) and never updated: the
    module stays in eval mode whatever its parent's mode."""

    def __init__(
        self, observation_space: spaces.Space, action_dim: int, hidden: int = 256, tcp_slice=TCP_SLICE
    ):
        super().__init__()
        self.normalizer = RunningNormExtractor(observation_space, relative_goals=True, tcp_slice=tcp_slice)
        self.net = nn.Sequential(
            nn.Linear(self.normalizer.features_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, action_dim), nn.Tanh(),
        )  # fmt: skip
        self.register_buffer("fitted", th.zeros((), dtype=th.bool))
        super().train(False)

    def train(self, mode: bool = True) -> BCProposal:
        # Frozen after fitting: its normaliser must not drift with the replay batches the critic sees.
        return super().train(False)

    def forward(self, observations) -> th.Tensor:
        return self.net(self.normalizer(observations))


def fit_proposal(
    proposal: BCProposal,
    episodes: list[dict],
    *,
    updates: int = 5000,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> float:
    """Fits `proposal` by mean squared error to the actions of the demonstration `episodes` (as
    `demos.load_demo_episodes` returns them), `updates` Adam steps on minibatches drawn with `seed`; sets
    its normaliser to the demonstrations' statistics and marks it fitted. Returns the final epoch's loss
    (mean squared error in [-1, 1] action units, over every demonstrated step).

    Raises:
        ValueError: no demonstrated step, or `updates` below 1."""
    if updates < 1:
        raise ValueError(f"updates must be at least 1; got {updates}")
    observations = _stack_observations(episodes)
    actions = th.as_tensor(np.concatenate([np.asarray(e["actions"]) for e in episodes]), dtype=th.float32)
    if len(actions) == 0:
        raise ValueError("no demonstrated step to clone")
    features = proposal.normalizer._flatten(observations)
    normalizer = proposal.normalizer
    normalizer.running_mean.zero_()
    normalizer.running_var.fill_(1.0)
    normalizer.running_count.zero_()
    normalizer._update(features)

    optimiser = th.optim.Adam(proposal.net.parameters(), lr=learning_rate)
    generator = th.Generator().manual_seed(seed)
    for _ in range(updates):
        index = th.randint(0, len(actions), (min(batch_size, len(actions)),), generator=generator)
        batch = take_rows(observations, index)
        loss = (proposal(batch) - actions[index]).square().sum(1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    proposal.fitted.fill_(True)
    with th.no_grad():
        return float((proposal(observations) - actions).square().sum(1).mean())


def _stack_observations(episodes: list[dict]):
    """Every step's observation (the last, after the final action, left out) as one tensor or dict."""
    first = episodes[0]["observations"]
    if isinstance(first, dict):
        return {
            key: th.as_tensor(np.concatenate([np.asarray(e["observations"][key])[:-1] for e in episodes]))
            for key in first
        }
    return th.as_tensor(np.concatenate([np.asarray(e["observations"])[:-1] for e in episodes]))


def take_rows(observations, index):
    """Rows `index` (a tensor of indices or a slice) of a batch of observations, one tensor or a dict."""
    if isinstance(observations, dict):
        return {key: value[index] for key, value in observations.items()}
    return observations[index]


def min_q(critic: nn.Module, observations, actions: th.Tensor) -> th.Tensor:
    """[B, 1] the minimum over the (twin) `critic`'s Q-networks of Q(observations, actions)."""
    return th.min(th.cat(critic(observations, actions), dim=1), dim=1, keepdim=True)[0]


def better_action(critic: nn.Module, observations, first: th.Tensor, second: th.Tensor) -> th.Tensor:
    """Per row, whichever of the actions `first` and `second` the (twin) `critic` rates higher, by the
    minimum over its Q-networks; ties keep `first`."""
    q_first, q_second = min_q(critic, observations, first), min_q(critic, observations, second)
    return th.where(q_second > q_first, second, first)


class _Proposals:
    """Mixin over an SB3 SAC policy: a `bc_proposal` submodule, and `_predict` that executes whichever of
    the actor's action and the proposal's the critic rates higher, once the proposal is fitted."""

    def __init__(self, *args, bc_hidden: int = 256, **kwargs):
        self.bc_hidden = int(bc_hidden)
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self.bc_proposal = BCProposal(
            self.observation_space,  # type: ignore[attr-defined]
            get_action_dim(self.action_space),  # type: ignore[attr-defined]
            self.bc_hidden,
        ).to(self.device)  # type: ignore[attr-defined]

    def _get_constructor_parameters(self) -> dict:
        return {**super()._get_constructor_parameters(), "bc_hidden": self.bc_hidden}  # type: ignore[misc]

    def _predict(self, observation, deterministic: bool = False) -> th.Tensor:
        action = self.actor(observation, deterministic)  # type: ignore[attr-defined]
        proposal = fitted_proposal(self)  # type: ignore[arg-type]
        if proposal is None:
            return action
        return better_action(self.critic, observation, action, proposal(observation))  # type: ignore[attr-defined]


@cache
def ibrl_policy(policy_class: type) -> type:
    """The SAC policy class `policy_class` (SB3's or a LayerNorm-critic one) with a cloned-policy proposal
    (see the module docstring); it takes `bc_hidden` (width of the proposal's two hidden layers)."""
    return type(f"IBRL{policy_class.__name__}", (_Proposals, policy_class), {"__module__": __name__})


def fitted_proposal(policy: nn.Module) -> BCProposal | None:
    """The policy's fitted `bc_proposal`, or None (no proposal, or not fitted yet)."""
    proposal = getattr(policy, "bc_proposal", None)
    return proposal if proposal is not None and bool(proposal.fitted) else None
