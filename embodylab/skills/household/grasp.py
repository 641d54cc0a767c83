"""The grasping skills: `pick` (from above, fingers across the object's narrow side) and `place` (on a top,
or into an open drawer)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from embodylab.envs.household.base import HouseholdEnv
from embodylab.skills.household.adapter import (
    LIFT_BELOW_TCP,
    EpisodeOver,
    Robot,
    SkillResult,
    hand_yaw_for,
    lift_for,
    move_tcp,
    skill,
)
from embodylab.skills.household.navigate import back_to_place, drive_to

HOVER = 0.12


DRAWER_SPOT_BEHIND_FRONT = 0.13
"""metres between a drawer's front and where an object is put into it"""
DRAWER_LIFT_BELOW_TCP = -0.1
"""into a drawer the arm reaches down from above (its base 0.1 m over the tool-centre point): the elbow
stays high over the drawer front"""


def _grasp_plan(u: HouseholdEnv, obj: str) -> tuple[np.ndarray, float, float]:
    """Grasp point (world), finger-line yaw and the object's height above its lowest point (m)."""
    pos, rot = u.body_pose(obj)
    spec = u.object_spec(obj)
    half = np.asarray(spec.half_extents)
    low = u.symbolic.lowest_point(obj)
    top = pos[2] + (pos[2] - low)
    # Fingers close across the narrowest horizontal extent of the object's box.
    if spec.shape == "sphere":
        finger_yaw = u.finger_axis_yaw()
    else:
        extents = [abs(rot[2, i]) < 0.7 for i in range(3)]  # axes lying horizontal
        horizontal = [i for i in range(3) if extents[i]]
        narrow = min(horizontal, key=lambda i: half[i])
        finger_yaw = float(np.arctan2(rot[1, narrow], rot[0, narrow]))
    grasp = pos.copy()
    grasp[2] = max(low + 0.015, top - 0.03) if top - low > 0.06 else pos[2]
    return grasp, finger_yaw, top - low


REACH = 0.55
"""metres ahead of the arm's base link where the hand works best"""
BASE_CLEARANCE = 0.08
"""metres the base's front keeps from the furniture when it edges closer"""


def _edge_towards(robot: Robot, point, fixture: str) -> str:
    """Move the base (facing unchanged) so that `point` lies `REACH` ahead of the arm and straight in front of
    it: forward or back, never closer to the fixture front than `BASE_CLEARANCE`, and sideways, never past the
    fixture's ends. '' when there."""
    u = robot.u
    info = u.apartment.fixture(fixture)
    x, y, yaw = info.place
    forward = np.array([np.cos(yaw), np.sin(yaw)])
    left = np.array([-forward[1], forward[0]])
    column = np.array([x, y]) + forward * u.base.spec.arm_offset
    offset = np.asarray(point[:2]) - column
    ahead = float(forward @ offset) - REACH
    max_advance = (
        info.furniture.standoff - u.base.spec.half_extents[0] - BASE_CLEARANCE - _protrusion(u, info)
    )
    advance = float(np.clip(ahead, -0.2, max(max_advance, 0.0)))
    width = (
        info.furniture.width
        if info.on_top_of is None
        else u.apartment.fixture(info.on_top_of).furniture.width
    )
    side = float(np.clip(left @ offset, -width / 2, width / 2))
    target = np.array([x, y]) + forward * advance + left * side
    return drive_to(robot, target[0], target[1], yaw, 300, precise=True)


def _protrusion(u: HouseholdEnv, info) -> float:
    """Metres that the fixture's (or the one it stands on) open drawers and doors stick out of its front."""
    fixtures = [info] + ([u.apartment.fixture(info.on_top_of)] if info.on_top_of else [])
    out = 0.0
    for fixture in fixtures:
        for part in fixture.furniture.openables:
            q = u.part_joint(f"{fixture.name}/{part.link}").position
            if q > 0.01:
                reach = q if part.kind == "slide" else fixture.furniture.width
                out = max(out, reach + part.handle[0] + 0.02)
    return out


