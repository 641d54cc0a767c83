"""Skill primitives of the household suite: closed-loop controllers that act through `env.step` only.

`navigate(place)`, `pick(obj)`, `place(obj, target)`, `open(part)` and `close(part)` each read the privileged
physics state of a `HouseholdEnv` every control step, command the base, lift, arm and gripper through the
env's `ee_delta_pos` action, and return a `SkillResult` (success, or the reason it failed, and the steps it
took). Nothing is teleported: objects, doors and the robot move only under the simulated forces.

`OPERATORS` is the symbolic schema a planner searches: each operator's parameters, preconditions and
effects (add and delete lists) over the atoms of `embodylab.envs.household.predicates`, PDDL-style, with
`?x` variables. `handempty` is derived (no `holding` atom holds), and so is `clear_front(fixture)` (none of
its doors and drawers is open: an open one keeps the base too far back to reach the top). `part_of(part,
fixture)` is static.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from embodylab.envs.household.base import MAX_HAND_YAW_STEP, HouseholdEnv
from embodylab.envs.household.predicates import ROBOT

# ---- the symbolic schema --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """A PDDL-like action schema: typed parameters, preconditions and add/delete effects (atoms with ?vars).

    `skill` names the primitive that executes it (two operators may share one: place on a top or in a
    drawer)."""

    name: str
    parameters: tuple[tuple[str, str], ...]
    preconditions: tuple[tuple[str, ...], ...]
    add: tuple[tuple[str, ...], ...]
    delete: tuple[tuple[str, ...], ...]
    skill: str


OPERATORS: tuple[Operator, ...] = (
    Operator(
        "navigate", (("?to", "place"),), (), (("at", ROBOT, "?to"),), (("at", ROBOT, "?any"),), "navigate"
    ),
    Operator(
        "pick",
        (("?obj", "object"), ("?from", "surface")),
        (("at", ROBOT, "?from"), ("on", "?obj", "?from"), ("handempty",), ("clear_front", "?from")),
        (("holding", "?obj"),),
        (("on", "?obj", "?from"), ("handempty",)),
        "pick",
    ),
    Operator(
        "place_on",
        (("?obj", "object"), ("?to", "surface")),
        (("at", ROBOT, "?to"), ("holding", "?obj"), ("clear_front", "?to")),
        (("on", "?obj", "?to"), ("handempty",)),
        (("holding", "?obj"),),
        "place",
    ),
    Operator(
        "place_in",
        (("?obj", "object"), ("?to", "container"), ("?at", "place")),
        (("part_of", "?to", "?at"), ("at", ROBOT, "?at"), ("holding", "?obj"), ("open", "?to")),
        (("in", "?obj", "?to"), ("handempty",)),
        (("holding", "?obj"),),
        "place",
    ),
    Operator(
        "open",
        (("?part", "part"), ("?at", "place")),
        (("part_of", "?part", "?at"), ("at", ROBOT, "?at"), ("handempty",), ("closed", "?part")),
        (("open", "?part"),),
        (("closed", "?part"),),
        "open",
    ),
    Operator(
        "close",
        (("?part", "part"), ("?at", "place")),
        (("part_of", "?part", "?at"), ("at", ROBOT, "?at"), ("handempty",), ("open", "?part")),
        (("closed", "?part"),),
        (("open", "?part"),),
        "close",
    ),
)


# ---- execution ------------------------------------------------------------------------------------------


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
            current = u.data.ctrl[u.base.actuator_slice][3]
            action[3] = np.clip((lift - current) / u.base.max_lift_delta, -1.0, 1.0)
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


def _wrap(angle: float) -> float:
    return float(np.arctan2(np.sin(angle), np.cos(angle)))


# ---- navigate -------------------------------------------------------------------------------------------
NAV_TOLERANCE = 0.03
NAV_YAW_TOLERANCE = 0.03
DOOR_CLEARANCE = 0.75
"""metres before and after a doorway's wall where the base lines up with the doorway"""


