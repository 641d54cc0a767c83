"""The one builder of TeamCarry scenes: a `TeamLayout` compiled to MuJoCo through `mujoco.MjSpec`.

The lab `SceneSpec` describes a tabletop around one arm; the team scene needs mobile human-proxy
bodies and runtime grip constraints, so it is built here directly with `MjSpec`; its physics options,
render settings, floor, sky and lights come from the builders every suite shares (`core.builders`).

Agent `i` (world frame, z up) is a body `agent{i}` on three joints (`agent{i}/x`, `agent{i}/y` slides,
`agent{i}/yaw` hinge) driven by velocity actuators, with one collision capsule and visual-only limbs.
Its arms are a child body `agent{i}/arms` on a vertical slide `agent{i}/lift` (hand height
`HAND_HEIGHT + q` m) driven by a force-limited position actuator: the lift force range, not a rule, is
what makes a heavy payload need several agents. The arm body is gravity-compensated, so the lift
actuator's force goes to the payload. Each hand has a `connect` equality `agent{i}/grip_{left,right}`
between the arm body (anchor at the hand) and the payload, inactive until the env switches it on.

Everything a layout sizes or places (the payload's geoms, the goal marker, the obstacles) is data
(`payload_geoms`, `goal_geoms`, `obstacle_geoms`), read by the builder and by `scene_cache.LayoutWriter`,
which writes a new layout into a model compiled for another layout of the same topology, so that env
resets write values instead of recompiling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from embodylab.core.builders import (
    add_checker_floor,
    add_lights,
    add_skybox,
    set_physics_options,
    set_render_quality,
)
from embodylab.core.geometry import yaw_to_quat
from embodylab.core.scene import LightSpec, look_at_xyaxes
from embodylab.envs.team.layout import (
    HAND_HALF_SPACING,
    HAND_REACH,
    HANDLE_HALF_LENGTH,
    ROLE_PARAMS,
    SOFA_ARM_TOP,
    SOFA_SEAT_TOP,
    TeamLayout,
)

HAND_HEIGHT = 0.75
"""hand height (m) above the floor at lift joint position 0."""
LIFT_RANGE = (-0.33, 0.35)
"""lift joint range (m): hands from 0.42 m to 1.10 m above the floor."""
LIFT_KP = 20000.0  # N/m: a handle-height error of 1 cm already asks for most of a human's lift force
LIFT_DAMPING = 800.0  # N s/m
BASE_KV = 3000.0  # N per m/s of base velocity error
YAW_KV = 800.0  # N m per rad/s of yaw-rate error
PAYLOAD = "payload"
HANDLE_RGBA = (0.95, 0.75, 0.1, 1.0)
BRACKET_RGBA = (0.3, 0.3, 0.3, 1.0)
GOAL = "goal"
SHIRTS = (
    (0.85, 0.3, 0.25, 1),
    (0.2, 0.45, 0.8, 1),
    (0.95, 0.7, 0.2, 1),
    (0.3, 0.65, 0.35, 1),
    (0.6, 0.35, 0.7, 1),
    (0.95, 0.5, 0.65, 1),
    (0.2, 0.7, 0.7, 1),
    (0.9, 0.9, 0.9, 1),
)
SKINS = ((0.95, 0.78, 0.62, 1), (0.75, 0.55, 0.4, 1), (0.5, 0.35, 0.25, 1), (0.98, 0.85, 0.72, 1))
PANTS = (0.18, 0.2, 0.3, 1)
ROBOT_GREY = (0.75, 0.77, 0.8, 1)
ROBOT_DARK = (0.2, 0.22, 0.25, 1)
# Collision bits: floor 1; payload 1|2 (floor, walls, obstacles, agents); agents, walls, obstacles 2.
FLOOR_BITS = (1, 1)
PAYLOAD_BITS = (3, 3)
BODY_BITS = (2, 2)
TEAM_LIGHTS = (LightSpec(pos=(0.0, 0.0, 6.0), directional=True, diffuse=(0.5, 0.5, 0.5), castshadow=False),)
CAPSULE, SPHERE, BOX, CYLINDER, ELLIPSOID = (
    mujoco.mjtGeom.mjGEOM_CAPSULE,
    mujoco.mjtGeom.mjGEOM_SPHERE,
    mujoco.mjtGeom.mjGEOM_BOX,
    mujoco.mjtGeom.mjGEOM_CYLINDER,
    mujoco.mjtGeom.mjGEOM_ELLIPSOID,
)


@dataclass(frozen=True)
class SceneIds:
    """Ids and addresses of the compiled team scene, looked up once per build. Per-agent arrays have
    one entry per agent; hand arrays are `[n_agents, 2]` (left, right)."""

    payload_body: int
    payload_qpos: int
    payload_qvel: int
    base_qpos: np.ndarray  # [n_agents, 3] qpos addresses of x, y, yaw
    base_qvel: np.ndarray  # [n_agents, 3]
    lift_qpos: np.ndarray  # [n_agents]
    lift_qvel: np.ndarray  # [n_agents]
    base_actuators: np.ndarray  # [n_agents, 3]
    lift_actuators: np.ndarray  # [n_agents]
    arm_bodies: np.ndarray  # [n_agents]
    hand_sites: np.ndarray  # [n_agents, 2]
    grip_equalities: np.ndarray  # [n_agents, 2]
    goal_mocap: int


def _geom(body, gtype, size=None, fromto=None, pos=(0, 0, 0), rgba=(1, 1, 1, 1), **kwargs):
    """A visual-only geom unless collision bits are given."""
    args = dict(type=gtype, rgba=rgba, contype=0, conaffinity=0, density=0, group=1)
    if size is not None:
        args["size"] = list(size) + [0.0] * (3 - len(size))
    if fromto is not None:
        args["fromto"] = fromto
    else:
        args["pos"] = pos
    args.update(kwargs)
    return body.add_geom(**args)


def _add_human_body(body, shirt, skin) -> None:
    for s in (-1, 1):
        _geom(body, CAPSULE, (0.075,), fromto=[0, s * 0.1, 0.88, 0.0, s * 0.1, 0.1], rgba=PANTS)
        _geom(body, BOX, (0.12, 0.055, 0.04), pos=(0.05, s * 0.1, 0.04), rgba=(0.15, 0.12, 0.1, 1))
    _geom(body, ELLIPSOID, (0.13, 0.19, 0.11), pos=(0, 0, 0.92), rgba=PANTS)
    _geom(body, ELLIPSOID, (0.14, 0.21, 0.28), pos=(0, 0, 1.18), rgba=shirt)
    _geom(body, CAPSULE, (0.075,), fromto=[0, -0.17, 1.36, 0, 0.17, 1.36], rgba=shirt)
    _geom(body, CAPSULE, (0.05,), fromto=[0, 0, 1.45, 0, 0, 1.56], rgba=skin)
    _geom(body, SPHERE, (0.115,), pos=(0.0, 0, 1.66), rgba=skin)
    _geom(body, ELLIPSOID, (0.115, 0.12, 0.07), pos=(-0.02, 0, 1.72), rgba=(0.2, 0.13, 0.08, 1))
    for s in (-1, 1):
        _geom(body, SPHERE, (0.018,), pos=(0.105, s * 0.04, 1.68), rgba=(0.1, 0.1, 0.1, 1))


def _add_robot_body(body, shirt) -> None:
    _geom(body, BOX, (0.26, 0.24, 0.12), pos=(0, 0, 0.16), rgba=ROBOT_DARK)
    for sx in (-1, 1):
        for sy in (-1, 1):
            _geom(
                body,
                CYLINDER,
                (0.07, 0.03),
                pos=(sx * 0.16, sy * 0.25, 0.07),
                rgba=(0.1, 0.1, 0.1, 1),
                quat=[0.7071068, 0.7071068, 0, 0],
            )
    _geom(body, CYLINDER, (0.08, 0.4), pos=(0, 0, 0.68), rgba=ROBOT_GREY)
    _geom(body, BOX, (0.14, 0.22, 0.22), pos=(0, 0, 1.25), rgba=ROBOT_GREY)
    _geom(body, BOX, (0.145, 0.16, 0.03), pos=(0, 0, 1.3), rgba=shirt)
    _geom(body, BOX, (0.11, 0.13, 0.1), pos=(0, 0, 1.62), rgba=ROBOT_GREY)
    _geom(body, BOX, (0.02, 0.1, 0.035), pos=(0.11, 0, 1.64), rgba=(0.1, 0.6, 0.9, 1))


def _add_arms(arms, robot: bool, shirt, skin) -> None:
    """Upper arms and forearms from the shoulders to hands at (HAND_REACH, +-HAND_HALF_SPACING,
    HAND_HEIGHT) in the agent frame (lift joint at 0)."""
    colour_upper = ROBOT_GREY if robot else shirt
    colour_fore = ROBOT_DARK if robot else skin
    for s in (-1, 1):
        shoulder = np.array([0.0, s * 0.23, 1.36])
        hand = np.array([HAND_REACH, s * HAND_HALF_SPACING, HAND_HEIGHT])
        elbow = np.array([0.1, s * 0.25, 1.05])
        _geom(arms, SPHERE, (0.065,), pos=shoulder, rgba=colour_upper)
        _geom(arms, CAPSULE, (0.055,), fromto=[*shoulder, *elbow], rgba=colour_upper)
        _geom(arms, CAPSULE, (0.045,), fromto=[*elbow, *hand], rgba=colour_fore)
        _geom(arms, SPHERE, (0.055,), pos=hand, rgba=ROBOT_DARK if robot else skin)
        side = "left" if s > 0 else "right"
        arms.add_site(name=f"{arms.name}/{side}_hand", pos=hand, size=[0.01, 0, 0], group=4)


@dataclass(frozen=True)
class GeomParams:
    """One primitive geom whose size or place depends on the layout: `size` [3] (MuJoCo's per-type
    meaning), `pos` [3] and `quat` [4] in its body's frame, `rgba` [4]; `collide` gives it the payload's
    collision bits (otherwise it is visual only)."""

    gtype: int
    size: tuple[float, float, float]
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    collide: bool = False
    name: str = ""


def _capsule(a, b, radius: float, rgba, name: str = "") -> GeomParams:
    """The capsule from point `a` to point `b` [3] as centre, orientation and half-length (what MuJoCo's
    `fromto` compiles to), so that the builder and the in-place writer share one value. Plain floats:
    a reset builds a few dozen of these."""
    dx, dy, dz = a[0] - b[0], a[1] - b[1], a[2] - b[2]  # MuJoCo's z axis points from `to` to `from`
    length = math.sqrt(dx * dx + dy * dy + dz * dz)
    dx, dy, dz = dx / length, dy / length, dz / length
    # Rotation taking z to the axis d: about z x d = (-dy, dx, 0) by atan2(|z x d|, dz).
    s = math.hypot(dx, dy)
    if s < 1e-10:
        quat = (1.0, 0.0, 0.0, 0.0) if dz > 0 else (0.0, 1.0, 0.0, 0.0)
    else:
        angle = math.atan2(s, dz)
        k = math.sin(angle / 2) / s
        quat = (math.cos(angle / 2), -dy * k, dx * k, 0.0)
    pos = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, (a[2] + b[2]) / 2)
    return GeomParams(CAPSULE, (radius, length / 2, 0.0), pos, quat, tuple(rgba), name=name)


def payload_geoms(layout: TeamLayout) -> list[GeomParams]:
    """The payload's geoms in its body frame (origin on the floor under its centre), in model order."""
    hx, hy, hz = layout.half_extents
    colour = tuple(layout.rgba)
    dark = (*(c * 0.75 for c in colour[:3]), 1.0)
    geoms = []
    if layout.shape == "table":
        top = 0.025
        geoms.append(GeomParams(BOX, (hx, hy, top), (0, 0, 2 * hz - top), rgba=colour, collide=True))
        leg = (2 * hz - 2 * top) / 2
        for sx in (-1, 1):
            for sy in (-1, 1):
                geoms.append(
                    GeomParams(
                        BOX,
                        (0.035, 0.035, leg),
                        (sx * (hx - 0.06), sy * (hy - 0.06), leg),
                        rgba=dark,
                        collide=True,
                    )
                )
    elif layout.shape == "box":
        geoms.append(GeomParams(BOX, (hx, hy, hz), (0, 0, hz), rgba=colour, collide=True))
        geoms.append(GeomParams(BOX, (hx + 0.002, 0.04, hz + 0.002), (0, 0, hz), rgba=(0.8, 0.75, 0.6, 1)))
    else:
        seat = SOFA_SEAT_TOP / 2
        geoms.append(GeomParams(BOX, (hx, hy, seat), (0, 0, seat), rgba=dark, collide=True))
        back_half = (2 * hz - SOFA_SEAT_TOP) / 2
        geoms.append(
            GeomParams(
                BOX,
                (hx, 0.11, back_half),
                (0, hy - 0.11, SOFA_SEAT_TOP + back_half),
                rgba=colour,
                collide=True,
            )
        )
        arm_half = (SOFA_ARM_TOP - SOFA_SEAT_TOP) / 2
        for s in (-1, 1):
            geoms.append(
                GeomParams(
                    BOX,
                    (0.1, hy - 0.11, arm_half),
                    (s * (hx - 0.1), -0.11, SOFA_SEAT_TOP + arm_half),
                    rgba=colour,
                    collide=True,
                )
            )
        cushions = sofa_cushions(hx)
        width = (2 * hx - 0.2) / cushions
        for j in range(cushions):
            cx = -hx + 0.1 + (j + 0.5) * width
            geoms.append(
                GeomParams(
                    BOX, (width / 2 - 0.01, hy - 0.17, 0.04), (cx, -0.06, SOFA_SEAT_TOP + 0.04), rgba=colour
                )
            )
    for i, h in enumerate(layout.handles):
        (cx, cy, cz), (nx, ny) = h.pos, h.normal
        ex, ey = -ny * HANDLE_HALF_LENGTH, nx * HANDLE_HALF_LENGTH  # half the bar, along its tangent
        bar = _capsule((cx - ex, cy - ey, cz), (cx + ex, cy + ey, cz), 0.02, HANDLE_RGBA, name=f"handle{i}")
        geoms.append(bar)
        for s in (-1, 1):  # brackets joining the bar to the payload face
            a = (cx + s * ex * 0.9, cy + s * ey * 0.9, cz)
            geoms.append(_capsule(a, (a[0] - nx * 0.045, a[1] - ny * 0.045, cz), 0.012, BRACKET_RGBA))
    return geoms