# ---- pick -----------------------------------------------------------------------------------------------
@skill("pick")
def pick(env: gym.Env, obj: str, robot: Robot | None = None, max_steps: int = 400) -> SkillResult:
    """Grasp `obj` from above (fingers across its narrow side), lift it `HOVER` m clear and hold it."""
    robot = robot or Robot(env)
    u = robot.u
    if obj not in u.symbolic.objects:
        return SkillResult(False, f"unknown object {obj!r}; objects: {', '.join(u.symbolic.objects)}")
    start = robot.steps
    fixture = u.symbolic.robot_place()
    try:
        if fixture is not None:
            _edge_towards(robot, u.body_pose(obj)[0], fixture)
        result = _pick(robot, obj, max_steps)
        if fixture is not None and back_to_place(robot, fixture):
            return SkillResult(False, "could not return to the place", robot.steps - start, robot.info)
    except EpisodeOver as err:
        return SkillResult(False, str(err), robot.steps - start, robot.info)
    result.steps = robot.steps - start
    result.info = robot.info
    return result


def _pick(robot: Robot, obj: str, max_steps: int) -> SkillResult:
    u = robot.u
    start = robot.steps
    for _attempt in range(2):
        grasp, finger_yaw, height = _grasp_plan(u, obj)
        hand_yaw = hand_yaw_for(u, finger_yaw)
        above = grasp + [0, 0, HOVER + height / 2]
        reason = move_tcp(robot, above, hand_yaw, gripper=1.0, tolerance=0.01, max_steps=max_steps)
        if reason:
            return SkillResult(
                False, f"could not reach above the object: {reason}", robot.steps - start, robot.info
            )
        reason = move_tcp(robot, grasp, hand_yaw, gripper=1.0, tolerance=0.006, max_steps=150, speed=0.4)
        if reason:
            return SkillResult(False, f"could not reach the grasp: {reason}", robot.steps - start, robot.info)
        for _ in range(8):
            robot.act(lift=lift_for(grasp[2]), tcp=grasp, hand_yaw=hand_yaw, gripper=-1.0)
        lift_to = grasp + [0, 0, HOVER]
        move_tcp(robot, lift_to, hand_yaw, gripper=-1.0, tolerance=0.02, max_steps=100, speed=0.5)
        if ("holding", obj) in u.predicates():
            return SkillResult(True, "", robot.steps - start, robot.info)
        move_tcp(robot, above, hand_yaw, gripper=1.0, tolerance=0.02, max_steps=60)
    return SkillResult(
        False, "grasp missed: the fingers do not hold the object", robot.steps - start, robot.info
    )


def _transit(
    robot: Robot,
    target,
    hand_yaw: float,
    gripper: float,
    tolerance: float,
    max_steps: int,
    below: float = LIFT_BELOW_TCP,
) -> str:
    """Move the tool-centre point to `target` over the top: first across at the higher of its current
    height and the target's, then straight down or up, so that it never cuts through a drawer front."""
    tcp = robot.u.arm.tcp_pos
    level = np.array([target[0], target[1], max(tcp[2], target[2])])
    if level[2] - target[2] > 0.02:
        reason = move_tcp(robot, level, hand_yaw, gripper, 0.03, max_steps, below=below)
        if reason:
            return reason
    return move_tcp(robot, target, hand_yaw, gripper, tolerance, max_steps, below=below)


# ---- place ----------------------------------------------------------------------------------------------
def _free_spot_on(u: HouseholdEnv, obj: str, fixture_name: str) -> np.ndarray | None:
    """A point (world) on the top of `fixture_name` nearest the robot, clear of other objects."""
    info = u.apartment.fixture(fixture_name)
    surface = info.furniture.surfaces[0]
    spec = u.object_spec(obj)
    radius = max(spec.half_extents) if spec.shape == "capsule" else max(spec.half_extents[:2])
    others = [u.body_pose(o)[0] for o in u.symbolic.objects if o != obj]
    cx, cy = surface.centre
    hx, hy = surface.half
    best = None
    # Candidates from the middle of the depth outwards (round things put near an edge may roll off), and
    # from the middle of the width outwards; the base edges over to reach them.
    for dx in sorted(np.linspace(hx - radius, -hx + radius, 5), key=abs):
        for dy in sorted(np.linspace(-hy + radius, hy - radius, 9), key=abs):
            point = info.to_world((cx + dx, cy + dy, surface.z))
            if all(np.linalg.norm(point[:2] - p[:2]) > radius + 0.07 for p in others):
                best = point
                break
        if best is not None:
            break
    return best


