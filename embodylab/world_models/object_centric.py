"""The object-centric stochastic world model: the model, its ELBO loss and its open-loop sampling.

One token per object (its features, normalised, plus a learned category embedding), one for the agent
(the tool centre point's position and velocity and the gripper width, plus the action) and one for the
goal. Each object token sees its position relative to the tool centre point and to the goal, not its
absolute table-plane position (`ObjectCentricConfig.absolute_positions`): contact and reward depend on
such differences, and a network learns them poorly from absolute coordinates. A
transformer mixes the tokens of a step (no positional encoding: the objects are a set, and padded
objects are masked out of attention). Each object token and the agent token then keeps its own recurrent
state (one GRU cell shared by all tokens); each object token also a stochastic latent with a prior
p(z | h) and a posterior q(z | h, observed change) (the agent's arm follows its command deterministically:
`ObjectCentricConfig.agent_latent`); decoders predict each token's change of state in a normalised space (deltas
divided by their dataset std) from the recurrent state and latent, the token as mixed this step, and the
token's own inputs with the agent's state and action (a push happens within a step: through the
recurrent state alone the model predicted a pushed cube no better than standing still). A read-out (a
learned query attending over the mixed tokens) predicts the reward and success of the current state: the
env's reward after a step is that of the state it reaches, so a rollout scores a state by the reward read
out when the model steps from it.

Training maximises the ELBO over short windows with DreamerV3's KL balancing (the dynamics term, which
trains the prior, weighted 2:1 over the representation term, which regularises the posterior; see
`ObjectCentricConfig.kl_rep` for why not DreamerV3's 0.5 / 0.1) and free bits (1 nat per token), and
rolls the model open-loop on its own predictions after a short teacher-forced context, so that the long-horizon predictions the evaluation and
the planner use are what the loss trains. Any number of objects fits: scenes are padded to one count and
masked. `latent_dim=0` gives the deterministic ablation (same code, no latent, no KL).

    model = ObjectCentricWorldModel(ObjectCentricConfig())
    model.set_normalizer(train_batch)
    loss, metrics = world_model_loss(model, batch)
    predictions = open_loop(model, batch, context=4, horizon=25, samples=8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from embodylab.core.scene import ANGULAR_VELOCITY, LINEAR_VELOCITY, POSITION, QUATERNION
from embodylab.world_models.config import ObjectCentricConfig
from embodylab.world_models.data import CATEGORIES, FEATURE_DIM

DYNAMIC_DIM = 13
"""the object features that change: position 3, quaternion 4, linear velocity 3, angular velocity 3."""
AGENT_SLICE = slice(14, 21)
"""the agent's state within the proprioception: tcp position 3, tcp linear velocity 3 (world frame), gripper
width 1 (metres, m/s). The arm's joint angles and velocities are left out: with them the tcp's
open-loop prediction was worse (measurements: docs/experiments.md, "Object-centric world model")."""
AGENT_DIM = 7
RELATIVE_DIM = 8
RELATIVE_SCALE = 0.1
"""metres: relative positions are divided by this (a tenth of the workspace) before entering a network."""
MIN_STD = 1e-3
"""floor (in data units) of the normalisers' stds: a feature that never changes in the data (a cube's
half-extents, its quaternion's x) must not blow up when divided by its std."""


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out))


def _gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, raw_std = params.chunk(2, dim=-1)
    return mean, F.softplus(raw_std) + 0.1


def _kl(mean_q, std_q, mean_p, std_p) -> torch.Tensor:
    """KL(q || p) of diagonal Gaussians, summed over the last axis (nats)."""
    return (torch.log(std_p / std_q) + (std_q**2 + (mean_q - mean_p) ** 2) / (2 * std_p**2) - 0.5).sum(-1)


