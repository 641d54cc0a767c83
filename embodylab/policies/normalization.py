"""Observation normalisation inside the networks: a features extractor with a running mean and variance.

DDPG+HER (Andrychowicz et al. 2017) standardises every observation and goal with running statistics and
clips the result to ±5; without it the lab's state vectors mix joint angles (radians, std ~0.3), joint
velocities (rad/s, up to ~5), positions (metres, std ~0.1) and constant entries (half-extents), and the
critic has to resolve 4 cm goal differences from inputs it sees on very different scales.

`RunningNormExtractor` flattens the observation (every key of a Dict space, in sorted order, as SB3's
`CombinedExtractor` does) and returns `clip((x - mean) / max(std, eps), -clip, clip)`. Its statistics
are updated from the batches it sees in training mode (the replay samples of each gradient step, HER
relabelling and demonstrations included), never while acting or evaluating. They live in buffers
named `running_*`: they are saved with the weights (model.zip), and SB3's SAC/TD3/TQC copy them into the
target networks with the batch-norm statistics at every target update.
"""

from __future__ import annotations

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

TCP_SLICE = (14, 17)
"""where the tool centre point's position (world frame, metres) sits in the lab's `observation` vector
(`PandaArm.proprio`: q 7, qdot 7, tcp 3, ...)."""


def _has_position_goals(space: gym.Space, tcp_slice: tuple[int, int]) -> bool:
    """A goal-conditioned Dict space whose goals are 3-D positions and whose observation holds the tcp."""
    if not isinstance(space, spaces.Dict) or not {"observation", "achieved_goal", "desired_goal"} <= set(
        space
    ):
        return False
    return (
        space["achieved_goal"].shape == (3,) == space["desired_goal"].shape
        and space["observation"].shape[0] >= tcp_slice[1]
    )


class RunningNormExtractor(BaseFeaturesExtractor):
    """Flatten and standardise observations with running statistics (see the module docstring).

    Args:
        clip: the standardised features are clipped to [-clip, clip].
        eps: the smallest standard deviation divided by, in the observation's units; constant entries
            (e.g. an object's half-extents) map to 0 instead of blowing up.
        relative_goals: with 3-D position goals, also feed `desired - achieved`, `achieved - tcp` and
            `desired - tcp` (metres, world frame), the relative positions Fetch's observations carry.
            They are computed here, from the (possibly HER-relabelled) goals of each sample, so they
            always agree with the goal the critic is asked about; stored in the observation they would
            go stale under relabelling.
        tcp_slice: where the tcp position lies in `observation`.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        clip: float = 5.0,
        eps: float = 0.01,
        relative_goals: bool = False,
        tcp_slice: tuple[int, int] = TCP_SLICE,
    ):
        if isinstance(observation_space, spaces.Dict):
            self.keys: list[str] | None = sorted(observation_space.spaces)
            dim = sum(get_flattened_obs_dim(observation_space[key]) for key in self.keys)
        else:
            self.keys = None
            dim = get_flattened_obs_dim(observation_space)
        self.relative_goals = relative_goals and _has_position_goals(observation_space, tcp_slice)
        self.tcp_slice = slice(*tcp_slice)
        if self.relative_goals:
            dim += 9
        super().__init__(observation_space, features_dim=dim)
        self.clip, self.eps = float(clip), float(eps)
        # float64: the count reaches ~1e8 rows (50 updates x 256 rows per env step) over a long run.
        self.register_buffer("running_mean", th.zeros(dim, dtype=th.float64))
        self.register_buffer("running_var", th.ones(dim, dtype=th.float64))
        self.register_buffer("running_count", th.zeros((), dtype=th.float64))

    def _flatten(self, observations) -> th.Tensor:
        if self.keys is None:
            return observations.flatten(1).float()
        parts = [observations[key].flatten(1).float() for key in self.keys]
        if self.relative_goals:
            achieved, desired = observations["achieved_goal"].float(), observations["desired_goal"].float()
            tcp = observations["observation"][:, self.tcp_slice].float()
            parts += [desired - achieved, achieved - tcp, desired - tcp]
        return th.cat(parts, dim=1)

    @th.no_grad()
    def _update(self, x: th.Tensor) -> None:
        """Merge the batch's mean and variance into the running ones (Chan et al.'s parallel formula)."""
        x = x.double()
        n = float(x.shape[0])
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.running_count + n
        delta = batch_mean - self.running_mean
        self.running_mean += delta * (n / total)
        m2 = self.running_var * self.running_count + batch_var * n + delta**2 * self.running_count * n / total
        self.running_var.copy_(m2 / total)
        self.running_count.copy_(total)

    def forward(self, observations) -> th.Tensor:
        x = self._flatten(observations)
        if self.training:
            self._update(x)
        std = self.running_var.sqrt().clamp(min=self.eps)
        return ((x - self.running_mean.float()) / std.float()).clamp(-self.clip, self.clip)
