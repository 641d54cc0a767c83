"""Baselines of the object-centric world model, in the same code (same loss, same sampling).

- `MonolithicRSSM`: a DreamerV3-style RSSM over the concatenated state: every object slot's features (up to
  a fixed `max_objects`, padded with zeros), their categories one-hot and their mask, the agent, the goal
  and the action in one vector; one GRU state and one Gaussian latent per step; one decoder for every
  slot's change. It cannot take a scene with more objects than `max_objects`.
- `deterministic_config`: the object-centric model with its latent turned off (the deterministic ablation).
- `matched_monolithic_config`: the monolithic RSSM's width chosen so that its parameter count lies
  nearest the object-centric model's (equal capacity for the comparison).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from embodylab.world_models.data import CATEGORIES, FEATURE_DIM
from embodylab.world_models.object_centric import (
    AGENT_DIM,
    DYNAMIC_DIM,
    RELATIVE_DIM,
    ObjectCentricConfig,
    ObjectCentricWorldModel,
    Prediction,
    Step,
    WorldModel,
    _gaussian,
    balanced_kl,
    parameter_count,
)


@dataclass
class MonolithicConfig:
    """Sizes and loss weights of the monolithic RSSM (the loss weights mirror `ObjectCentricConfig`)."""

    hidden: int = 192
    """width of the encoder, the GRU state and the decoders"""
    latent_dim: int = 16
    max_objects: int = 3
    action_dim: int = 4
    goal_dim: int = 3
    free_bits: float = 1.0
    kl_dyn: float = 2.0
    kl_rep: float = 1.0
    reward_weight: float = 1.0
    success_weight: float = 0.1
    nll_beta: float = 0.0
    prior_rollout: bool = False
    """see `ObjectCentricConfig.prior_rollout`"""
    true_change_posterior: bool = False
    """see `ObjectCentricConfig.true_change_posterior`"""
    context: int = 4
    window: int = 20


class MonolithicRSSM(WorldModel):
    """One recurrent state and one latent for the whole scene, over a fixed number of object slots."""

    def __init__(self, config: MonolithicConfig):
        super().__init__(config.action_dim, config.goal_dim)
        self.config = config
        m, d, z = config.max_objects, config.hidden, config.latent_dim
        n_in = (
            m * (FEATURE_DIM + RELATIVE_DIM + len(CATEGORIES) + 1)
            + AGENT_DIM
            + config.action_dim
            + config.goal_dim
        )
        self.encoder = nn.Sequential(nn.Linear(n_in, d), nn.SiLU(), nn.Linear(d, d), nn.SiLU())
        self.cell = nn.GRUCell(d, d)
        self.prior = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 2 * z))
        n_change = m * DYNAMIC_DIM + AGENT_DIM
        self.posterior = nn.Sequential(nn.Linear(d + n_change, d), nn.SiLU(), nn.Linear(d, 2 * z))
        self.decoder = nn.Sequential(
            nn.Linear(d + z + config.action_dim, d), nn.SiLU(), nn.Linear(d, 2 * n_change)
        )
        # Reward and success of the current state, as in the object-centric model.
        self.readout = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 2))

    def initial_state(self, batch_size: int, n_objects: int) -> torch.Tensor:
        self._check_objects(n_objects)
        return self.prior[0].weight.new_zeros(batch_size, self.config.hidden)

    def _check_objects(self, n: int) -> None:
        if n > self.config.max_objects:
            raise ValueError(
                f"the monolithic RSSM takes at most {self.config.max_objects} objects (its input is their "
                f"concatenation); got a scene of {n}"
            )

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, ...] -> [B, max_objects, ...], zeros in the empty slots."""
        missing = self.config.max_objects - x.shape[1]
        return F.pad(x, (0, 0) * (x.dim() - 2) + (0, missing)) if missing else x

    def step(
        self, state, objects, categories, mask, agent, action, goal, target=None, sample=True, prior_path=False
    ) -> Step:  # fmt: skip
        batch, n = objects.shape[:2]
        self._check_objects(n)
        real = mask[..., None].float()
        slots = torch.cat(
            [
                self.normalise_objects(objects) * real,
                self.relative_positions(objects, agent, goal) * real,
                F.one_hot(categories, len(CATEGORIES)) * real,
                real,
            ],
            -1,
        )
        x = torch.cat(
            [self._pad(slots).flatten(1), self.normalise_agent(agent), action, self.normalise_goal(goal)], -1
        )
        encoded = self.encoder(x)
        readout = self.readout(encoded)
        h = self.cell(encoded, state)
        c = self.config
        prior_mean, prior_std = _gaussian(self.prior(h))
        kl = None
        if target is not None:
            change = torch.cat([self._pad(target["objects"] * real).flatten(1), target["agent"]], -1)
            post_mean, post_std = _gaussian(self.posterior(torch.cat([h, change], -1)))
            z = post_mean + post_std * torch.randn_like(post_std)
            kl = balanced_kl(post_mean, post_std, prior_mean, prior_std, c.kl_dyn, c.kl_rep, c.free_bits)[
                :, None
            ]
        else:
            z = prior_mean + prior_std * torch.randn_like(prior_std) if sample else prior_mean
        n_objects_out = c.max_objects * DYNAMIC_DIM
        n_change = n_objects_out + AGENT_DIM

        def decode(z: torch.Tensor) -> Prediction:
            out = self.decoder(torch.cat([h, z, action], -1))
            mean, std = out[:, :n_change], F.softplus(out[:, n_change:]) + 0.1
            slots = (batch, c.max_objects, DYNAMIC_DIM)
            objects_mean = mean[:, :n_objects_out].reshape(slots)[:, :n]
            objects_std = std[:, :n_objects_out].reshape(slots)[:, :n]
            return Prediction(objects_mean, objects_std, mean[:, n_objects_out:], std[:, n_objects_out:])

        objects_mean, objects_std, agent_mean, agent_std = decode(z)
        return Step(
            objects_mean=objects_mean,
            objects_std=objects_std,
            agent_mean=agent_mean,
            agent_std=agent_std,
            reward=readout[:, 0],
            success_logit=readout[:, 1],
            kl=kl,
            kl_mask=mask.new_ones(batch, 1),
            state=h,
            prior_path=decode(prior_mean) if prior_path and target is not None else None,
        )