def balanced_kl(post_mean, post_std, prior_mean, prior_std, kl_dyn: float, kl_rep: float, free_bits: float):
    """DreamerV3's KL balancing with free bits: `kl_dyn` weighs the prior's pull towards the (fixed)
    posterior, `kl_rep` the posterior's towards the (fixed) prior, and each term is clamped from below at
    `free_bits` nats, so the prior learns faster than the representation collapses onto it."""
    dyn = _kl(post_mean.detach(), post_std.detach(), prior_mean, prior_std)
    rep = _kl(post_mean, post_std, prior_mean.detach(), prior_std.detach())
    return kl_dyn * dyn.clamp_min(free_bits) + kl_rep * rep.clamp_min(free_bits)


class Prediction(NamedTuple):
    """One decoding of a step's change (normalised units): objects [B, N, 13] and agent [B, AGENT_DIM]."""

    objects_mean: torch.Tensor
    objects_std: torch.Tensor
    agent_mean: torch.Tensor
    agent_std: torch.Tensor


@dataclass
class Step:
    """One predicted step for a batch of B scenes of N object slots.

    objects_mean/std [B, N, 13] and agent_mean/std [B, AGENT_DIM] are the predicted changes in normalised
    units; kl [B, tokens] (None without a latent) and kl_mask [B, tokens] the balanced KL terms per token;
    reward [B] (normalised) and success_logit [B] of the current state (the input); state the recurrent
    state to carry on with."""

    objects_mean: torch.Tensor
    objects_std: torch.Tensor
    agent_mean: torch.Tensor
    agent_std: torch.Tensor
    reward: torch.Tensor
    success_logit: torch.Tensor
    kl: torch.Tensor | None
    kl_mask: torch.Tensor
    state: torch.Tensor
    prior_path: Prediction | None = None
    """with `step(..., prior_path=True)` and a target: the change decoded from the prior's mean latent
    instead of the posterior's sample (what an open-loop rollout decodes)"""
    deterministic_path: Prediction | None = None
    """with `residual_latent`: the deterministic path's own decoding (with gradient into the trunk; the step's
    objects_mean is it, without gradient, plus the latent's residual)"""