def sofa_cushions(hx: float) -> int:
    """Number of seat cushions of a sofa `2 hx` m long."""
    return max(2, round(hx / 0.4))


def goal_geoms(layout: TeamLayout) -> list[GeomParams]:
    """The goal marker's (visual) geoms in the goal body's frame."""
    hx, hy, _ = layout.half_extents
    return [
        GeomParams(BOX, (hx, hy, 0.002), (0, 0, 0.002), rgba=(0.2, 0.8, 0.3, 0.35)),
        GeomParams(BOX, (hx * 0.45, 0.025, 0.003), (hx * 0.45, 0, 0.004), rgba=(0.1, 0.6, 0.2, 0.6)),
    ]


def obstacle_geoms(layout: TeamLayout) -> list[GeomParams]:
    """Each obstacle's collision cylinder then its visual crown, world frame, in model order."""
    geoms = []
    for i, o in enumerate(layout.obstacles):
        geoms.append(
            GeomParams(
                CYLINDER,
                (o.radius, o.height / 2, 0.0),
                (*o.pos, o.height / 2),
                rgba=(0.35, 0.5, 0.38, 1),
                collide=True,
                name=f"obstacle{i}",
            )
        )
        geoms.append(
            GeomParams(
                SPHERE, (o.radius * 0.9, 0.0, 0.0), (*o.pos, o.height + 0.1), rgba=(0.25, 0.55, 0.25, 1)
            )
        )
    return geoms


