"""The one episode loop: `play_episode(env, policy)` plays one episode of any embodylab env.

Every place that plays episodes goes through it: `embodylab render` and `demo`, evaluation of a trained
policy, dataset collection, demonstration recording, the world-model planner's runner and the experts'
`rollout`. It takes

- a single-agent Gymnasium env or a PettingZoo `ParallelEnv` (the team suite: observations, actions,
  rewards and infos are dicts keyed by agent; the episode ends when `env.agents` is empty);
- a policy: any callable `policy(observation) -> action` (a dict of actions for a team env). If it has a
  `reset(observation)` method, that is called after `env.reset` with the first observation (scripted
  experts reset their phase there, planners their plan). A policy that plays the episode by stepping the
  env itself (the household oracle runs its skills that way) derives from `DrivesEnv`; the loop hands it
  a view of the env whose `step` is counted exactly as the loop's own steps.

It returns an `EpisodeResult`: return, length, success (the last step's `info["is_success"]`; a team
succeeds when every agent's info says so), the env's metrics where it has them, the final info, and the
frames when `render=True` (the env needs `render_mode="rgb_array"`). `on_reset(observation, info)` sees
the reset and `on_step(transition)` every step, for progress bars and recorders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

DEFAULT_MAX_STEPS = 1000
"""steps of an episode of an env without a time limit of its own (no `spec.max_episode_steps`)"""


@dataclass
class Transition:
    """One step as `on_step` sees it: the action taken and what `env.step` returned for it."""

    observation: Any
    action: Any
    reward: Any
    terminated: Any
    truncated: Any
    info: dict


@dataclass
class EpisodeResult:
    """What one episode gave. For a team env `episode_return` is the mean over agents of their summed
    rewards (the team's return when the reward is shared) and `info` is the first agent's info."""

    seed: int | None
    episode_return: float
    length: int
    success: bool
    info: dict = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    frames: list[np.ndarray] | None = None

    @property
    def physics_error(self) -> str | None:
        """MuJoCo's message when the simulation diverged and ended the episode, else None."""
        return self.info.get("physics_error")


class DrivesEnv:
    """A policy that plays a whole episode by calling `env.step` itself (e.g. the household oracle).
    `drive(env)` gets a view of the env that counts every step; it returns when the episode is over or
    it has nothing left to do."""

    def drive(self, env: gym.Env) -> None:
        raise NotImplementedError


def is_team_env(env: Any) -> bool:
    """True for a PettingZoo `ParallelEnv` (the team suite), False for a Gymnasium env."""
    return not isinstance(env, gym.Env) and hasattr(env, "possible_agents")


class _Episode:
    """The bookkeeping of one episode: return, length, frames, final info, the `on_step` callback."""

    def __init__(self, env, team: bool, reset_info: dict, render: bool, on_step):
        self.env, self.team, self.on_step = env, team, on_step
        self.frames: list[np.ndarray] | None = [env.render()] if render else None
        self.total, self.length = 0.0, 0
        # Until a step is taken (a driving policy may find nothing to do), the reset's info stands.
        self.infos: dict = reset_info if team else {}
        self.info: dict = {} if team else reset_info

    def record(self, observation, action, reward, terminated, truncated, info) -> None:
        if self.team:
            self.total += float(np.mean(list(reward.values()))) if reward else 0.0
            self.infos = info
        else:
            self.total += float(reward)
            self.info = info
        self.length += 1
        if self.frames is not None:
            self.frames.append(self.env.render())
        if self.on_step is not None:
            self.on_step(Transition(observation, action, reward, terminated, truncated, info))

    def success(self) -> bool:
        if self.team:
            return bool(self.infos) and all(i.get("is_success", False) for i in self.infos.values())
        return bool(self.info.get("is_success", False))


class _CountedEnv(gym.Wrapper):
    """The env as a `DrivesEnv` policy sees it: every `step` is recorded in the episode."""

    def __init__(self, env: gym.Env, episode: _Episode):
        super().__init__(env)
        self._episode = episode

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._episode.record(observation, action, reward, terminated, truncated, info)
        return observation, reward, terminated, truncated, info


def play_episode(
    env,
    policy: Callable[[Any], Any] | DrivesEnv,
    *,
    seed: int | None = None,
    options: dict | None = None,
    max_steps: int | None = None,
    render: bool = False,
    on_reset: Callable[[Any, dict], None] | None = None,
    on_step: Callable[[Transition], None] | None = None,
) -> EpisodeResult:
    """Plays one episode of `env` with `policy` from `env.reset(seed=seed, options=options)`.

    The episode ends when the env terminates or truncates (a team env: when no agent is left), or after
    `max_steps` steps (default: the env's time limit, else `DEFAULT_MAX_STEPS`; a team env ends itself).
    See the module docstring for the kinds of env and policy."""
    team = is_team_env(env)
    observation, reset_info = env.reset(seed=seed, options=options)
    if on_reset is not None:
        on_reset(observation, reset_info)
    if hasattr(policy, "reset"):
        policy.reset(observation)
    episode = _Episode(env, team, reset_info, render, on_step)
    if isinstance(policy, DrivesEnv):
        policy.drive(_CountedEnv(env, episode))
    elif team:
        while env.agents:
            action = policy(observation)
            observation, reward, terminated, truncated, info = env.step(action)
            episode.record(observation, action, reward, terminated, truncated, info)
    else:
        limit = max_steps or getattr(env.spec, "max_episode_steps", None) or DEFAULT_MAX_STEPS
        for _ in range(limit):
            action = policy(observation)
            observation, reward, terminated, truncated, info = env.step(action)
            episode.record(observation, action, reward, terminated, truncated, info)
            if terminated or truncated:
                break
    unwrapped = env if team else env.unwrapped
    metrics = dict(unwrapped.metrics()) if hasattr(unwrapped, "metrics") else {}
    info = next(iter(episode.infos.values()), {}) if team else episode.info
    return EpisodeResult(
        seed=seed,
        episode_return=episode.total,
        length=episode.length,
        success=episode.success(),
        info=info,
        metrics=metrics,
        frames=episode.frames,
    )