class WorldModel(nn.Module):
    """What the loss and the sampling need of a world model: normalisers, `initial_state`, `step`.

    Subclasses: `ObjectCentricWorldModel` here, `MonolithicRSSM` in `baselines.py`."""

    def __init__(self, action_dim: int, goal_dim: int):
        super().__init__()
        # Normalisers live in buffers, so that they travel with the state dict (weights_only checkpoints).
        self.register_buffer("feature_mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("feature_std", torch.ones(FEATURE_DIM))
        self.register_buffer("delta_std", torch.ones(DYNAMIC_DIM))
        self.register_buffer("agent_mean", torch.zeros(AGENT_DIM))
        self.register_buffer("agent_std", torch.ones(AGENT_DIM))
        self.register_buffer("agent_delta_std", torch.ones(AGENT_DIM))
        self.register_buffer("reward_mean", torch.zeros(()))
        self.register_buffer("reward_std", torch.ones(()))
        # The training data's mean action: a planner's nominal action (`MPPIConfig.prior`).
        self.register_buffer("action_mean", torch.zeros(action_dim))
        self.action_dim, self.goal_dim = action_dim, goal_dim

    @torch.no_grad()
    def set_normalizer(self, batch: dict[str, torch.Tensor]) -> None:
        """Sets the normalisers from a training batch of windows (see `batch_windows`)."""
        mask = batch["mask"][:, None, :].expand(-1, batch["features"].shape[1], -1)
        features = batch["features"][mask]  # [n, 16] real objects only
        deltas = (batch["features"][:, 1:] - batch["features"][:, :-1])[mask[:, 1:]][:, :DYNAMIC_DIM]
        agent = batch["agent"].reshape(-1, AGENT_DIM)
        agent_deltas = (batch["agent"][:, 1:] - batch["agent"][:, :-1]).reshape(-1, AGENT_DIM)
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(MIN_STD))
        self.delta_std.copy_(deltas.std(0).clamp_min(MIN_STD))
        self.agent_mean.copy_(agent.mean(0))
        self.agent_std.copy_(agent.std(0).clamp_min(MIN_STD))
        self.agent_delta_std.copy_(agent_deltas.std(0).clamp_min(MIN_STD))
        self.reward_mean.copy_(batch["rewards"].mean())
        self.reward_std.copy_(batch["rewards"].std().clamp_min(MIN_STD))
        self.action_mean.copy_(batch["actions"].reshape(-1, self.action_dim).mean(0))

    def normalise_objects(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.feature_mean) / self.feature_std

    def normalise_agent(self, agent: torch.Tensor) -> torch.Tensor:
        return (agent - self.agent_mean) / self.agent_std

    def normalise_goal(self, goal: torch.Tensor) -> torch.Tensor:
        # Goals are positions (metres, world frame): they share the objects' position normaliser.
        return (goal - self.feature_mean[:3]) / self.feature_std[:3] if goal.shape[-1] == 3 else goal

    def relative_positions(
        self, objects: torch.Tensor, agent: torch.Tensor, goal: torch.Tensor
    ) -> torch.Tensor:
        """[B, N, RELATIVE_DIM]: each object's position minus the tool centre point's and minus the goal's
        (zeros for a goal that is not a position), and the two distances, over `RELATIVE_SCALE`. The
        distances are given, not left to be learned: rewards are often linear in them, and a network that
        sees them extrapolates to states the data did not cover instead of inventing rewards there."""
        to_agent = objects[..., POSITION] - agent[:, None, :3]
        to_goal = (
            objects[..., POSITION] - goal[:, None] if goal.shape[-1] == 3 else torch.zeros_like(to_agent)
        )
        distances = torch.stack([to_agent.norm(dim=-1), to_goal.norm(dim=-1)], -1)
        return torch.cat([to_agent, to_goal, distances], -1) / RELATIVE_SCALE

    def initial_state(self, batch_size: int, n_objects: int) -> torch.Tensor:
        raise NotImplementedError

    def step(
        self, state, objects, categories, mask, agent, action, goal, target=None, sample=True, prior_path=False
    ) -> Step:  # fmt: skip
        """Predicts the change over one step from the current `objects` [B, N, 16], `agent` [B, AGENT_DIM] and
        `action` [B, A]. With `target` (the observed changes, normalised: objects [B, N, 13], agent
        [B, AGENT_DIM]) the latent comes from the posterior, else from the prior (a sample, or its mean when
        `sample` is False). `prior_path` (with a target) also decodes the prior's mean (`Step.prior_path`)."""
        raise NotImplementedError