def _add_geom(body, g: GeomParams, bits: tuple[int, int], **kwargs):
    args = dict(
        type=g.gtype,
        size=list(g.size),
        pos=list(g.pos),
        quat=list(g.quat),
        rgba=list(g.rgba),
        contype=bits[0] if g.collide else 0,
        conaffinity=bits[1] if g.collide else 0,
        density=0,
        **kwargs,
    )
    if g.name:
        args["name"] = g.name
    return body.add_geom(**args)


def _add_payload(world, layout: TeamLayout) -> None:
    x, y, yaw = layout.start
    hx, hy, hz = layout.half_extents
    body = world.add_body(name=PAYLOAD, pos=[x, y, 0.0], quat=yaw_to_quat(yaw))
    body.add_freejoint(name=PAYLOAD)
    # Explicit inertia of a uniform box around the bounding box: the centre of mass sits at the centre
    # of the handles' layout, so a symmetric team shares the load evenly.
    body.explicitinertial = True
    body.mass = layout.mass
    body.ipos = [0.0, 0.0, hz]
    body.inertia = payload_inertia(layout)
    for g in payload_geoms(layout):
        if g.collide:
            _add_geom(body, g, PAYLOAD_BITS, group=0, condim=3, friction=[0.6, 0.005, 0.0001])
        else:
            _add_geom(body, g, PAYLOAD_BITS, group=1)


