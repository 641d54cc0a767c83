"""SAC with a behaviour-cloning term on the demonstration rows, gated by a Q-filter.

Nair et al. 2018 ("Overcoming exploration in reinforcement learning with demonstrations") add to the
actor's loss, on the demonstration part of each batch, `bc_weight * |pi(s) - a_demo|^2`, counted only where
the critic rates the demonstrated action above the policy's own (`Q(s, a_demo) > Q(s, pi(s))`). The
filter lets the policy outgrow imperfect demonstrations, and it drops rows whose HER-relabelled goal the
demonstrated action does not serve. Symmetric sampling alone leaves the actor to discover the push from
Q-gradients of a critic that has to learn it first; the BC term hands the actor the expert's motion at
once, and the critic's estimates then follow from the policy's own successes.

`DemoSAC` is SB3's SAC with that term; `train` is SB3 2.9's `SAC.train` with the lines marked BC added,
and, where the policy has a fitted cloned-policy proposal (`embodylab.policies.ibrl`), IBRL's TD target.
It needs a replay buffer whose samples end with `demo_rows(batch_size)` demonstration rows
(`embodylab.policies.demos`); with any other buffer, or `bc_weight=0`, and no fitted proposal, it is
plain SAC.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from embodylab.policies.ibrl import fitted_proposal, min_q, take_rows


class DemoSAC(SAC):
    """SAC plus the Q-filtered behaviour-cloning loss of Nair et al. 2018 on demonstration rows.

    Args:
        bc_weight: weight of the mean squared error (in normalised [-1, 1] action units) between the
            policy's mean action and the demonstrated one, relative to the SAC actor loss.
        bc_q_alpha: None: the SAC actor loss as it is; a value α: the SAC actor loss times
            α / mean |Q(s, π(s))| over the batch (TD3+BC, Fujimoto & Gu 2021, who use α = 2.5).
        action_l2: weight of the mean squared sampled action (in [-1, 1] units) added to the actor loss, as
            DDPG+HER's `action_l2` (1.0 there); 0 leaves it out. Applies with or without demonstrations.
    """

    def __init__(
        self,
        *args,
        bc_weight: float = 1.0,
        bc_q_alpha: float | None = None,
        action_l2: float = 0.0,
        **kwargs,
    ):
        self.bc_weight = float(bc_weight)
        self.action_l2 = float(action_l2)
        self.bc_q_alpha = None if bc_q_alpha is None else float(bc_q_alpha)
        super().__init__(*args, **kwargs)

    def _demo_rows(self, batch_size: int) -> int:
        rows = getattr(self.replay_buffer, "demo_rows", None)
        return rows(batch_size) if rows is not None and self.bc_weight > 0 else 0

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)

        ent_coef_losses, ent_coefs = [], []
        actor_losses, critic_losses, bc_losses, bc_accepted = [], [], [], []
        n_demo = self._demo_rows(batch_size)
        proposal = fitted_proposal(self.policy)
        proposal_chosen: list[float] = []

        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()

            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(replay_data.next_observations)
                next_q_values = th.cat(self.critic_target(replay_data.next_observations, next_actions), dim=1)
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                if proposal is not None:  # IBRL: bootstrap from the better of actor and cloned policy
                    proposed = proposal(replay_data.next_observations)
                    proposed_q = min_q(self.critic_target, replay_data.next_observations, proposed)
                    proposal_chosen.append((proposed_q > next_q_values).float().mean().item())
                    next_q_values = th.maximum(next_q_values, proposed_q)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = 0.5 * sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            if self.action_l2:  # DDPG+HER's penalty: where Q is flat, small actions keep the hand near
                actor_loss = actor_loss + self.action_l2 * (actions_pi**2).mean()
            if n_demo and self.bc_q_alpha is not None:
                # TD3+BC's scale: the RL term in units of the batch's mean |Q|, so that the BC term's
                # relative weight stays put while |Q| grows or shrinks over training.
                actor_loss = actor_loss * (self.bc_q_alpha / min_qf_pi.abs().mean().detach().clamp(min=1e-3))
            if n_demo:  # BC: the last n_demo rows are demonstrations
                demo_actions = replay_data.actions[-n_demo:]
                with th.no_grad():
                    # The Q-filter, with the (just updated) critic: keep rows where the demo action wins.
                    demo_obs = take_rows(replay_data.observations, slice(-n_demo, None))
                    q_demo = min_q(self.critic, demo_obs, demo_actions)
                    accept = (q_demo > min_qf_pi[-n_demo:].detach()).float()
                # The policy's mean action (tanh of the Gaussian's mean), as DDPG's deterministic actor in
                # Nair et al.: cloning a sampled action would also fight the entropy bonus over the std.
                squared = ((self.actor(demo_obs, deterministic=True) - demo_actions) ** 2).sum(
                    dim=1, keepdim=True
                )
                bc_loss = (accept * squared).sum() / accept.sum().clamp(min=1.0)
                actor_loss = actor_loss + self.bc_weight * bc_loss
                bc_losses.append(bc_loss.item())
                bc_accepted.append(accept.mean().item())
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        if proposal_chosen:
            self.logger.record("train/ibrl_target_proposal_share", np.mean(proposal_chosen))
        if bc_losses:
            self.logger.record("train/bc_loss", np.mean(bc_losses))
            self.logger.record("train/bc_q_filter_accepted", np.mean(bc_accepted))