class ObjectCentricWorldModel(WorldModel):
    """Tokens per object and for the agent, mixed by a transformer; a GRU state and a latent per token."""

    def __init__(self, config: ObjectCentricConfig):
        super().__init__(config.action_dim, config.goal_dim)
        self.config = config
        d, z = config.d_model, config.latent_dim
        # Without absolute positions the object encoder drops x and y (see `absolute_positions`).
        self.object_inputs = slice(0 if config.absolute_positions else 2, FEATURE_DIM)
        n_object_in = FEATURE_DIM - self.object_inputs.start + RELATIVE_DIM
        self.object_encoder = _mlp(n_object_in, d, d)
        self.category_embedding = nn.Embedding(len(CATEGORIES), d)
        self.agent_encoder = _mlp(AGENT_DIM + config.action_dim, d, d)
        self.goal_encoder = _mlp(config.goal_dim, d, d)
        layer = nn.TransformerEncoderLayer(d, config.n_heads, 2 * d, dropout=0.0, batch_first=True)
        self.mixer = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.cell = nn.GRUCell(d, d)
        if config.residual_latent and (not z or config.agent_latent):
            raise ValueError("residual_latent needs latent_dim > 0 and agent_latent off")
        if z:
            self.prior = _mlp(d, d, 2 * z)
            self.object_change_encoder = nn.Linear(DYNAMIC_DIM, d)
            if not config.residual_latent:  # the residual's posterior reads the objects' residuals only
                self.agent_change_encoder = nn.Linear(AGENT_DIM, d)
            self.posterior = _mlp(2 * d, d, 2 * z)
        # Each decoder also reads its token as mixed this step (skipping the GRU): a push is an interaction of
        # this step (the fingers against the face of a cube now), and through the recurrent state alone the
        # model predicted a pushed cube no better than standing still, even one step ahead.
        n_own = self.object_encoder[0].in_features + AGENT_DIM + config.action_dim
        z_in = 0 if config.residual_latent else z
        self.object_decoder = _mlp(2 * d + z_in + n_own, d, 2 * DYNAMIC_DIM)
        if config.residual_latent:
            self.object_residual_decoder = _mlp(2 * d + z + n_own, d, 2 * DYNAMIC_DIM)
        # The agent's state and action also go straight to its decoder: the arm's response to its command is local,
        # and through the mixer and the recurrent state alone the model under-predicts saturated commands.
        self.agent_decoder = _mlp(2 * d + z_in + AGENT_DIM + config.action_dim, d, 2 * AGENT_DIM)
        # Reward and success read the current scene through one learned query attending over all tokens.
        self.readout_query = nn.Parameter(torch.zeros(1, 1, d))
        self.readout = nn.MultiheadAttention(d, config.n_heads, batch_first=True)
        self.reward_head = _mlp(d, d, 1)
        self.success_head = _mlp(d, d, 1)

    def initial_state(self, batch_size: int, n_objects: int) -> torch.Tensor:
        """[B, 1 + N, d]: the agent's recurrent state, then one per object."""
        return self.readout_query.new_zeros(batch_size, 1 + n_objects, self.config.d_model)

    def object_inputs_of(self, objects, agent, goal) -> torch.Tensor:
        """[B, N, inputs]: what the object encoder reads of each object (normalised)."""
        own = self.normalise_objects(objects)[..., self.object_inputs]
        return torch.cat([own, self.relative_positions(objects, agent, goal)], -1)

    def object_tokens(self, objects, categories, agent, goal) -> torch.Tensor:
        """[B, N, d]: the object tokens before mixing. Without `absolute_positions` they are unchanged when
        the objects, the tool centre point and the goal all shift by one offset in the table plane."""
        return self.object_encoder(self.object_inputs_of(objects, agent, goal)) + self.category_embedding(
            categories
        )

    def step(
        self, state, objects, categories, mask, agent, action, goal, target=None, sample=True, prior_path=False
    ) -> Step:  # fmt: skip
        batch, n = objects.shape[:2]
        object_tokens = self.object_tokens(objects, categories, agent, goal)
        agent_token = self.agent_encoder(torch.cat([self.normalise_agent(agent), action], -1))[:, None]
        goal_token = self.goal_encoder(self.normalise_goal(goal))[:, None]
        tokens = torch.cat([agent_token, object_tokens, goal_token], 1)
        real = torch.cat([mask.new_ones(batch, 1), mask, mask.new_ones(batch, 1)], 1)
        mixed = self.mixer(tokens, src_key_padding_mask=~real)
        recurrent = mixed[:, : 1 + n]
        h = self.cell(recurrent.reshape(-1, recurrent.shape[-1]), state.reshape(-1, state.shape[-1]))
        h = h.reshape(batch, 1 + n, -1)
        if self.config.residual_latent:
            return self._residual_step(
                h, recurrent, mixed, real, objects, mask, agent, action, goal, target, sample
            )
        kl, prior_mean = None, None
        if self.config.latent_dim:
            prior_mean, prior_std = _gaussian(self.prior(h))
            if target is not None:
                change = torch.cat(
                    [
                        self.agent_change_encoder(target["agent"])[:, None],
                        self.object_change_encoder(target["objects"]),
                    ],
                    1,
                )
                post_mean, post_std = _gaussian(self.posterior(torch.cat([h, change], -1)))
                z = post_mean + post_std * torch.randn_like(post_std)
                c = self.config
                kl = balanced_kl(post_mean, post_std, prior_mean, prior_std, c.kl_dyn, c.kl_rep, c.free_bits)
            else:
                z = prior_mean + prior_std * torch.randn_like(prior_std) if sample else prior_mean
        own_agent = torch.cat([self.normalise_agent(agent), action], -1)
        own_objects = torch.cat(
            [self.object_inputs_of(objects, agent, goal), own_agent[:, None].expand(-1, n, -1)], -1
        )

        def decode(z: torch.Tensor | None) -> Prediction:
            if z is None:
                features = torch.cat([h, recurrent], -1)
            else:
                if not self.config.agent_latent:
                    z = torch.cat([torch.zeros_like(z[:, :1]), z[:, 1:]], 1)
                features = torch.cat([h, z, recurrent], -1)
            agent_out = _gaussian(self.agent_decoder(torch.cat([features[:, 0], own_agent], -1)))
            objects_out = _gaussian(self.object_decoder(torch.cat([features[:, 1:], own_objects], -1)))
            return Prediction(*objects_out, *agent_out)

        objects_mean, objects_std, agent_mean, agent_std = decode(z if self.config.latent_dim else None)
        along_prior = (
            decode(prior_mean) if prior_path and target is not None and prior_mean is not None else None
        )
        reward, success_logit = self._read_out(mixed, real)
        return Step(
            objects_mean=objects_mean,
            objects_std=objects_std,
            agent_mean=agent_mean,
            agent_std=agent_std,
            reward=reward,
            success_logit=success_logit,
            kl=kl,
            kl_mask=real[:, : 1 + n]
            if self.config.agent_latent
            else torch.cat([torch.zeros_like(mask[:, :1]), mask], 1),
            state=h,
            prior_path=along_prior,
        )

    def _read_out(self, mixed, real) -> tuple[torch.Tensor, torch.Tensor]:
        """The (normalised) reward [B] and success logit [B] of the current scene, from the mixed tokens."""
        query = self.readout_query.expand(mixed.shape[0], -1, -1)
        pooled, _ = self.readout(query, mixed, mixed, key_padding_mask=~real, need_weights=False)
        return self.reward_head(pooled[:, 0])[:, 0], self.success_head(pooled[:, 0])[:, 0]

    def _residual_step(
        self, h, recurrent, mixed, real, objects, mask, agent, action, goal, target, sample
    ) -> Step:
        """`step` with `residual_latent`: the deterministic path, plus a latent's residual read without gradient."""
        n = objects.shape[1]
        own_agent = torch.cat([self.normalise_agent(agent), action], -1)
        own_objects = torch.cat(
            [self.object_inputs_of(objects, agent, goal), own_agent[:, None].expand(-1, n, -1)], -1
        )
        features = torch.cat([h, recurrent], -1)
        agent_mean, agent_std = _gaussian(self.agent_decoder(torch.cat([features[:, 0], own_agent], -1)))
        base_mean, base_std = _gaussian(self.object_decoder(torch.cat([features[:, 1:], own_objects], -1)))
        # The latent's head sees the trunk without gradient: the trunk learns only what the ablation learns.
        object_h = h[:, 1:].detach()
        prior_mean, prior_std = _gaussian(self.prior(object_h))
        kl = None
        if target is not None:
            residual = target["objects"] - base_mean.detach()
            post_in = torch.cat([object_h, self.object_change_encoder(residual)], -1)
            post_mean, post_std = _gaussian(self.posterior(post_in))
            z = post_mean + post_std * torch.randn_like(post_std)
            c = self.config
            kl = balanced_kl(post_mean, post_std, prior_mean, prior_std, c.kl_dyn, c.kl_rep, c.free_bits)
            kl = torch.cat([torch.zeros_like(kl[:, :1]), kl], 1)  # the agent's token holds no latent
        else:
            z = prior_mean + prior_std * torch.randn_like(prior_std) if sample else prior_mean
        head_in = torch.cat([features[:, 1:].detach(), z, own_objects.detach()], -1)
        residual_mean, residual_std = _gaussian(self.object_residual_decoder(head_in))
        reward, success_logit = self._read_out(mixed, real)
        return Step(
            objects_mean=base_mean.detach() + residual_mean,
            objects_std=residual_std,
            agent_mean=agent_mean,
            agent_std=agent_std,
            reward=reward,
            success_logit=success_logit,
            kl=kl,
            kl_mask=torch.cat([torch.zeros_like(mask[:, :1]), mask], 1),
            state=h,
            deterministic_path=Prediction(base_mean, base_std, agent_mean, agent_std),
        )


