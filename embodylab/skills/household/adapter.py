"""The action adapter of the household skills, and the contract every skill keeps.

`Robot` turns world-frame targets (base velocity, lift height, tool-centre point, hand yaw, gripper) into the
env's 9-d `ee_delta_pos` action and steps the env; `move_tcp` is the closed-loop arm motion the grasping and
articulation skills share. A skill is a function `skill(env, *args, robot=None, max_steps=...) ->
SkillResult`, registered under the name that operators use with `@skill("name")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from embodylab.envs.household.base import MAX_HAND_YAW_STEP, HouseholdEnv


@dataclass
class SkillResult:
    success: bool
    reason: str = ""
    """why it failed ('' on success)"""
    steps: int = 0
    info: dict = field(default_factory=dict, repr=False)
    """the env's info after the skill's last step"""


class EpisodeOver(Exception):
    """The env terminated or truncated while a skill ran."""


Skill = Callable[..., SkillResult]
SKILLS: dict[str, Skill] = {}
"""the registered skills by name (the name operators give in `Operator.skill`)"""


def skill(name: str) -> Callable[[Skill], Skill]:
    """Function decorator: register the decorated skill under `name`; a name registered twice is an error."""

    def register(function: Skill) -> Skill:
        if name in SKILLS:
            raise ValueError(f"skill {name!r} is registered already (by {SKILLS[name].__qualname__})")
        SKILLS[name] = function
        return function

    return register


class Robot:
    """Turns targets (base pose, lift height, tool-centre point, hand yaw, gripper) into env actions and steps.

    All targets are in the world frame (metres, radians). Counts the steps and raises `EpisodeOver` when
    the episode ends."""

    def __init__(self, env: gym.Env):
        self.env = env
        self.u: HouseholdEnv = env.unwrapped
        if self.u.control_mode != "ee_delta_pos":
            raise ValueError(
                f"skill primitives act in control_mode 'ee_delta_pos'; got {self.u.control_mode!r}"
            )
        self.steps = 0
        self.info: dict = {}
        self.gripper = 1.0

    @property
    def tcp(self) -> np.ndarray:
        return self.u.arm.tcp_pos.copy()

    def act(
        self,
        base_velocity=(0.0, 0.0, 0.0),
        lift: float | None = None,
        tcp=None,
        hand_yaw: float | None = None,
        gripper: float | None = None,
        tcp_speed: float = 1.0,
    ) -> dict:
        """One env step towards the targets; the gripper keeps its last command when `gripper` is None."""
        u = self.u
        if gripper is not None:
            self.gripper = gripper
        action = np.zeros(9)
        action[0:3] = np.clip(base_velocity, -1.0, 1.0)
        if lift is not None:
            lift = float(np.clip(lift, *u.base.lift_range))
            action[3] = np.clip((lift - u.lift_target()) / u.base.max_lift_delta, -1.0, 1.0)
        if tcp is not None:
            # A gain above 1 overcomes the IK's millimetres of steady-state error on small steps.
            delta = 2.0 * (np.asarray(tcp) - u.arm.tcp_pos) / u.arm.config.max_ee_delta
            yaw = u.base.pose[2]
            c, s = np.cos(yaw), np.sin(yaw)
            local = np.array([c * delta[0] + s * delta[1], -s * delta[0] + c * delta[1], delta[2]])
            norm = np.linalg.norm(local)
            if norm > tcp_speed:
                local *= tcp_speed / norm
            action[4:7] = local
        if hand_yaw is not None:
            action[7] = np.clip((hand_yaw - u.hand_yaw) / MAX_HAND_YAW_STEP, -1.0, 1.0)
        action[8] = self.gripper
        _, _, terminated, truncated, self.info = self.env.step(action.astype(np.float32))
        self.steps += 1
        if terminated or truncated:
            raise EpisodeOver("the episode ended")
        return self.info


LIFT_BELOW_TCP = 0.15
"""metres the arm's base link stays below a tool-centre-point target (a comfortable reach)"""
LOW_REACH_LIFT = 0.5
"""metres: the lowest arm-base height the skills use; reaching down from it keeps the elbow high, clear of
drawer fronts"""


def lift_for(z: float, below: float = LIFT_BELOW_TCP) -> float:
    return max(z - below, LOW_REACH_LIFT)


def hand_yaw_for(u: HouseholdEnv, finger_yaw: float) -> float:
    """The env's hand-yaw setting that turns the finger line to `finger_yaw` (mod pi), nearest to now."""
    delta = finger_yaw - u.finger_axis_yaw()
    delta = (delta + np.pi / 2) % np.pi - np.pi / 2
    return float(np.clip(u.hand_yaw + delta, -1.5, 1.5))


def blocked_by(u: HouseholdEnv) -> str:
    """' (the arm touches <fixture>)' when an arm link presses on furniture, else ''."""
    touched = u.arm_contacts()
    return f" (the arm touches {', '.join(touched)})" if touched else ""


def move_tcp(
    robot: Robot,
    target,
    hand_yaw: float,
    gripper: float,
    tolerance: float,
    max_steps: int,
    speed: float = 1.0,
    below: float = LIFT_BELOW_TCP,
) -> str:
    """Move the tool-centre point to `target` (world), the arm's base `below` metres under it (within the
    lift's range); '' when there."""
    u = robot.u
    best, stalled = np.inf, 0
    for _ in range(max_steps):
        error = float(np.linalg.norm(np.asarray(target) - u.arm.tcp_pos))
        yaw_error = abs(hand_yaw - u.hand_yaw)
        if error < tolerance and yaw_error < 0.02:
            return ""
        robot.act(
            lift=lift_for(target[2], below), tcp=target, hand_yaw=hand_yaw, gripper=gripper, tcp_speed=speed
        )
        if error < best - 5e-4:
            best, stalled = error, 0
        else:
            stalled += 1
            if stalled > 40:
                return f"arm stopped {error:.3f} m from its target{blocked_by(u)}"
    return f"timed out {float(np.linalg.norm(np.asarray(target) - u.arm.tcp_pos)):.3f} m from the target"