def payload_inertia(layout: TeamLayout) -> list[float]:
    """Principal moments (kg m^2) of a uniform box filling the payload's bounding box."""
    hx, hy, hz = layout.half_extents
    return [layout.mass / 3 * (b**2 + c**2) for b, c in ((hy, hz), (hx, hz), (hx, hy))]


def build_team_spec(layout: TeamLayout, timestep: float) -> mujoco.MjSpec:
    """The `MjSpec` of one TeamCarry episode (see the module docstring for names and frames)."""
    spec = mujoco.MjSpec()
    spec.modelname = "teamcarry"
    set_physics_options(spec, timestep, cone="pyramidal")
    set_render_quality(
        spec, numslices=16, numstacks=8, headlight_ambient=[0.4] * 3, headlight_diffuse=[0.5] * 3
    )
    spec.stat.center = [0.0, 0.0, 0.5]
    spec.stat.extent = layout.room_half * 2
    world = spec.worldbody
    room = layout.room_half

    add_skybox(spec, top_rgb=[0.85, 0.9, 0.95], bottom_rgb=[0.55, 0.65, 0.8])
    add_checker_floor(
        spec,
        room + 20.0,
        rgb1=[0.72, 0.66, 0.58],
        rgb2=[0.66, 0.6, 0.52],
        texrepeat=room + 20.0,
        reflectance=0.0,
        collision_bits=FLOOR_BITS,
    )
    wall = dict(contype=BODY_BITS[0], conaffinity=BODY_BITS[1], rgba=[0.85, 0.85, 0.82, 1], density=0)
    for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        world.add_geom(
            type=BOX,
            size=[0.05 if sx else room + 0.1, 0.05 if sy else room + 0.1, 0.5],
            pos=[sx * (room + 0.05), sy * (room + 0.05), 0.5],
            **wall,
        )
    for g in obstacle_geoms(layout):
        _add_geom(world, g, BODY_BITS, group=0)
    add_lights(spec, TEAM_LIGHTS)
    world.add_camera(
        name="overview",
        pos=[0, -room * 1.35, room * 1.5],
        xyaxes=look_at_xyaxes((0, -room * 1.35, room * 1.5), (0, -0.3, 0)),
        fovy=50,
    )

    _add_payload(world, layout)
    gx, gy, gyaw = layout.goal
    goal = world.add_body(name=GOAL, mocap=True, pos=[gx, gy, 0.0], quat=yaw_to_quat(gyaw))
    for g in goal_geoms(layout):
        _add_geom(goal, g, BODY_BITS, group=2)

    for i, ((x, y, yaw), role) in enumerate(zip(layout.agent_poses, layout.roles, strict=True)):
        _add_agent(spec, world, i, x, y, yaw, role)
    return spec