# ---- data windows ------------------------------------------------------------------------------------
def batch_windows(
    data, episodes, starts, length: int, n_objects: int | None = None
) -> dict[str, torch.Tensor]:
    """Windows of `length` steps from `WorldModelData` `data` as tensors: features [B, L+1, N, 16],
    categories [B, N], mask [B, N], agent [B, L+1, 7], goal [B, 3], actions [B, L, A], rewards [B, L],
    success [B, L]. `n_objects` trims the object slots (default: the most real objects of the batch)."""
    import numpy as np

    episodes, starts = np.asarray(episodes), np.asarray(starts)
    n = int(data.mask[episodes].sum(1).max()) if n_objects is None else n_objects
    states = starts[:, None] + np.arange(length + 1)
    steps = starts[:, None] + np.arange(length)
    e = episodes[:, None]
    return {
        "features": torch.from_numpy(data.features[e, states, :n]),
        "categories": torch.from_numpy(data.categories[episodes, :n]),
        "mask": torch.from_numpy(data.mask[episodes, :n]),
        "agent": torch.from_numpy(data.proprio[e, states, AGENT_SLICE]),
        "goal": torch.from_numpy(data.goal[episodes, 0]),
        "actions": torch.from_numpy(data.actions[e, steps]),
        "rewards": torch.from_numpy(data.rewards[e, steps]),
        "success": torch.from_numpy(data.success[e, steps]),
    }


