"""Scripted closed-loop experts for every embodylab task, and `rollout(env, seed) -> bool`.

An expert reads the privileged simulator state of `env.unwrapped` every step and returns an action in
the env's `ee_delta_pos` action space; being closed-loop, it recovers when an object slips or is bumped.
Register an expert for a task class with `@expert_for("ClassName")`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

_EXPERTS: dict[str, type[Expert]] = {}
DEFAULT_MAX_STEPS = 1000


def expert_for(env_class_name: str):
    def register(cls: type[Expert]) -> type[Expert]:
        _EXPERTS[env_class_name] = cls
        return cls

    return register


class Expert:
    """Base of the scripted experts: a phase machine over the env's privileged state."""

    def __init__(self, env: gym.Env):
        self.env = env.unwrapped
        if getattr(self.env, "control_mode", "ee_delta_pos") != "ee_delta_pos":
            raise ValueError(
                f"scripted experts act in control_mode 'ee_delta_pos'; this env uses {self.env.control_mode!r}"
            )
        self.phase = "start"

    def reset(self) -> None:
        self.phase = "start"

    def act(self) -> np.ndarray:
        raise NotImplementedError

    # ---- shared motion helpers ----------------------------------------------------------------------
    @property
    def tcp(self) -> np.ndarray:
        return self.env.arm.tcp_pos

    def move_towards(self, target, gripper: float, gain: float = 1.0) -> np.ndarray:
        """Action that moves the tool centre point towards `target` (world frame) at up to full speed."""
        delta = (np.asarray(target) - self.tcp) / self.env.arm.config.max_ee_delta
        action = np.empty(4, dtype=np.float32)
        action[:3] = np.clip(gain * delta, -1.0, 1.0)
        action[3] = gripper
        return action

    def near(self, target, tolerance: float) -> bool:
        return bool(np.linalg.norm(np.asarray(target) - self.tcp) < tolerance)


def make_expert(env: gym.Env) -> Expert:
    name = type(env.unwrapped).__name__
    if name not in _EXPERTS:
        raise ValueError(f"no scripted expert for {name}; experts exist for: {', '.join(sorted(_EXPERTS))}")
    return _EXPERTS[name](env)


def rollout(env: gym.Env, seed: int) -> bool:
    """Play one episode of `env` with its scripted expert from `reset(seed=seed)`; True if it succeeded.

    The episode runs until the env terminates or truncates (its time limit, or `DEFAULT_MAX_STEPS` for
    an env without one); success is the final step's `info["is_success"]`.
    """
    expert = make_expert(env)
    env.reset(seed=seed)
    expert.reset()
    max_steps = getattr(env.spec, "max_episode_steps", None) or DEFAULT_MAX_STEPS
    info: dict = {}
    for _ in range(max_steps):
        _, _, terminated, truncated, info = env.step(expert.act())
        if terminated or truncated:
            break
    return bool(info.get("is_success", False))


@expert_for("LabReachEnv")
class ReachExpert(Expert):
    def act(self) -> np.ndarray:
        return self.move_towards(self.env.goal, gripper=1.0, gain=1.0)