def _drive_to(
    robot: Robot, x: float, y: float, yaw: float, max_steps: int, precise: bool, tuck: bool = False
) -> str:
    """Holonomic P-control to a world pose; '' when there, else why not."""
    u = robot.u
    tolerance = NAV_TOLERANCE if precise else 0.08
    best, stalled = np.inf, 0
    for _ in range(max_steps):
        bx, by, byaw = u.base.pose
        error = np.array([x - bx, y - by])
        yaw_error = _wrap(yaw - byaw)
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
            reason = _drive_to(robot, wx, wy, wyaw, max_steps, precise, tuck=True)
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


# ---- grasping helpers -----------------------------------------------------------------------------------
LIFT_BELOW_TCP = 0.15
"""metres the arm's base link stays below a tool-centre-point target (a comfortable reach)"""
HOVER = 0.12


DRAWER_SPOT_BEHIND_FRONT = 0.13
"""metres between a drawer's front and where an object is put into it"""
DRAWER_LIFT_BELOW_TCP = -0.1
"""into a drawer the arm reaches down from above (its base 0.1 m over the tool-centre point): the elbow
stays high over the drawer front"""
LOW_REACH_LIFT = 0.5
"""metres: the lowest arm-base height the skills use; reaching down from it keeps the elbow high, clear of
drawer fronts"""


def _lift_for(z: float, below: float = LIFT_BELOW_TCP) -> float:
    return max(z - below, LOW_REACH_LIFT)


def _finger_axis_yaw(u: HouseholdEnv) -> float:
    """World yaw (rad) of the line along which the fingers close."""
    axis = u.data.xmat[u.arm.hand_body_id].reshape(3, 3)[:, 1]
    return float(np.arctan2(axis[1], axis[0]))


def _hand_yaw_for(u: HouseholdEnv, finger_yaw: float) -> float:
    """The env's hand-yaw setting that turns the finger line to `finger_yaw` (mod pi), nearest to now."""
    delta = finger_yaw - _finger_axis_yaw(u)
    delta = (delta + np.pi / 2) % np.pi - np.pi / 2
    return float(np.clip(u.hand_yaw + delta, -1.5, 1.5))


def _object_pose(u: HouseholdEnv, obj: str) -> tuple[np.ndarray, np.ndarray]:
    body = u.model.body(obj).id
    return u.data.xpos[body].copy(), u.data.xmat[body].reshape(3, 3).copy()


def _object_spec(u: HouseholdEnv, obj: str):
    return next(o for o in u.apartment.scene.objects if o.name == obj)


def _grasp_plan(u: HouseholdEnv, obj: str) -> tuple[np.ndarray, float, float]:
    """Grasp point (world), finger-line yaw and the object's height above its lowest point (m)."""
    pos, rot = _object_pose(u, obj)
    spec = _object_spec(u, obj)
    half = np.asarray(spec.half_extents)
    low = u.symbolic.lowest_point(obj)
    top = pos[2] + (pos[2] - low)
    # Fingers close across the narrowest horizontal extent of the object's box.
    if spec.shape == "sphere":
        finger_yaw = _finger_axis_yaw(u)
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
    return _drive_to(robot, target[0], target[1], yaw, 300, precise=True)


def _protrusion(u: HouseholdEnv, info) -> float:
    """Metres that the fixture's (or the one it stands on) open drawers and doors stick out of its front."""
    fixtures = [info] + ([u.apartment.fixture(info.on_top_of)] if info.on_top_of else [])
    out = 0.0
    for fixture in fixtures:
        for part in fixture.furniture.openables:
            joint = u.sim.fixture_joint_ids[f"{fixture.name}/{part.link}"]
            q = float(u.data.qpos[u.model.jnt_qposadr[joint]])
            if q > 0.01:
                reach = q if part.kind == "slide" else fixture.furniture.width
                out = max(out, reach + part.handle[0] + 0.02)
    return out


def _back_to_place(robot: Robot, fixture: str) -> str:
    x, y, yaw = robot.u.apartment.fixture(fixture).place
    return _drive_to(robot, x, y, yaw, 300, precise=True)


