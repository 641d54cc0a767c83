"""The `navigate` skill: the holonomic base drives to the place in front of a fixture, through the doorways."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodylab.core.geometry import wrap_angle
from embodylab.envs.household.base import HouseholdEnv
from embodylab.envs.household.predicates import ROBOT
from embodylab.skills.household.adapter import EpisodeOver, Robot, SkillResult, skill

NAV_TOLERANCE = 0.03
NAV_YAW_TOLERANCE = 0.03
DOOR_CLEARANCE = 0.75
"""metres before and after a doorway's wall where the base lines up with the doorway"""


def drive_to(
    robot: Robot, x: float, y: float, yaw: float, max_steps: int, precise: bool, tuck: bool = False
) -> str:
    """Holonomic P-control to a world pose; '' when there, else why not."""
    u = robot.u
    tolerance = NAV_TOLERANCE if precise else 0.08
    best, stalled = np.inf, 0
    for _ in range(max_steps):
        bx, by, byaw = u.base.pose
        error = np.array([x - bx, y - by])
        yaw_error = wrap_angle(yaw - byaw)
        distance = float(np.linalg.norm(error))
        if distance < tolerance and abs(yaw_error) < (NAV_YAW_TOLERANCE if precise else 0.1):
            return ""
        c, s = np.cos(byaw), np.sin(byaw)
        local = np.array([c * error[0] + s * error[1], -s * error[0] + c * error[1]])
        speed = np.clip(2.5 * local / u.base.spec.max_speed, -1.0, 1.0)
        turn = np.clip(3.0 * yaw_error / u.base.spec.max_yaw_rate, -1.0, 1.0)
        if tuck:
            robot.act(
                base_velocity=(speed[0], speed[1], turn), lift=u.base.spec.home_lift, tcp=_tucked_tcp(u)
            )
        else:  # the arm holds its pose relative to the base
            robot.act(base_velocity=(speed[0], speed[1], turn), tcp=u.arm.tcp_pos.copy(), hand_yaw=u.hand_yaw)
        progress = distance + 0.3 * abs(yaw_error)
        if progress < best - 0.002:
            best, stalled = progress, 0
        else:
            stalled += 1
            if stalled > 60:
                return f"base blocked {distance:.2f} m short of the waypoint ({x:.2f}, {y:.2f})"
    return "navigation timed out"


def _tucked_tcp(u: HouseholdEnv) -> np.ndarray:
    """The tool-centre point held 0.35 m ahead of the lift column and 0.3 m above the arm's base."""
    bx, by, byaw = u.base.pose
    forward = np.array([np.cos(byaw), np.sin(byaw)])
    column = np.array([bx, by]) + forward * u.base.spec.arm_offset
    return np.array([*(column + 0.35 * forward), u.base.lift + 0.3])


@skill("navigate")
def navigate(env: gym.Env, place: str, robot: Robot | None = None, max_steps: int = 1500) -> SkillResult:
    """Drive the base to the place in front of fixture `place`: back out to the room's centre line, along
    it through the doorways (facing the direction of travel), then in to the place, facing the fixture."""
    robot = robot or Robot(env)
    u = robot.u
    apt = u.apartment
    try:
        target = apt.fixture(place)
    except ValueError as err:
        return SkillResult(False, str(err))
    start_steps = robot.steps
    tx, ty, tyaw = target.place
    x, y, yaw = u.base.pose
    rooms = apt.rooms
    here = next((i for i, r in enumerate(rooms) if r.contains((x, y))), None)
    there = next(i for i, r in enumerate(rooms) if r.name == target.room)
    if here is None:  # in a doorway: the nearest room by x
        here = int(np.argmin([abs(x - r.centre[0]) for r in rooms]))
    centre_y = rooms[here].centre[1]
    waypoints = [(x, centre_y, yaw, False)]
    direction = 1 if there > here else -1
    heading = 0.0 if direction > 0 else np.pi
    if there != here:
        waypoints.append((x, centre_y, heading, False))
        for i in range(here, there, direction):
            wall_x = rooms[i].high[0] + 0.05 if direction > 0 else rooms[i].low[0] - 0.05
            door_y = apt.doors[min(i, i + direction)]
            waypoints.append((wall_x - direction * DOOR_CLEARANCE, door_y, heading, True))
            waypoints.append((wall_x + direction * DOOR_CLEARANCE, door_y, heading, True))
        centre_y = rooms[there].centre[1]
    waypoints.append((tx, centre_y, heading if there != here else yaw, False))
    waypoints.append((tx, centre_y, tyaw, False))
    waypoints.append((tx, ty, tyaw, True))
    try:
        for wx, wy, wyaw, precise in waypoints:
            reason = drive_to(robot, wx, wy, wyaw, max_steps, precise, tuck=True)
            if reason:
                return SkillResult(False, reason, robot.steps - start_steps, robot.info)
        for _ in range(10):  # come to rest
            robot.act(lift=u.base.spec.home_lift, tcp=_tucked_tcp(u))
    except EpisodeOver as err:
        return SkillResult(False, str(err), robot.steps - start_steps, robot.info)
    ok = ("at", ROBOT, place) in u.predicates()
    return SkillResult(
        ok, "" if ok else "base did not settle at the place", robot.steps - start_steps, robot.info
    )


def back_to_place(robot: Robot, fixture: str) -> str:
    x, y, yaw = robot.u.apartment.fixture(fixture).place
    return drive_to(robot, x, y, yaw, 300, precise=True)