def sample_windows(data, batch_size: int, length: int, rng) -> dict[str, torch.Tensor]:
    """`batch_size` random windows of `length` steps that lie within their episodes (numpy Generator `rng`)."""
    import numpy as np

    usable = np.flatnonzero(data.lengths >= length)
    if not len(usable):
        raise ValueError(f"no episode has {length} steps; the longest has {int(data.lengths.max())}")
    episodes = rng.choice(usable, batch_size)
    starts = rng.integers(0, data.lengths[episodes] - length + 1)
    return batch_windows(data, episodes, starts, length)


# ---- loss --------------------------------------------------------------------------------------------
def _apply(model: WorldModel, objects, agent, out: Step | Prediction) -> tuple[torch.Tensor, torch.Tensor]:
    """The next objects [B, N, 16] and agent [B, AGENT_DIM] from the predicted (normalised) change means."""
    dynamic = objects[..., :DYNAMIC_DIM] + out.objects_mean * model.delta_std
    quaternion = F.normalize(dynamic[..., QUATERNION], dim=-1)
    velocities = dynamic[..., LINEAR_VELOCITY.start : ANGULAR_VELOCITY.stop]
    next_objects = torch.cat([dynamic[..., POSITION], quaternion, velocities, objects[..., DYNAMIC_DIM:]], -1)
    return next_objects, agent + out.agent_mean * model.agent_delta_std