def _add_agent(spec: mujoco.MjSpec, world, i: int, x: float, y: float, yaw: float, role: str) -> None:
    params = ROLE_PARAMS[role]
    robot = role == "robot"
    name = f"agent{i}"
    shirt, skin = SHIRTS[i % len(SHIRTS)], SKINS[i % len(SKINS)]
    # The base body sits at the origin; its slides carry the start pose, so qpos0 = 0 and resets can
    # write the pose into qpos.
    base = world.add_body(name=name)
    for axis_name, axis in (("x", [1, 0, 0]), ("y", [0, 1, 0])):
        base.add_joint(
            name=f"{name}/{axis_name}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis, damping=5.0, ref=0.0
        )
    base.add_joint(
        name=f"{name}/yaw", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1], damping=5.0, armature=5.0
    )
    base.add_geom(
        name=f"{name}/body",
        type=CAPSULE,
        size=[0.22, 0.6, 0],
        pos=[0, 0, 0.95],
        mass=params.mass,
        contype=BODY_BITS[0],
        conaffinity=BODY_BITS[1],
        group=3,
        rgba=[1, 1, 1, 0.2],
        friction=[0.3, 0.005, 0.0001],
    )
    if robot:
        _add_robot_body(base, shirt)
    else:
        _add_human_body(base, shirt, skin)
    arms = base.add_body(name=f"{name}/arms", gravcomp=1.0)
    arms.add_joint(
        name=f"{name}/lift",
        type=mujoco.mjtJoint.mjJNT_SLIDE,
        axis=[0, 0, 1],
        range=LIFT_RANGE,
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        damping=LIFT_DAMPING,
        armature=1.0,
    )
    arms.explicitinertial = True
    arms.mass = 3.0
    arms.inertia = [0.1, 0.1, 0.1]
    _add_arms(arms, robot, shirt, skin)

    for joint, kv, force in (
        ("x", BASE_KV, params.base_force),
        ("y", BASE_KV, params.base_force),
        ("yaw", YAW_KV, params.base_torque),
    ):
        act = spec.add_actuator(
            name=f"{name}/{joint}",
            target=f"{name}/{joint}",
            trntype=mujoco.mjtTrn.mjTRN_JOINT,
            forcerange=[-force, force],
            forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        )
        act.set_to_velocity(kv=kv)
    act = spec.add_actuator(
        name=f"{name}/lift",
        target=f"{name}/lift",
        trntype=mujoco.mjtTrn.mjTRN_JOINT,
        forcerange=[-params.lift_force, params.lift_force],
        forcelimited=mujoco.mjtLimited.mjLIMITED_TRUE,
        ctrlrange=list(LIFT_RANGE),
        ctrllimited=mujoco.mjtLimited.mjLIMITED_TRUE,
    )
    act.set_to_position(kp=LIFT_KP)
    for s, side in ((1, "left"), (-1, "right")):
        anchor = [HAND_REACH, s * HAND_HALF_SPACING, HAND_HEIGHT]
        spec.add_equality(
            name=f"{name}/grip_{side}",
            type=mujoco.mjtEq.mjEQ_CONNECT,
            name1=f"{name}/arms",
            name2=PAYLOAD,
            objtype=mujoco.mjtObj.mjOBJ_BODY,
            active=False,
            data=[*anchor] + [0] * (mujoco.mjNEQDATA - 3),  # MuJoCo's length: 11 before 3.17, 12 since
        )


