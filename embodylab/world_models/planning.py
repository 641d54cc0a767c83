"""Model-predictive control with a learned world model: MPPI over the model's predicted states or rewards.

Every control step the planner samples `samples` action sequences of `horizon` steps around its current
mean (Gaussian, clipped to [-1, 1]), rolls each out in the world model from the current object-centric
state (prior means, no sampling), scores it by the sum of the rewards of the states it reaches (the last
state's weighted by `terminal_weight`), and refits the
mean and std to the best `elites` sequences weighted by exp(score / temperature), `iterations` times
(the MPPI variant of TD-MPC2). It executes the first action of the mean and keeps the rest, shifted, as
the next step's initial mean (warm start), the nominal action (`MPPIConfig.prior`) appended. The
model's recurrent state is filtered, from zero, on the last `context` observed transitions (posterior
latents), exactly as the model was trained: on windows that start from a zero state, not on whole
episodes.

An ensemble (a sequence of models, as PETS plans with; Chua et al. 2018): every sampled plan is rolled out
in each member, each from its own filtered state, and scored by the members' mean return less
`MPPIConfig.disagreement_weight` times their standard deviation, so that the optimiser stops seeking out
the actions where one model's error promises a push the others do not predict (the penalty of MOPO and
MOReL on the members' disagreement).

Two scores (`MPPIConfig.cost`):
- `learned`: the model's reward read-out (trained on the env's reward); with a learned value
  (`embodylab.world_models.value`, TD-MPC2's terminal value) a plan scores
  sum_{h<H} gamma^h r(s_{h+1}) + gamma^H V(s_H), every term read off learned models;
- `shaped`: a cost computed from the model's predicted object and tool-centre-point positions: the target
  object's distance to the goal plus `reach_weight` times the tool centre point's distance to the pushing
  point behind the target (on the far side from the goal, at pushing height). The env's own dense reward
  (cube-to-goal plus tcp-to-cube distance) rewards touching the cube from any side, and a planner that
  sees half a second ahead greedily touches it from the side it is nearest, pushing it away from the goal;
  the pushing point is the short-horizon stand-in for TD-MPC2's learned value of where a plan ends (the
  two scores compared: docs/experiments.md, "MPPI planning"). Every number in it comes from the world
  model's prediction: the planner still learns nothing from the env but the data the model was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from embodylab.core.scene import HALF_EXTENTS, POSITION
from embodylab.rollout import play_episode
from embodylab.world_models.data import (
    CATEGORIES,
    EpisodeRecorder,
    object_centric_observation,
    world_model_dataset_description,
)
from embodylab.world_models.object_centric import AGENT_SLICE, WorldModel, _change_target, advance
from embodylab.world_models.value import StateValue


@dataclass
class MPPIConfig:
    """Sampling-based planning over the learned model (TD-MPC2's MPPI)."""

    horizon: int = 10
    """control steps per planned sequence (0.4 s at 25 Hz)"""
    samples: int = 256
    iterations: int = 4
    elites: int = 32
    temperature: float = 0.5
    """of the elite weights, in units of the elites' score std"""
    terminal_weight: float = 10.0
    """weight of the last state's reward: a crude value of where a plan ends (as if it stayed there for
    that many steps), so that a detour around an object that ends better beats staying put"""
    init_std: float = 0.6
    min_std: float = 0.05
    noise_beta: float = 0.0
    """exponent of the sampling noise's power spectrum along the plan, 1/f^beta (iCEM's coloured noise,
    Pinneri et al. 2020): 0 is white noise, as MPPI samples; 2 (Brownian-like) draws smooth sequences,
    which iCEM found to need far fewer samples on manipulation tasks than white noise"""
    prior: Literal["zero", "data"] = "zero"
    """the nominal action a plan starts from, and each step's new last action: zero, or the mean action
    of the model's training data (`WorldModel.action_mean`). Zero is a half-open gripper, which data
    recorded with closed fingers (LabPush's expert pushes with them) rarely shows, so the model predicts
    its effect worst exactly where a zero-mean plan starts."""
    cost: Literal["learned", "shaped"] = "learned"
    """score of a predicted state: the model's learned reward, or the shaped cost of the predicted
    positions (see the module docstring)"""
    reach_weight: float = 1.0
    """shaped cost: weight of the tcp's distance to the pushing point, against the target's to the goal"""
    push_offset: float = 0.015
    """shaped cost: metres between the target's face and the pushing point (the finger pads' half-width)"""
    push_height: float = 0.02
    """shaped cost: tool-centre-point height of the pushing point (metres, world frame; table top at 0)"""
    travel_height: float = 0.09
    """shaped cost: when above 0, the tcp is drawn to this height (metres) until it is within 2 cm (table
    plane) of the pushing point, so that it comes down behind the target instead of through it: the
    learned model under-predicts pushes, and a planner drawn straight to the pushing point drives through
    the cube (measurements: docs/experiments.md, "MPPI planning")"""
    motion_weight: float = 0.0
    """MPPI's control cost: every plan's score loses `motion_weight` times the sum over its steps of the
    squared motion command (every action entry but the last, which is the gripper's in every lab control
    mode). Without it, wherever the predicted score is flat (a cube resting at its goal, or one the model
    predicts will not move) the best sample is noise at full speed, and the tool flails round an arrived
    cube until it knocks it away"""
    disagreement_weight: float = 0.0
    """planning over an ensemble of models: a plan's score is the members' mean predicted return less this
    times their standard deviation (Bessel-corrected; 0 for a single model). 0 plans on the mean"""

    def __post_init__(self) -> None:
        # Here, not in a planner: `refine` takes the config from the simulator's planner too.
        if self.elites > self.samples:
            raise ValueError(f"elites ({self.elites}) must not exceed samples ({self.samples})")
        if self.prior not in ("zero", "data"):
            raise ValueError(f"unknown MPPI prior {self.prior!r}; valid priors: 'zero', 'data'")
        if not self.motion_weight >= 0.0:  # NaN too
            raise ValueError(f"motion_weight must be a non-negative number; got {self.motion_weight}")
        if not self.noise_beta >= 0.0:
            raise ValueError(f"noise_beta must be a non-negative number; got {self.noise_beta}")
        if not self.disagreement_weight >= 0.0:
            raise ValueError(
                f"disagreement_weight must be a non-negative number; got {self.disagreement_weight}"
            )


def _tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """One observation of `object_centric_observation` as a batch of one scene, trimmed to its objects."""
    n = int(obs["object_mask"].sum())
    return {
        "objects": torch.from_numpy(obs["object_features"][None, :n]),
        "categories": torch.from_numpy(obs["object_categories"][None, :n]),
        "mask": torch.from_numpy(obs["object_mask"][None, :n] > 0.5),
        "agent": torch.from_numpy(obs["proprio"][None, AGENT_SLICE]),
        "goal": torch.from_numpy(obs["goal"][None]),
    }


class MPPIPlanner:
    """MPPI over `model`, or over an ensemble (a sequence of models trained on the same task: see the module
    docstring); call `reset(obs)` at the start of an episode, then `act(obs)` every step. `value`: a learned
    state value that closes every plan (learned cost only; it replaces `terminal_weight`), or one per
    ensemble member (each member's plans are closed by its own, so the members' disagreement counts the
    values' too)."""

    def __init__(
        self,
        model: WorldModel | Sequence[WorldModel],
        config: MPPIConfig = MPPIConfig(),
        seed: int = 0,
        value: StateValue | Sequence[StateValue] | None = None,
    ):
        if value is not None and config.cost != "learned":
            raise ValueError(
                f"a learned value closes plans scored by the learned reward (cost 'learned'), not {config.cost!r}"
            )
        self.models = [model] if isinstance(model, torch.nn.Module) else list(model)
        if not self.models:
            raise ValueError("MPPIPlanner needs at least one world model")
        values = [] if value is None else [value] if isinstance(value, torch.nn.Module) else list(value)
        if len(values) not in (0, 1, len(self.models)):
            raise ValueError(
                f"{len(values)} values for {len(self.models)} models: give one value, or one per model"
            )
        if not values:
            values = [None] * len(self.models)
        elif len(values) == 1:  # one value closes every member's plans
            values = values * len(self.models)
        self.values: list[StateValue | None] = [v if v is None else v.eval() for v in values]
        for member in self.models[1:]:
            if member.action_dim != self.models[0].action_dim:
                raise ValueError(
                    f"ensemble members take actions of different sizes ({self.models[0].action_dim} and "
                    f"{member.action_dim}): they must model the same task"
                )
        for member in self.models:
            member.eval()
        self.model, self.config = self.models[0], config
        self.generator = torch.Generator().manual_seed(seed)
        self.action_dim = self.model.action_dim
        self.nominal = (
            self.model.action_mean.detach().clone()
            if config.prior == "data"
            else torch.zeros(self.action_dim)
        )

    def reset(self, obs: dict[str, np.ndarray]) -> None:
        self.mean = self.nominal.expand(self.config.horizon, -1).clone()
        self.history: list[tuple[dict, torch.Tensor]] = []  # (scene, action) of the last steps
        self.states = [self._filter(model, _tensors(obs)) for model in self.models]

    @property
    def state(self) -> torch.Tensor:
        """The (first) model's recurrent state after the last observed transitions."""
        return self.states[0]

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The action (float32 [A] in [-1, 1]) for the object-centric observation `obs` (see
        `object_centric_observation`)."""
        scene = _tensors(obs)
        self.states = [self._filter(model, scene) for model in self.models]
        c = self.config
        expand = lambda x: x.expand(c.samples, *x.shape[1:])  # noqa: E731 - one scene -> every sample
        start = {k: expand(v) for k, v in scene.items()}
        states = [expand(state) for state in self.states]
        mean = refine(
            self.mean, c, self.generator, lambda actions: self._ensemble_returns(states, start, actions)
        )
        action = mean[0].clone()
        self.mean = torch.cat([mean[1:], self.nominal[None]])
        self.history = [*self.history, (scene, action)][-self.context :]
        return action.numpy().astype(np.float32)

    @property
    def context(self) -> int:
        return int(getattr(self.model.config, "context", 4))

    def _ensemble_returns(self, states: list[torch.Tensor], scene, actions) -> torch.Tensor:
        returns = [
            self._returns(model, state, scene, actions, value)
            for model, state, value in zip(self.models, states, self.values, strict=True)
        ]
        if len(returns) == 1:
            return returns[0]
        stacked = torch.stack(returns)
        score = stacked.mean(0)
        if self.config.disagreement_weight:
            score = score - self.config.disagreement_weight * stacked.std(0)
        return score

    @torch.no_grad()
    def _filter(self, model: WorldModel, scene: dict[str, torch.Tensor]) -> torch.Tensor:
        """`model`'s recurrent state after the last `context` transitions, ending in `scene`."""
        state = model.initial_state(1, scene["objects"].shape[1])
        following = [s for s, _ in self.history[1:]] + ([scene] if self.history else [])
        for (previous, action), current in zip(self.history, following, strict=True):
            target = _change_target(
                model, previous["objects"], previous["agent"], current["objects"], current["agent"]
            )
            state = model.step(
                state,
                previous["objects"],
                previous["categories"],
                previous["mask"],
                previous["agent"],
                action[None],
                previous["goal"],
                target,
            ).state
        return state

    def _returns(
        self, model: WorldModel, state, scene, actions, value: StateValue | None = None
    ) -> torch.Tensor:
        """`model`'s predicted returns [S] of the action sequences `actions` [S, H, A] from `scene`: the
        rewards (or shaped costs) of the states reached, the last one weighted by `terminal_weight`; or,
        with a learned value, their discounted sum closed by the value of the last state."""
        objects, agent = scene["objects"], scene["agent"]
        total = torch.zeros(actions.shape[0])
        horizon = actions.shape[1]
        if self.config.cost == "shaped":
            for t in range(horizon):
                out = model.step(
                    state, objects, scene["categories"], scene["mask"], agent, actions[:, t], scene["goal"],
                    sample=False,
                )  # fmt: skip
                objects, agent, predicted = advance(model, objects, agent, out)
                state = out.state
                weight = self.config.terminal_weight if t == horizon - 1 else 1.0
                total += weight * shaped_reward(
                    predicted, scene["categories"], agent, scene["goal"], self.config
                )
            return total
        rewards = self._predicted_rewards(model, state, scene, actions)
        if value is None:
            for t, (reward, _, _) in enumerate(rewards, 1):
                total += (self.config.terminal_weight if t == horizon else 1.0) * reward
            return total
        # TD-MPC2's score: sum_{h<H} gamma^h r(s_{h+1}) + gamma^H V(s_H).
        discount = value.discount
        for t, predicted in enumerate(rewards, 1):
            total += discount ** (t - 1) * predicted[0]
        reward, objects, agent = predicted  # the last state's
        terminal = value(objects, scene["categories"], scene["mask"], agent, scene["goal"])
        if value.reward_baseline:  # the value learned the return less the last reward held for ever
            terminal = terminal + reward / (1.0 - discount)
        return total + discount**horizon * terminal

    @staticmethod
    def _predicted_rewards(model: WorldModel, state, scene, actions):
        """For t = 1..H: the learned reward of the predicted state s_t [S] (in reward units), and s_t's
        objects and agent, along the plans `actions` [S, H, A] from `scene`."""
        objects, agent = scene["objects"], scene["agent"]
        horizon = actions.shape[1]
        # Step t reads out the reward of the state it starts from; one more step scores the last state.
        for t in range(horizon + 1):
            out = model.step(
                state,
                objects,
                scene["categories"],
                scene["mask"],
                agent,
                actions[:, min(t, horizon - 1)],
                scene["goal"],
                sample=False,
            )
            if t > 0:
                yield out.reward * model.reward_std + model.reward_mean, objects, agent
            if t < horizon:
                objects, agent, _ = advance(model, objects, agent, out)
                state = out.state


def refine(
    mean: torch.Tensor,
    config: MPPIConfig,
    generator: torch.Generator,
    returns: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """MPPI's `iterations` refits of the plan `mean` [H, A]: sample `samples` sequences around it, score
    them with `returns` ([S, H, A] -> [S]) less the control cost (`motion_weight`), refit mean and std to
    the `elites` best weighted by exp(score / temperature). Returns the refined mean; whatever predicts
    the returns (the learned model, or the simulator in `benchmarks/mppi_simulator.py`) plans with the
    same optimiser."""
    c = config
    std = torch.full_like(mean, c.init_std)
    mean = mean.clone()
    for _ in range(c.iterations):
        noise = coloured_noise(c.samples, *mean.shape, c.noise_beta, generator)
        actions = (mean + std * noise).clamp(-1.0, 1.0)
        actions[0] = mean  # the current mean always competes
        scores = returns(actions)
        if c.motion_weight:
            scores = scores - c.motion_weight * actions[..., :-1].square().sum((1, 2))
        elite_scores, elite_index = scores.topk(c.elites)
        elites = actions[elite_index]
        spread = elite_scores.std().clamp_min(1e-6)
        weights = torch.softmax((elite_scores - elite_scores.max()) / (c.temperature * spread), 0)
        mean = (weights[:, None, None] * elites).sum(0)
        std = (weights[:, None, None] * (elites - mean) ** 2).sum(0).sqrt().clamp_min(c.min_std)
    return mean


def coloured_noise(
    samples: int, horizon: int, dim: int, beta: float, generator: torch.Generator
) -> torch.Tensor:
    """[samples, horizon, dim] Gaussian noise of unit variance whose power spectrum along the horizon falls
    as 1/f^beta (beta 0: white), as iCEM samples it (Timmer and König's method, as in the `colorednoise`
    package): random Fourier coefficients scaled by f^(-beta/2) (the lowest frequency's scale for f = 0),
    transformed back and divided by the resulting standard deviation."""
    if beta == 0.0 or horizon < 2:
        return torch.randn(samples, horizon, dim, generator=generator)
    frequencies = torch.fft.rfftfreq(horizon, dtype=torch.float64)
    scale = frequencies.clamp_min(1.0 / horizon) ** (-beta / 2.0)
    real = torch.randn(samples, dim, len(scale), generator=generator, dtype=torch.float64) * scale
    imaginary = torch.randn(samples, dim, len(scale), generator=generator, dtype=torch.float64) * scale
    # The mean (and for even horizons the Nyquist) coefficient is real: its whole variance goes there.
    real_only = [0, len(scale) - 1] if horizon % 2 == 0 else [0]
    imaginary[..., real_only] = 0.0
    real[..., real_only] *= 2**0.5
    # Per time step, a real coefficient adds its variance once, a complex one twice (it and its conjugate).
    counts = torch.full_like(scale, 4.0)
    counts[real_only] = 2.0
    sigma = (counts * scale.square()).sum().sqrt() / horizon
    noise = torch.fft.irfft(torch.complex(real, imaginary), n=horizon) / sigma
    return noise.transpose(1, 2).float().contiguous()


def shaped_reward(
    objects: torch.Tensor,
    categories: torch.Tensor,
    agent: torch.Tensor,
    goal: torch.Tensor,
    config: MPPIConfig,
) -> torch.Tensor:
    """[B] minus the shaped cost of states: objects [B, N, 16] and agent [B, 7] (see `AGENT_SLICE`), goal
    [B, 3] (metres, world frame). The target is the first object of category `target_cube`, else object 0."""
    is_target = categories == CATEGORIES.index("target_cube")
    index = torch.where(
        is_target.any(1), is_target.float().argmax(1), torch.zeros_like(is_target[:, 0], dtype=torch.long)
    )
    target = objects[torch.arange(objects.shape[0]), index]  # [B, 16]
    to_goal = goal[:, :2] - target[:, :2]
    direction = to_goal / to_goal.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    standoff = (
        target[:, HALF_EXTENTS][:, :1] + config.push_offset
    )  # the half-extent along the push, plus the pads
    push_xy = target[:, :2] - direction * standoff
    push_point = torch.cat([push_xy, torch.full_like(push_xy[:, :1], config.push_height)], -1)
    goal_distance = (target[:, POSITION] - goal).norm(dim=-1)
    if config.travel_height > 0:
        near = (agent[:, :2] - push_xy).norm(dim=-1) < 0.02
        push_point[:, 2] = torch.where(
            near, push_point[:, 2], torch.full_like(push_point[:, 2], config.travel_height)
        )
    reach = (agent[:, :3] - push_point).norm(dim=-1)
    return -(goal_distance + config.reach_weight * reach)


def run_planner(
    model: WorldModel | Sequence[WorldModel],
    env_id: str,
    episodes: int,
    *,
    seed: int = 1000,
    config: MPPIConfig = MPPIConfig(),
    env_kwargs: dict | None = None,
    progress: bool = True,
    record: str | Path | None = None,
    record_name: str = "planner",
    value: StateValue | Sequence[StateValue] | None = None,
) -> dict:
    """Plays `episodes` episodes of `env_id` (seeds `seed`, `seed + 1`, ...) with MPPI over `model` (or an
    ensemble: a sequence of models).
    Success is the final step's `info["is_success"]`, as for the scripted experts.

    `record`: also write the episodes as the world-model dataset `embodylab/<Task>/<record_name>-v0` under
    this root (the data of a DAgger round: train the model further on the states its planner visits);
    the result's `dataset` is its data directory. `value`: a learned value that closes every plan (see
    `MPPIPlanner`)."""
    from embodylab.envs.registry import make

    env: gym.Env = make(env_id, **(env_kwargs or {}))
    planner = MPPIPlanner(model, config, seed=seed, value=value)
    recorder = EpisodeRecorder() if record is not None else None
    try:
        result = play_episodes(
            env, planner, range(seed, seed + episodes), f"plan-wm {env_id}", progress, recorder=recorder
        )
        if recorder is not None:
            task = env.spec.id.split("/")[-1].rsplit("-v", 1)[0]
            result["dataset"] = str(
                recorder.write(
                    record,
                    f"embodylab/{task}/{record_name}-v0",
                    env,
                    algorithm_name="embodylab MPPI over a learned world model",
                    description=world_model_dataset_description(
                        f"{episodes} MPPI episodes of {env_id} (seeds {seed}-{seed + episodes - 1})",
                        [None],
                        None,
                    ),
                )
            )
    finally:
        env.close()
    return {"env_id": env_id, **result}


class _ObjectCentricPolicy:
    """A planner over `object_centric_observation`s as a policy of `play_episode`, which hands policies
    the env's own observation: the planner sees the object-centric state of `env` instead."""

    def __init__(self, env: gym.Env, planner):
        self.env, self.planner = env, planner

    def reset(self, observation) -> None:
        self.planner.reset(object_centric_observation(self.env))

    def __call__(self, observation):
        return self.planner.act(object_centric_observation(self.env))


def play_episodes(
    env: gym.Env, planner, seeds, desc: str, progress: bool = True, recorder: EpisodeRecorder | None = None
) -> dict:
    """One episode of `env` per seed with `planner` (anything with `reset(obs)` and `act(obs)` over
    `object_centric_observation`s); success is the final step's `info["is_success"]`. Returns the
    episodes, the success rate and the mean final goal distance. A `recorder` records every episode."""
    results = []
    seeds = list(seeds)
    bar = tqdm(total=len(seeds), desc=desc, unit="episode", disable=not progress)
    for episode_seed in seeds:
        episode = play_episode(
            env,
            _ObjectCentricPolicy(env, planner),
            seed=episode_seed,
            on_reset=None if recorder is None else lambda _obs, _info, s=episode_seed: recorder.start(env, s),
            on_step=None
            if recorder is None
            else lambda t: recorder.add(env, t.action, t.reward, t.terminated, t.truncated, t.info),
        )
        if recorder is not None:
            recorder.finish()
        info = episode.info
        results.append(
            {
                "seed": episode_seed,
                "success": episode.success,
                "final_goal_distance": float(info.get("goal_distance", np.nan)),
                "return": episode.episode_return,
                "steps": episode.length,
            }
        )
        bar.update()
        bar.set_postfix(success=f"{np.mean([r['success'] for r in results]):.2f}")
    bar.close()
    return {
        "episodes": results,
        "success_rate": float(np.mean([r["success"] for r in results])),
        "mean_final_goal_distance": float(np.mean([r["final_goal_distance"] for r in results])),
    }