def advance(model: WorldModel, objects, agent, out: Step) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One open-loop step: the objects and agent to roll on, and the predicted objects [B, N, 16].

    They are one and the same except with `residual_latent`, where, as in training, the trunk rolls on its
    deterministic path and the latent's residual is the true state's deviation from that path: read out on
    top of it, never rolled on (rolling on it would add the correction again at every later step)."""
    if out.deterministic_path is None:
        objects, agent = _apply(model, objects, agent, out)
        return objects, agent, objects
    predicted, _ = _apply(model, objects, agent, out)
    objects, agent = _apply(model, objects, agent, out.deterministic_path)
    return objects, agent, predicted


def _change_target(model: WorldModel, objects, agent, next_objects, next_agent) -> dict[str, torch.Tensor]:
    return {
        "objects": (next_objects[..., :DYNAMIC_DIM] - objects[..., :DYNAMIC_DIM]) / model.delta_std,
        "agent": (next_agent - agent) / model.agent_delta_std,
    }


def _gaussian_nll(target, mean, std, beta: float = 0.0) -> torch.Tensor:
    """Per-dimension Gaussian negative log-likelihood (nats), summed over the last axis; with `beta`, each
    dimension's weighted by std^(2 beta) (the β-NLL, see `ObjectCentricConfig.nll_beta`)."""
    nll = 0.5 * ((target - mean) / std) ** 2 + torch.log(std) + 0.9189385332046727
    if beta:
        nll = nll * std.detach() ** (2.0 * beta)
    return nll.sum(-1)


def world_model_loss(model: WorldModel, batch: dict[str, torch.Tensor], context: int | None = None):
    """Negative ELBO of a batch of windows (see `batch_windows`), averaged per step; and its parts.

    The first `context` steps take the true states as input (teacher forcing); after them the model takes
    its own predictions, with gradients through them, so that open-loop errors are what it learns to
    avoid. Every step's loss compares the predicted change with the true next state from wherever the
    model stands. With `prior_rollout` each open-loop step also decodes the prior's mean latent, adds that
    prediction's NLL, and rolls on it, as `open_loop` and the planner do."""
    config = model.config
    context = config.context if context is None else context
    beta = config.nll_beta
    features, agent_states, mask = batch["features"], batch["agent"], batch["mask"]
    batch_size, n = mask.shape
    steps = batch["actions"].shape[1]
    state = model.initial_state(batch_size, n)
    objects, agent = features[:, 0], agent_states[:, 0]
    real = mask.float()
    totals = {"objects_nll": 0.0, "agent_nll": 0.0, "kl": 0.0, "reward": 0.0, "success": 0.0}
    for t in range(steps):
        target = _change_target(model, objects, agent, features[:, t + 1], agent_states[:, t + 1])
        seen = target  # what the posterior reads of the step
        if config.true_change_posterior:
            seen = _change_target(
                model, features[:, t], agent_states[:, t], features[:, t + 1], agent_states[:, t + 1]
            )
        open_loop_step = t + 1 >= context
        out = model.step(
            state, objects, batch["categories"], mask, agent, batch["actions"][:, t], batch["goal"], seen,
            prior_path=config.prior_rollout and open_loop_step,
        )  # fmt: skip
        # The posterior's decoding (the ELBO's), then the prior's mean where decoded: the one rolled on. With
        # `residual_latent`, the ELBO's decoding of the objects, then the deterministic path (rolled on), whose
        # agent prediction is the step's.
        if out.deterministic_path is not None:
            paths = [out, out.deterministic_path]
        else:
            paths = [out] if out.prior_path is None else [out, out.prior_path]
        for path in paths:
            objects_nll = _gaussian_nll(target["objects"], path.objects_mean, path.objects_std, beta)
            objects_nll = (objects_nll * real).sum(1)
            totals["objects_nll"] = totals["objects_nll"] + (objects_nll / real.sum(1).clamp_min(1)).mean()
            if path is out and out.deterministic_path is not None:
                continue
            totals["agent_nll"] = (
                totals["agent_nll"]
                + _gaussian_nll(target["agent"], path.agent_mean, path.agent_std, beta).mean()
            )
        if out.kl is not None:
            kl_real = out.kl_mask.float()
            totals["kl"] = totals["kl"] + ((out.kl * kl_real).sum(1) / kl_real.sum(1).clamp_min(1)).mean()
        if t > 0:  # the reward and success of the input state: those of the step that reached it
            reward_target = (batch["rewards"][:, t - 1] - model.reward_mean) / model.reward_std
            totals["reward"] = totals["reward"] + F.mse_loss(out.reward, reward_target)
            totals["success"] = totals["success"] + F.binary_cross_entropy_with_logits(
                out.success_logit, batch["success"][:, t - 1]
            )
        state = out.state
        if not open_loop_step:
            objects, agent = features[:, t + 1], agent_states[:, t + 1]
        else:
            objects, agent = _apply(model, objects, agent, paths[-1])
    # Reward and success have a target from the second step of the window on.
    parts = {k: v / (steps - 1 if k in ("reward", "success") else steps) for k, v in totals.items()}
    loss = (
        parts["objects_nll"]
        + parts["agent_nll"]
        + parts["kl"]
        + config.reward_weight * parts["reward"]
        + config.success_weight * parts["success"]
    )
    return loss, {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}


