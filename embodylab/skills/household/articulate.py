"""The articulation skills: `open_part` and `close_part` lead a door's or drawer's handle along its path
(a line for a drawer, an arc round the hinge for a door) while the base follows."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodylab.core.geometry import wrap_angle
from embodylab.envs.household.base import HouseholdEnv
from embodylab.skills.household.adapter import (
    EpisodeOver,
    Robot,
    SkillResult,
    blocked_by,
    hand_yaw_for,
    lift_for,
    skill,
)
from embodylab.skills.household.navigate import back_to_place


def _part(u: HouseholdEnv, part: str):
    for info in u.apartment.fixtures:
        for openable in info.furniture.openables:
            if f"{info.name}/{openable.link}" == part:
                return info, openable
    valid = [f"{f.name}/{o.link}" for f in u.apartment.fixtures for o in f.furniture.openables]
    raise ValueError(f"unknown door or drawer {part!r}; valid: {', '.join(valid)}")


def _handle_at(u: HouseholdEnv, part: str, handle_local, q: float) -> tuple[np.ndarray, np.ndarray]:
    """World position of the handle and the part's outward direction (horizontal) at joint position `q`."""
    joint = u.part_joint(part)
    pos, rot = u.body_pose(part)
    handle = pos + rot @ np.asarray(handle_local)
    outward = rot[:, 0].copy()
    axis, anchor = joint.axis, joint.anchor
    if joint.slide:
        return handle + axis * (q - joint.position), outward
    angle = q - joint.position
    c, s = np.cos(angle), np.sin(angle)

    def turn(v):
        return v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1 - c)

    return anchor + turn(handle - anchor), turn(outward)


PALM_CLEARANCE = 0.044
"""metres from the tool-centre point up to 4 mm under the palm (whose lowest point is 4.8 cm above it)"""
HANDLE_REACH = 0.5
"""metres ahead of the arm's base where the base keeps a handle while it opens or closes a part"""
HANDLE_SIDE = 0.15
"""metres to the side of the arm's base that a handle may stray before the base follows it sideways"""
HANDLE_LEAD = 0.012
"""metres a pulled or pushed handle is led ahead of its position each control step"""
HANDLE_HELD_WIDTH = 0.015
"""metres: closed fingers wider apart than this hold the 24 mm handle bar"""


def _follow(u: HouseholdEnv, point, yaw: float) -> tuple[float, float, float]:
    """Normalised base velocity that keeps `point` `HANDLE_REACH` ahead of the arm's base and at most
    `HANDLE_SIDE` to its side, with the heading at `yaw`: the base follows a drawer or door being moved."""
    bx, by, byaw = u.base.pose
    forward = np.array([np.cos(byaw), np.sin(byaw)])
    left = np.array([-forward[1], forward[0]])
    offset = np.asarray(point[:2]) - (np.array([bx, by]) + forward * u.base.spec.arm_offset)
    ahead = float(forward @ offset) - HANDLE_REACH
    side = float(left @ offset)
    side -= np.clip(side, -HANDLE_SIDE, HANDLE_SIDE)
    speed = u.base.spec.max_speed
    return (
        float(np.clip(2.5 * ahead / speed, -1.0, 1.0)),
        float(np.clip(2.5 * side / speed, -1.0, 1.0)),
        float(np.clip(3.0 * wrap_angle(yaw - byaw) / u.base.spec.max_yaw_rate, -1.0, 1.0)),
    )