@skill("place")
def place(
    env: gym.Env, obj: str, target: str, robot: Robot | None = None, max_steps: int = 400
) -> SkillResult:
    """Put the held `obj` down on the top of fixture `target`, or inside the open drawer `target`."""
    robot = robot or Robot(env)
    u = robot.u
    start = robot.steps
    if ("holding", obj) not in u.predicates():
        return SkillResult(False, f"not holding {obj!r}")
    spec = u.object_spec(obj)
    pos, _ = u.body_pose(obj)
    offset = u.arm.tcp_pos - pos  # the object hangs here relative to the tcp
    bottom_below_centre = pos[2] - u.symbolic.lowest_point(obj)
    if "/" in target:
        box = next((c for c in u.symbolic.containers if c[0] == target), None)
        if box is None:
            return SkillResult(
                False, f"unknown drawer {target!r}; drawers: {', '.join(c[0] for c in u.symbolic.containers)}"
            )
        _, _, centre, half = box
        body_pos, rot = u.body_pose(target)
        # The middle of the part of the tray that stands out of the chest when the drawer is open, far
        # enough behind the drawer front that the wrist clears it.
        radius = max(spec.half_extents) if spec.shape == "capsule" else max(spec.half_extents[:2])
        local = centre + np.array([half[0] - max(radius + 0.015, DRAWER_SPOT_BEHIND_FRONT), 0.0, -half[2]])
        spot = body_pos + rot @ local
        below = DRAWER_LIFT_BELOW_TCP
        # Lower it in from above the drawer's front, which stands a little higher than the tray walls.
        clear_z = float((body_pos + rot @ (centre + [0, 0, half[2]]))[2]) + 0.03
    else:
        try:
            u.apartment.fixture(target)
        except ValueError as err:
            return SkillResult(False, str(err))
        spot = _free_spot_on(u, obj, target)
        if spot is None:
            return SkillResult(False, f"no free spot on the {target}")
        below = LIFT_BELOW_TCP
        clear_z = -np.inf
    hand_yaw = u.hand_yaw
    rest = spot + [0, 0, bottom_below_centre + 0.008]
    fixture = u.symbolic.robot_place()
    try:
        if fixture is not None and "/" not in target:
            _edge_towards(robot, spot, fixture)
        above = rest + [0, 0, 0.1] + offset
        above[2] = max(above[2], clear_z + bottom_below_centre + offset[2])
        reason = _transit(robot, above, hand_yaw, -1.0, 0.015, max_steps, below=below)
        if reason:
            return SkillResult(
                False,
                f"could not carry the object above the target: {reason}",
                robot.steps - start,
                robot.info,
            )
        move_tcp(robot, rest + offset, hand_yaw, -1.0, 0.006, 120, speed=0.3, below=below)
        for _ in range(8):
            robot.act(lift=lift_for(rest[2] + offset[2], below), tcp=u.arm.tcp_pos.copy(), gripper=1.0)
        move_tcp(robot, above + [0, 0, 0.05], hand_yaw, 1.0, 0.02, 100, speed=0.5, below=below)
        for _ in range(10):  # let it settle before judging
            robot.act(tcp=u.arm.tcp_pos.copy(), hand_yaw=hand_yaw, gripper=1.0)
        if fixture is not None and back_to_place(robot, fixture):
            return SkillResult(False, "could not return to the place", robot.steps - start, robot.info)
    except EpisodeOver as err:
        return SkillResult(False, str(err), robot.steps - start, robot.info)
    atoms = u.predicates()
    goal = ("in", obj, target) if "/" in target else ("on", obj, target)
    if goal in atoms:
        return SkillResult(True, "", robot.steps - start, robot.info)
    return SkillResult(
        False, f"the object did not end {goal[0]} the {target}", robot.steps - start, robot.info
    )