# ---- pick -----------------------------------------------------------------------------------------------
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
            _edge_towards(robot, u.data.xpos[u.model.body(obj).id], fixture)
        result = _pick(robot, obj, max_steps)
        if fixture is not None and _back_to_place(robot, fixture):
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
        hand_yaw = _hand_yaw_for(u, finger_yaw)
        above = grasp + [0, 0, HOVER + height / 2]
        reason = _move_tcp(robot, above, hand_yaw, gripper=1.0, tolerance=0.01, max_steps=max_steps)
        if reason:
            return SkillResult(
                False, f"could not reach above the object: {reason}", robot.steps - start, robot.info
            )
        reason = _move_tcp(robot, grasp, hand_yaw, gripper=1.0, tolerance=0.006, max_steps=150, speed=0.4)
        if reason:
            return SkillResult(False, f"could not reach the grasp: {reason}", robot.steps - start, robot.info)
        for _ in range(8):
            robot.act(lift=_lift_for(grasp[2]), tcp=grasp, hand_yaw=hand_yaw, gripper=-1.0)
        lift_to = grasp + [0, 0, HOVER]
        _move_tcp(robot, lift_to, hand_yaw, gripper=-1.0, tolerance=0.02, max_steps=100, speed=0.5)
        if ("holding", obj) in u.predicates():
            return SkillResult(True, "", robot.steps - start, robot.info)
        _move_tcp(robot, above, hand_yaw, gripper=1.0, tolerance=0.02, max_steps=60)
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
        reason = _move_tcp(robot, level, hand_yaw, gripper, 0.03, max_steps, below=below)
        if reason:
            return reason
    return _move_tcp(robot, target, hand_yaw, gripper, tolerance, max_steps, below=below)


def _blocked_by(u: HouseholdEnv) -> str:
    """' (the arm touches <fixture>)' when an arm link presses on furniture, else ''."""
    m, d = u.model, u.data
    arm_bodies = set(range(u.arm.hand_body_id - 8, u.arm.hand_body_id + 3))
    touched = set()
    for i in range(d.ncon):
        b1, b2 = int(m.geom_bodyid[d.contact.geom1[i]]), int(m.geom_bodyid[d.contact.geom2[i]])
        for arm, other in ((b1, b2), (b2, b1)):
            if arm in arm_bodies and other not in arm_bodies:
                name = m.body(other).name
                if name.split("/")[0] not in u.symbolic.objects:
                    touched.add(name.split("/")[0])
    return f" (the arm touches {', '.join(sorted(touched))})" if touched else ""


def _move_tcp(
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
            lift=_lift_for(target[2], below), tcp=target, hand_yaw=hand_yaw, gripper=gripper, tcp_speed=speed
        )
        if error < best - 5e-4:
            best, stalled = error, 0
        else:
            stalled += 1
            if stalled > 40:
                return f"arm stopped {error:.3f} m from its target{_blocked_by(u)}"
    return f"timed out {float(np.linalg.norm(np.asarray(target) - u.arm.tcp_pos)):.3f} m from the target"


# ---- place ----------------------------------------------------------------------------------------------
def _free_spot_on(u: HouseholdEnv, obj: str, fixture_name: str) -> np.ndarray | None:
    """A point (world) on the top of `fixture_name` nearest the robot, clear of other objects."""
    info = u.apartment.fixture(fixture_name)
    surface = info.furniture.surfaces[0]
    spec = _object_spec(u, obj)
    radius = max(spec.half_extents) if spec.shape == "capsule" else max(spec.half_extents[:2])
    others = [u.data.xpos[u.model.body(o).id].copy() for o in u.symbolic.objects if o != obj]
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


