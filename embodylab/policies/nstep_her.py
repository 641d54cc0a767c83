"""Hindsight replay with n-step returns (as in "MHER", Yang et al. 2021, and Rainbow's n-step targets).

With one-step targets a sparse goal reward travels back one transition per round of critic updates: on
LabPush the experts need 40-60 steps from the start to the goal, so the start states learn of success
only after the value has been bootstrapped through every step between. An n-step target sums the next n
rewards, each computed for the (possibly relabelled) goal of the sample, and bootstraps from the state n
steps later with γⁿ:

    y = Σ_{k<m} γᵏ r(s_{t+k+1}, g) + γᵐ (1 - terminal) Q(s_{t+m}, π(s_{t+m}), g),  m = min(n, steps left)

The sum stops at the end of the sample's episode (m < n there; the discount is then γᵐ). The n - 1 later
actions are the behaviour policy's, not the current policy's, so the target is biased towards the
behaviour's value for n > 1 (no off-policy correction, as in Rainbow and MHER); small n (3) is the usual
compromise. n = 1 is SB3's `HerReplayBuffer` exactly.

`NStepHerReplayBuffer` is that buffer; `DemoNStepHerReplayBuffer` adds the demonstrations of
`DemoHerReplayBuffer`, their half n-step as well. Both return `discounts` in their samples, which SB3's
SAC, TD3 and TQC (and `DemoSAC`) use in place of γ.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.her import HerReplayBuffer

from embodylab.policies.demos import DemoHerReplayBuffer, her_samples, require_a_finished_episode


class NStepHerReplayBuffer(HerReplayBuffer):
    """SB3's `HerReplayBuffer` whose samples carry n-step returns (see the module docstring).

    Args:
        n_step: rewards summed before the target bootstraps (1: one-step targets, as SB3's buffer).
        gamma: the algorithm's discount, which the returns and the returned `discounts` use.
    """

    def __init__(self, *args, n_step: int = 3, gamma: float = 0.99, **kwargs):
        super().__init__(*args, **kwargs)
        if int(n_step) != n_step or n_step < 1:
            raise ValueError(f"n_step must be a whole number of steps >= 1; got {n_step}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1]; got {gamma}")
        self.n_step, self.gamma = int(n_step), float(gamma)

    def _steps_left(self, batch_indices: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        """Transitions from each sampled one to the end of its episode, itself included."""
        start = self.ep_start[batch_indices, env_indices]
        position = (batch_indices - start) % self.buffer_size
        return self.ep_length[batch_indices, env_indices] - position

    def _n_step_samples(
        self, batch_indices: np.ndarray, env_indices: np.ndarray, goals: np.ndarray | None, env
    ) -> DictReplayBufferSamples:
        """Samples of the transitions at (`batch_indices`, `env_indices`) with n-step returns for `goals`
        [B, goal_dim] (None: the goals stored with them, and their stored rewards)."""
        n = self.n_step
        steps = np.minimum(self._steps_left(batch_indices, env_indices), n)  # [B], >= 1
        offsets = np.arange(n)
        rows = (batch_indices[:, None] + np.minimum(offsets, steps[:, None] - 1)) % self.buffer_size  # [B, n]
        valid = offsets[None, :] < steps[:, None]
        columns = np.broadcast_to(env_indices[:, None], rows.shape)
        if goals is None:
            rewards = self.rewards[rows, columns]
        else:
            rewards = np.asarray(
                self.env.env_method(
                    "compute_reward",
                    self.next_observations["achieved_goal"][rows, columns].reshape(rows.size, -1),
                    np.repeat(goals, n, axis=0),
                    [{} for _ in range(rows.size)],
                    indices=[0],
                )[0],
                dtype=np.float32,
            ).reshape(rows.shape)
        rewards = self._normalize_reward(rewards.astype(np.float32), env)
        returns = (rewards * self.gamma ** offsets[None, :] * valid).sum(axis=1, keepdims=True)

        last = rows[np.arange(len(rows)), steps - 1]
        obs = {key: value[batch_indices, env_indices] for key, value in self.observations.items()}
        next_obs = {key: value[last, env_indices] for key, value in self.next_observations.items()}
        if goals is not None:
            obs["desired_goal"] = goals
            next_obs["desired_goal"] = goals
        obs, next_obs = self._normalize_obs(obs, env), self._normalize_obs(next_obs, env)
        # A termination (not a time limit) can only be an episode's last transition.
        terminal = self.dones[last, env_indices] * (1 - self.timeouts[last, env_indices])
        return DictReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in obs.items()},
            actions=self.to_torch(self.actions[batch_indices, env_indices]),
            next_observations={key: self.to_torch(value) for key, value in next_obs.items()},
            dones=self.to_torch(terminal).reshape(-1, 1),
            rewards=self.to_torch(returns),
            discounts=self.to_torch((self.gamma**steps).astype(np.float32)).reshape(-1, 1),
        )

    def _get_real_samples(self, batch_indices, env_indices, env=None) -> DictReplayBufferSamples:
        return self._n_step_samples(batch_indices, env_indices, None, env)

    def _get_virtual_samples(self, batch_indices, env_indices, env=None) -> DictReplayBufferSamples:
        goals = self._sample_goals(batch_indices, env_indices)
        return self._n_step_samples(batch_indices, env_indices, goals, env)

    def sample(self, batch_size: int, env=None) -> DictReplayBufferSamples:
        # SB3 2.9's HerReplayBuffer.sample, keeping the halves' `discounts`, which SB3's rebuild drops.
        require_a_finished_episode(self)
        drawn = np.random.choice(np.flatnonzero(self.ep_length > 0), size=batch_size, replace=True)
        return her_samples(self, drawn, env)


class DemoNStepHerReplayBuffer(DemoHerReplayBuffer, NStepHerReplayBuffer):
    """`DemoHerReplayBuffer` with n-step returns on both halves (online and demonstrations)."""

    demo_buffer_class = NStepHerReplayBuffer
