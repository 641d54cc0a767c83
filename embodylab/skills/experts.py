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


@expert_for("LabDrawerEnv")
class DrawerExpert(Expert):
    """Approach the handle bar from the front, close on it, pull along the drawer's axis, keep holding.

    Phases: approach (open, to a point in front of the handle) → insert (open, onto the bar) → close →
    pull (a target that leads the bar along the axis until the opening passes the goal by `overshoot`,
    then holds). If the bar leaves the grip (the tcp drifts off it or the fingers close on nothing) it
    backs off and re-grasps.
    """

    grasp_drop = 0.012
    """metres: the tcp sits this far below the bar's centre so the fingertips stay clear of the table."""
    standoff = 0.07
    overshoot = 0.015
    max_opening = 0.195
    """metres, 5 mm short of the slide joint's limit."""
    lost_width = 0.015
    """metres: fingers closer than this hold nothing (the bar is 24 mm across)."""
    pull_lead = 0.02
    """metres the pull target leads the bar by: a gentle pull (0.5 m/s at most) keeps the grip."""

    def act(self) -> np.ndarray:
        env = self.env
        opening = env.opening()
        axis = env.opening_axis()
        grasp = env.handle_position(opening) - np.array([0.0, 0.0, self.grasp_drop])
        width = env.arm.gripper_width
        if self.phase in ("start", "approach"):
            self.phase = "approach"
            pre = grasp + self.standoff * axis
            if self.near(pre, 0.015):
                self.phase = "insert"
            return self.move_towards(pre, gripper=1.0)
        if self.phase == "insert":
            if self.near(grasp, 0.006):
                self.phase, self.closing_steps = "close", 0
            return self.move_towards(grasp, gripper=1.0)
        if self.phase == "close":
            self.closing_steps += 1
            if self.closing_steps >= 4:
                self.phase = "pull"
            return self.move_towards(grasp, gripper=-1.0)
        # pull (and hold): re-grasp if the bar is no longer between the fingers.
        if width < self.lost_width or not self.near(grasp, 0.025):
            self.phase = "approach"
            return self.move_towards(self.tcp + 0.02 * axis, gripper=1.0)
        # Lead the bar along the axis from where it is now, so the pull never pushes it sideways.
        remaining = min(float(env.goal[0]) + self.overshoot, self.max_opening) - opening
        return self.move_towards(grasp + np.clip(remaining, 0.0, self.pull_lead) * axis, gripper=-1.0)