def place(
    env: gym.Env, obj: str, target: str, robot: Robot | None = None, max_steps: int = 400
) -> SkillResult:
    """Put the held `obj` down on the top of fixture `target`, or inside the open drawer `target`."""
    robot = robot or Robot(env)
    u = robot.u
    start = robot.steps
    if ("holding", obj) not in u.predicates():
        return SkillResult(False, f"not holding {obj!r}")
    spec = _object_spec(u, obj)
    pos, _ = _object_pose(u, obj)
    offset = u.arm.tcp_pos - pos  # the object hangs here relative to the tcp
    bottom_below_centre = pos[2] - u.symbolic.lowest_point(obj)
    if "/" in target:
        box = next((c for c in u.symbolic.containers if c[0] == target), None)
        if box is None:
            return SkillResult(
                False, f"unknown drawer {target!r}; drawers: {', '.join(c[0] for c in u.symbolic.containers)}"
            )
        _, body, centre, half = box
        rot = u.data.xmat[body].reshape(3, 3)
        # The middle of the part of the tray that stands out of the chest when the drawer is open, far
        # enough behind the drawer front that the wrist clears it.
        radius = max(spec.half_extents) if spec.shape == "capsule" else max(spec.half_extents[:2])
        local = centre + np.array([half[0] - max(radius + 0.015, DRAWER_SPOT_BEHIND_FRONT), 0.0, -half[2]])
        spot = u.data.xpos[body] + rot @ local
        below = DRAWER_LIFT_BELOW_TCP
        # Lower it in from above the drawer's front, which stands a little higher than the tray walls.
        clear_z = float((u.data.xpos[body] + rot @ (centre + [0, 0, half[2]]))[2]) + 0.03
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
        _move_tcp(robot, rest + offset, hand_yaw, -1.0, 0.006, 120, speed=0.3, below=below)
        for _ in range(8):
            robot.act(lift=_lift_for(rest[2] + offset[2], below), tcp=u.arm.tcp_pos.copy(), gripper=1.0)
        _move_tcp(robot, above + [0, 0, 0.05], hand_yaw, 1.0, 0.02, 100, speed=0.5, below=below)
        for _ in range(10):  # let it settle before judging
            robot.act(tcp=u.arm.tcp_pos.copy(), hand_yaw=hand_yaw, gripper=1.0)
        if fixture is not None and _back_to_place(robot, fixture):
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


# ---- open and close -------------------------------------------------------------------------------------
def _part(u: HouseholdEnv, part: str):
    for info in u.apartment.fixtures:
        for openable in info.furniture.openables:
            if f"{info.name}/{openable.link}" == part:
                return info, openable
    valid = [f"{f.name}/{o.link}" for f in u.apartment.fixtures for o in f.furniture.openables]
    raise ValueError(f"unknown door or drawer {part!r}; valid: {', '.join(valid)}")


def _handle_at(u: HouseholdEnv, part: str, handle_local, q: float) -> tuple[np.ndarray, np.ndarray]:
    """World position of the handle and the part's outward direction (horizontal) at joint position `q`."""
    body = u.model.body(part).id
    joint = u.sim.fixture_joint_ids[part]
    now = float(u.data.qpos[u.model.jnt_qposadr[joint]])
    rot = u.data.xmat[body].reshape(3, 3)
    handle = u.data.xpos[body] + rot @ np.asarray(handle_local)
    outward = rot[:, 0].copy()
    axis, anchor = u.data.xaxis[joint], u.data.xanchor[joint]
    if u.model.jnt_type[joint] == 2:  # slide
        return handle + axis * (q - now), outward
    angle = q - now
    c, s = np.cos(angle), np.sin(angle)

    def turn(v):
        return v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1 - c)

    return anchor + turn(handle - anchor), turn(outward)