def deterministic_config(config: ObjectCentricConfig) -> ObjectCentricConfig:
    """The deterministic ablation of `config`: the same model without its latent (and so without KL)."""
    return replace(config, latent_dim=0, residual_latent=False)


def matched_monolithic_config(config: ObjectCentricConfig, max_objects: int) -> MonolithicConfig:
    """The monolithic RSSM over `max_objects` slots whose parameter count is nearest the object-centric
    model of `config` (its hidden width searched in steps of 4; the latent scales with the width)."""
    target = parameter_count(ObjectCentricWorldModel(config))
    best = None
    for hidden in range(16, 1025, 4):
        candidate = MonolithicConfig(
            hidden=hidden,
            latent_dim=max(config.latent_dim, hidden // 12),
            max_objects=max_objects,
            action_dim=config.action_dim,
            goal_dim=config.goal_dim,
            free_bits=config.free_bits,
            kl_dyn=config.kl_dyn,
            kl_rep=config.kl_rep,
            reward_weight=config.reward_weight,
            success_weight=config.success_weight,
            nll_beta=config.nll_beta,
            prior_rollout=config.prior_rollout,
            true_change_posterior=config.true_change_posterior,
            context=config.context,
            window=config.window,
        )
        gap = abs(parameter_count(MonolithicRSSM(candidate)) - target)
        if best is None or gap < best[0]:
            best = (gap, candidate)
        elif gap > best[0]:
            break  # the count grows with the width: past the nearest, every wider one is farther
    return best[1]
