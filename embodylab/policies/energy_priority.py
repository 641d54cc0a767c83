"""Energy-based prioritisation of hindsight replay (Zhao & Tresp 2018, "Energy-Based Hindsight Experience
Prioritization").

HER learns to move an object only from the episodes in which the object moved: relabelled with the
object's later positions, they are the only ones whose goals are reached by doing something. Uniform
replay spends most of each batch on episodes where the object stayed put (on LabPush with DDPG+HER's
exploration, the cube moved in 8-14% of the episodes). EBP replays an episode with probability
proportional to its *trajectory energy*: the sum over its steps of the increase of the achieved goal's
energy per unit mass, `g z + |v|² / 2` (v by finite differences at the control period), each step's
increase clipped to [0, `ENERGY_CLIP`]. The achieved goal must be a 3-D position (the object's).

`EnergyHerReplayBuffer` is SB3's `HerReplayBuffer` with that sampling: which transitions are drawn changes,
HER's relabelling of them does not. Only `ENERGY_SHARE` of each batch is drawn by energy, the rest
uniformly as in HER, and an episode whose energy is below `ENERGY_FLOOR` (a resting object's numerical
jitter) counts as 0. Drawn by energy alone, replay can narrow to the first few pushes a run has seen, and
the policy's entropy then collapses (as a LabPush run's did: docs/experiments.md, "Energy-based
prioritisation").
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.her import HerReplayBuffer

from embodylab.policies.demos import DemoHerReplayBuffer, her_samples, require_a_finished_episode

GRAVITY = 9.81
ENERGY_CLIP = 0.5
"""J/kg: the most one step's energy increase counts (EBP's clip_energy); no task here comes near it."""
ENERGY_FLOOR = 1e-4
"""J/kg: trajectory energies below this count as 0 (a cube pushed at 1.5 cm/s for one step has 1.1e-4)."""
ENERGY_SHARE = 0.5
"""of each batch drawn by energy; the rest is drawn uniformly over the finished episodes' transitions."""
CONTROL_PERIOD = 0.04
"""seconds between two observations of the lab tasks (25 Hz): the step of the velocity differences."""


def trajectory_energy(achieved: np.ndarray, next_achieved: np.ndarray) -> float:
    """The clipped trajectory energy (J/kg) of one episode's achieved goals [T, 3] and next ones [T, 3]."""
    positions = np.concatenate([achieved[:1], next_achieved], axis=0)  # [T + 1, 3]
    velocity = np.diff(positions, axis=0) / CONTROL_PERIOD  # [T, 3], velocity over step t
    energy = GRAVITY * positions[1:, 2] + 0.5 * (velocity**2).sum(axis=1)
    start = GRAVITY * positions[0, 2]
    increase = np.diff(np.concatenate([[start], energy]))
    return float(np.clip(increase, 0.0, ENERGY_CLIP).sum())


class EnergyHerReplayBuffer(HerReplayBuffer):
    """SB3's `HerReplayBuffer` replaying episodes by trajectory energy (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.observation_space["achieved_goal"].shape != (3,):
            raise ValueError(
                "energy-based prioritisation needs 3-D position goals (an object's position); got "
                f"achieved_goal of shape {self.observation_space['achieved_goal'].shape}"
            )
        self.episode_energy = np.zeros((self.buffer_size, self.n_envs))
        """per transition: the trajectory energy of its episode (0 until the episode has ended)"""
        # Both change only when a transition is added: computed once per round of updates, not per batch.
        self._cumulative: np.ndarray | None = None
        self._finished: np.ndarray | None = None

    def add(self, *args, **kwargs) -> None:
        super().add(*args, **kwargs)
        self._cumulative = self._finished = None

    def _compute_episode_length(self, env_idx: int) -> None:
        start, end = self._current_ep_start[env_idx], self.pos
        super()._compute_episode_length(env_idx)
        if end < start:
            end += self.buffer_size
        rows = np.arange(start, end) % self.buffer_size
        self.episode_energy[rows, env_idx] = trajectory_energy(
            self.observations["achieved_goal"][rows, env_idx],
            self.next_observations["achieved_goal"][rows, env_idx],
        )

    def _draw(self, batch_size: int) -> np.ndarray:
        """Flat indices of `batch_size` transitions: `ENERGY_SHARE` of them drawn by their episodes'
        energy (uniformly while no episode has any), the rest uniformly, in random order."""
        if self._cumulative is None:
            finished = self.ep_length > 0
            energy = np.where(finished & (self.episode_energy >= ENERGY_FLOOR), self.episode_energy, 0.0)
            self._cumulative = np.cumsum(energy.ravel())
            self._finished = np.flatnonzero(finished)
        total = self._cumulative[-1] if len(self._cumulative) else 0.0
        by_energy = int(round(ENERGY_SHARE * batch_size)) if total > 0.0 else 0
        drawn = np.concatenate(
            [
                np.searchsorted(
                    self._cumulative, np.random.uniform(0.0, total, size=by_energy), side="right"
                ),
                np.random.choice(self._finished, size=batch_size - by_energy, replace=True),
            ]
        )
        # HER relabels the first her_ratio of a batch: shuffled, both kinds are relabelled alike.
        return np.random.permutation(drawn)

    def sample(self, batch_size: int, env=None):
        # SB3 2.9's HerReplayBuffer.sample with the transition draw replaced by `_draw`.
        require_a_finished_episode(self)
        return her_samples(self, self._draw(batch_size), env)


class DemoEnergyHerReplayBuffer(DemoHerReplayBuffer, EnergyHerReplayBuffer):
    """`DemoHerReplayBuffer` whose online half is drawn by energy; the demonstration half stays uniform."""