PALM_CLEARANCE = 0.044
"""metres from the tool-centre point up to 4 mm under the palm (whose lowest point is 4.8 cm above it)"""
HANDLE_REACH = 0.5
HANDLE_SIDE = 0.15
HANDLE_LEAD = 0.012
HANDLE_HELD_WIDTH = 0.015
"""metres: closed fingers wider apart than this hold the 24 mm handle bar"""
"""metres a pulled or pushed handle is led ahead of its position each control step"""
"""metres ahead of the arm's base where the base keeps a handle while it opens or closes a part"""


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
        float(np.clip(3.0 * _wrap(yaw - byaw) / u.base.spec.max_yaw_rate, -1.0, 1.0)),
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
    joint = u.sim.fixture_joint_ids[part]
    adr = u.model.jnt_qposadr[joint]
    low, high = u.model.jnt_range[joint]
    goal = min(high - 0.02, openable.open_at + 0.1) if opening else low
    # The handle is led HANDLE_LEAD ahead of where it is along its path: a line, or an arc round the hinge.
    handle_now, _ = _handle_at(u, part, openable.handle, float(u.data.qpos[adr]))
    radius = float(np.linalg.norm((handle_now - u.data.xanchor[joint])[:2]))
    step = HANDLE_LEAD if openable.kind == "slide" else HANDLE_LEAD / max(radius, 0.1)
    heading = info.place[2]

    def finger_yaw(outward) -> float:  # the fingers close across the outward direction
        return _hand_yaw_for(u, float(np.arctan2(outward[1], outward[0])) + np.pi / 2)

    def reach(target, yaw, gripper, tolerance, steps, speed=1.0) -> str:
        best, stalled = np.inf, 0
        for _ in range(steps):
            error = float(np.linalg.norm(np.asarray(target) - u.arm.tcp_pos))
            if error < tolerance and abs(yaw - u.hand_yaw) < 0.02:
                return ""
            robot.act(_follow(u, target, heading), _lift_for(target[2]), target, yaw, gripper, speed)
            best, stalled = (error, 0) if error < best - 5e-4 else (best, stalled + 1)
            if stalled > 40:
                return f"arm stopped {error:.3f} m from its target{_blocked_by(u)}"
        return "timed out"

    try:
        for _attempt in range(2):
            q = float(u.data.qpos[adr])
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
                robot.act(_follow(u, grasp, heading), _lift_for(grasp[2]), grasp, yaw, -1.0)
            stalled = 0
            # Pulling needs the bar between the fingers; closed fingers beside it can still push.
            grasped = u.arm.gripper_width > HANDLE_HELD_WIDTH or not opening
            for _ in range(max_steps if grasped else 0):
                q = float(u.data.qpos[adr])
                if (q >= goal - 0.01) if opening else (q <= openable.closed_below * 0.5):
                    break
                handle, outward = _handle_at(u, part, openable.handle, q + (step if opening else -step))
                handle[2] = grasp[2]
                robot.act(_follow(u, handle, heading), _lift_for(handle[2]), handle,
                          finger_yaw(outward), -1.0)  # fmt: skip
                moved = abs(float(u.data.qpos[adr]) - q) > 1e-4
                stalled = 0 if moved else stalled + 1
                if stalled > 30:
                    break
            for _ in range(6):
                robot.act(tcp=u.arm.tcp_pos.copy(), hand_yaw=u.hand_yaw, gripper=1.0)
            reach(u.arm.tcp_pos + [0, 0, 0.1], u.hand_yaw, 1.0, 0.02, 60)
            if _back_to_place(robot, info.name):
                return SkillResult(False, "could not return to the place", robot.steps - start, robot.info)
            if u.symbolic.part_state(part) == ("open" if opening else "closed"):
                return SkillResult(True, "", robot.steps - start, robot.info)
    except EpisodeOver as err:
        return SkillResult(False, str(err), robot.steps - start, robot.info)
    state = "open" if opening else "closed"
    return SkillResult(
        False, f"the {part} is {u.symbolic.part_state(part)}, not {state}", robot.steps - start, robot.info
    )


def open_part(env: gym.Env, part: str, robot: Robot | None = None, max_steps: int = 300) -> SkillResult:
    """Grasp the handle of door or drawer `part` and pull it open along its joint (an arc for doors)."""
    return _operate(env, part, True, robot, max_steps)


def close_part(env: gym.Env, part: str, robot: Robot | None = None, max_steps: int = 300) -> SkillResult:
    """Grasp the handle of door or drawer `part` and push it shut."""
    return _operate(env, part, False, robot, max_steps)


SKILLS = {"navigate": navigate, "pick": pick, "place": place, "open": open_part, "close": close_part}