# ---- open-loop sampling ------------------------------------------------------------------------------
@torch.no_grad()
def open_loop(
    model: WorldModel,
    batch: dict[str, torch.Tensor],
    context: int,
    horizon: int,
    samples: int = 1,
    mode: bool = False,
) -> dict[str, torch.Tensor]:
    """Filters `context` true steps of each window, then predicts `horizon` steps open-loop from the true
    actions, `samples` times (latents from the prior; `mode` takes the prior's mean instead of samples).

    Returns positions [K, B, horizon, N, 3] (metres, world frame), their per-step predicted std
    [K, B, horizon, N, 3] (metres, the decoder's one-step std), rewards [K, B, horizon] (the predicted
    reward of the state each predicted step starts from) and tcp [K, B, horizon, 3] (the predicted tool
    centre point, metres, world frame)."""
    features, agent_states, mask = batch["features"], batch["agent"], batch["mask"]
    batch_size, n = mask.shape
    repeat = lambda x: x.repeat(samples, *([1] * (x.dim() - 1)))  # noqa: E731 - [B, ...] -> [K*B, ...]
    features, agent_states, mask = repeat(features), repeat(agent_states), repeat(mask)
    categories, goal, actions = repeat(batch["categories"]), repeat(batch["goal"]), repeat(batch["actions"])
    state = model.initial_state(samples * batch_size, n)
    for t in range(context):
        objects, agent = features[:, t], agent_states[:, t]
        target = _change_target(model, objects, agent, features[:, t + 1], agent_states[:, t + 1])
        state = model.step(state, objects, categories, mask, agent, actions[:, t], goal, target).state
    objects, agent = features[:, context], agent_states[:, context]
    positions, stds, rewards, tcp = [], [], [], []
    for t in range(context, context + horizon):
        out = model.step(state, objects, categories, mask, agent, actions[:, t], goal, sample=not mode)
        objects, agent, predicted = advance(model, objects, agent, out)
        state = out.state
        positions.append(predicted[..., POSITION])
        tcp.append(agent[..., :3])
        stds.append(out.objects_std[..., POSITION] * model.delta_std[POSITION])
        rewards.append(out.reward * model.reward_std + model.reward_mean)
    shape = (samples, batch_size, horizon)
    return {
        "positions": torch.stack(positions, 1).reshape(*shape, n, 3),
        "stds": torch.stack(stds, 1).reshape(*shape, n, 3),
        "rewards": torch.stack(rewards, 1).reshape(*shape),
        "tcp": torch.stack(tcp, 1).reshape(*shape, 3),
    }


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