def _operate(env: gym.Env, part: str, opening: bool, robot: Robot | None, max_steps: int) -> SkillResult:
    """Grasp the handle from above, drive the joint towards open or closed by leading the handle along its
    path (a line for drawers, an arc for doors) while the base keeps the handle within reach, release,
    back off and return to the place."""
    robot = robot or Robot(env)
    u = robot.u
    start = robot.steps
    try:
        info, openable = _part(u, part)
    except ValueError as err:
        return SkillResult(False, str(err))
    joint = u.part_joint(part)
    goal = min(joint.high - 0.02, openable.open_at + 0.1) if opening else joint.low
    # The handle is led HANDLE_LEAD ahead of where it is along its path: a line, or an arc round the hinge.
    handle_now, _ = _handle_at(u, part, openable.handle, joint.position)
    radius = float(np.linalg.norm((handle_now - joint.anchor)[:2]))
    step = HANDLE_LEAD if openable.kind == "slide" else HANDLE_LEAD / max(radius, 0.1)
    heading = info.place[2]

    def finger_yaw(outward) -> float:  # the fingers close across the outward direction
        return hand_yaw_for(u, float(np.arctan2(outward[1], outward[0])) + np.pi / 2)

    def reach(target, yaw, gripper, tolerance, steps, speed=1.0) -> str:
        best, stalled = np.inf, 0
        for _ in range(steps):
            error = float(np.linalg.norm(np.asarray(target) - u.arm.tcp_pos))
            if error < tolerance and abs(yaw - u.hand_yaw) < 0.02:
                return ""
            robot.act(_follow(u, target, heading), lift_for(target[2]), target, yaw, gripper, speed)
            best, stalled = (error, 0) if error < best - 5e-4 else (best, stalled + 1)
            if stalled > 40:
                return f"arm stopped {error:.3f} m from its target{blocked_by(u)}"
        return "timed out"

    try:
        for _attempt in range(2):
            q = u.part_joint(part).position
            handle, outward = _handle_at(u, part, openable.handle, q)
            yaw = finger_yaw(outward)
            # The tool-centre point goes PALM_CLEARANCE below the bar's top: the palm then just clears it.
            grasp = handle + [0, 0, openable.handle_half_length - PALM_CLEARANCE]
            over = grasp + [0, 0, 0.1]
            reason = reach(over, yaw, 1.0, 0.01, max_steps) or reach(grasp, yaw, 1.0, 0.006, 120, 0.4)
            if reason:
                return SkillResult(
                    False, f"could not reach the handle: {reason}", robot.steps - start, robot.info
                )
            for _ in range(8):
                robot.act(_follow(u, grasp, heading), lift_for(grasp[2]), grasp, yaw, -1.0)
            stalled = 0
            # Pulling needs the bar between the fingers; closed fingers beside it can still push.
            grasped = u.arm.gripper_width > HANDLE_HELD_WIDTH or not opening
            for _ in range(max_steps if grasped else 0):
                q = u.part_joint(part).position
                if (q >= goal - 0.01) if opening else (q <= openable.closed_below * 0.5):
                    break
                handle, outward = _handle_at(u, part, openable.handle, q + (step if opening else -step))
                handle[2] = grasp[2]
                robot.act(_follow(u, handle, heading), lift_for(handle[2]), handle,
                          finger_yaw(outward), -1.0)  # fmt: skip
                moved = abs(u.part_joint(part).position - q) > 1e-4
                stalled = 0 if moved else stalled + 1
                if stalled > 30:
                    break
            for _ in range(6):
                robot.act(tcp=u.arm.tcp_pos.copy(), hand_yaw=u.hand_yaw, gripper=1.0)
            reach(u.arm.tcp_pos + [0, 0, 0.1], u.hand_yaw, 1.0, 0.02, 60)
            if back_to_place(robot, info.name):
                return SkillResult(False, "could not return to the place", robot.steps - start, robot.info)
            if u.symbolic.part_state(part) == ("open" if opening else "closed"):
                return SkillResult(True, "", robot.steps - start, robot.info)
    except EpisodeOver as err:
        return SkillResult(False, str(err), robot.steps - start, robot.info)
    state = "open" if opening else "closed"
    return SkillResult(
        False, f"the {part} is {u.symbolic.part_state(part)}, not {state}", robot.steps - start, robot.info
    )


@skill("open")
def open_part(env: gym.Env, part: str, robot: Robot | None = None, max_steps: int = 300) -> SkillResult:
    """Grasp the handle of door or drawer `part` and pull it open along its joint (an arc for doors)."""
    return _operate(env, part, True, robot, max_steps)


@skill("close")
def close_part(env: gym.Env, part: str, robot: Robot | None = None, max_steps: int = 300) -> SkillResult:
    """Grasp the handle of door or drawer `part` and push it shut."""
    return _operate(env, part, False, robot, max_steps)