def compile_scene(layout: TeamLayout, timestep: float) -> tuple[mujoco.MjModel, SceneIds]:
    """Compiles the layout and looks up every id the env needs; agents start at their layout poses."""
    model = build_team_spec(layout, timestep).compile()
    n = len(layout.agent_poses)
    jnt = lambda name: model.joint(name)  # noqa: E731
    base_joints = [[jnt(f"agent{i}/{j}") for j in ("x", "y", "yaw")] for i in range(n)]
    lift = [jnt(f"agent{i}/lift") for i in range(n)]
    ids = SceneIds(
        payload_body=model.body(PAYLOAD).id,
        payload_qpos=int(jnt(PAYLOAD).qposadr[0]),
        payload_qvel=int(jnt(PAYLOAD).dofadr[0]),
        base_qpos=np.array([[int(j.qposadr[0]) for j in row] for row in base_joints]),
        base_qvel=np.array([[int(j.dofadr[0]) for j in row] for row in base_joints]),
        lift_qpos=np.array([int(j.qposadr[0]) for j in lift]),
        lift_qvel=np.array([int(j.dofadr[0]) for j in lift]),
        base_actuators=np.array(
            [[model.actuator(f"agent{i}/{j}").id for j in ("x", "y", "yaw")] for i in range(n)]
        ),
        lift_actuators=np.array([model.actuator(f"agent{i}/lift").id for i in range(n)]),
        arm_bodies=np.array([model.body(f"agent{i}/arms").id for i in range(n)]),
        hand_sites=np.array(
            [[model.site(f"agent{i}/arms/{s}_hand").id for s in ("left", "right")] for i in range(n)]
        ),
        grip_equalities=np.array(
            [[model.equality(f"agent{i}/grip_{s}").id for s in ("left", "right")] for i in range(n)]
        ),
        goal_mocap=int(model.body_mocapid[model.body(GOAL).id]),
    )
    return model, ids
