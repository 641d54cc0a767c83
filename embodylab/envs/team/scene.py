"""The one builder of TeamCarry scenes: a `TeamLayout` compiled to MuJoCo through `mujoco.MjSpec`.

The lab `SceneSpec` describes a tabletop around one arm; the team scene needs mobile human-proxy
bodies and runtime grip constraints, so it is built here directly with `MjSpec`, reusing the project's
floor, camera and option conventions.

Agent `i` (world frame, z up) is a body `agent{i}` on three joints (`agent{i}/x`, `agent{i}/y` slides,
`agent{i}/yaw` hinge) driven by velocity actuators, with one collision capsule and visual-only limbs.
Its arms are a child body `agent{i}/arms` on a vertical slide `agent{i}/lift` (hand height
`HAND_HEIGHT + q` m) driven by a force-limited position actuator: the lift force range, not a rule, is
what makes a heavy payload need several agents. The arm body is gravity-compensated, so the lift
actuator's force goes to the payload. Each hand has a `connect` equality `agent{i}/grip_{left,right}`
between the arm body (anchor at the hand) and the payload, inactive until the env switches it on.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from embodylab.core.mujoco_backend import MAX_OFFSCREEN
from embodylab.core.scene import look_at_xyaxes
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


def _add_payload(world, layout: TeamLayout) -> None:
    x, y, yaw = layout.start
    hx, hy, hz = layout.half_extents
    body = world.add_body(name=PAYLOAD, pos=[x, y, 0.0], quat=_yaw_quat(yaw))
    body.add_freejoint(name=PAYLOAD)
    # Explicit inertia of a uniform box around the bounding box: the centre of mass sits at the centre
    # of the handles' layout, so a symmetric team shares the load evenly.
    body.explicitinertial = True
    body.mass = layout.mass
    body.ipos = [0.0, 0.0, hz]
    body.inertia = [layout.mass / 3 * (b**2 + c**2) for b, c in ((hy, hz), (hx, hz), (hx, hy))]
    colour = list(layout.rgba)
    dark = [c * 0.75 for c in colour[:3]] + [1.0]
    collide = dict(
        contype=PAYLOAD_BITS[0], conaffinity=PAYLOAD_BITS[1], group=0, condim=3, friction=[0.6, 0.005, 0.0001]
    )
    if layout.shape == "table":
        top = 0.025
        _geom(body, BOX, (hx, hy, top), pos=(0, 0, 2 * hz - top), rgba=colour, **collide)
        leg = (2 * hz - 2 * top) / 2
        for sx in (-1, 1):
            for sy in (-1, 1):
                _geom(
                    body,
                    BOX,
                    (0.035, 0.035, leg),
                    pos=(sx * (hx - 0.06), sy * (hy - 0.06), leg),
                    rgba=dark,
                    **collide,
                )
    elif layout.shape == "box":
        _geom(body, BOX, (hx, hy, hz), pos=(0, 0, hz), rgba=colour, **collide)
        _geom(body, BOX, (hx + 0.002, 0.04, hz + 0.002), pos=(0, 0, hz), rgba=(0.8, 0.75, 0.6, 1))
    else:
        seat = SOFA_SEAT_TOP / 2
        _geom(body, BOX, (hx, hy, seat), pos=(0, 0, seat), rgba=dark, **collide)
        back_half = (2 * hz - SOFA_SEAT_TOP) / 2
        _geom(
            body,
            BOX,
            (hx, 0.11, back_half),
            pos=(0, hy - 0.11, SOFA_SEAT_TOP + back_half),
            rgba=colour,
            **collide,
        )
        arm_half = (SOFA_ARM_TOP - SOFA_SEAT_TOP) / 2
        for s in (-1, 1):
            _geom(
                body,
                BOX,
                (0.1, hy - 0.11, arm_half),
                pos=(s * (hx - 0.1), -0.11, SOFA_SEAT_TOP + arm_half),
                rgba=colour,
                **collide,
            )
        cushions = max(2, round(hx / 0.4))
        width = (2 * hx - 0.2) / cushions
        for j in range(cushions):
            cx = -hx + 0.1 + (j + 0.5) * width
            _geom(
                body,
                BOX,
                (width / 2 - 0.01, hy - 0.17, 0.04),
                pos=(cx, -0.06, SOFA_SEAT_TOP + 0.04),
                rgba=colour,
            )
    for i, h in enumerate(layout.handles):
        tx, ty = h.tangent
        centre = np.array(h.pos)
        end = np.array([tx, ty, 0.0]) * HANDLE_HALF_LENGTH
        _geom(
            body,
            CAPSULE,
            (0.02,),
            fromto=[*(centre - end), *(centre + end)],
            rgba=(0.95, 0.75, 0.1, 1),
            name=f"handle{i}",
        )
        nx, ny = h.normal
        for s in (-1, 1):  # brackets joining the bar to the payload face
            a = centre + s * end * 0.9
            b = a - np.array([nx, ny, 0.0]) * 0.045
            _geom(body, CAPSULE, (0.012,), fromto=[*a, *b], rgba=(0.3, 0.3, 0.3, 1))


def _yaw_quat(yaw: float) -> list[float]:
    return [float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2))]


def build_team_spec(layout: TeamLayout, timestep: float) -> mujoco.MjSpec:
    """The `MjSpec` of one TeamCarry episode (see the module docstring for names and frames)."""
    spec = mujoco.MjSpec()
    spec.modelname = "teamcarry"
    spec.compiler.degree = False
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.visual.global_.offwidth = MAX_OFFSCREEN
    spec.visual.global_.offheight = MAX_OFFSCREEN
    spec.visual.quality.numslices = 16
    spec.visual.quality.numstacks = 8
    spec.visual.quality.offsamples = 0
    spec.visual.headlight.ambient = [0.4, 0.4, 0.4]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.stat.center = [0.0, 0.0, 0.5]
    spec.stat.extent = layout.room_half * 2
    world = spec.worldbody
    room = layout.room_half

    spec.add_texture(
        name="sky",
        type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
        rgb1=[0.85, 0.9, 0.95],
        rgb2=[0.55, 0.65, 0.8],
        width=64,
        height=64,
    )
    checker = spec.add_texture(
        name="floor_tex",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.72, 0.66, 0.58],
        rgb2=[0.66, 0.6, 0.52],
        width=256,
        height=256,
    )
    spec.add_material(name="floor_mat", texrepeat=[room + 20.0, room + 20.0], reflectance=0.0).textures[
        mujoco.mjtTextureRole.mjTEXROLE_RGB
    ] = checker.name
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[room + 20.0, room + 20.0, 0.05],
        material="floor_mat",
        contype=FLOOR_BITS[0],
        conaffinity=FLOOR_BITS[1],
    )
    wall = dict(contype=BODY_BITS[0], conaffinity=BODY_BITS[1], rgba=[0.85, 0.85, 0.82, 1], density=0)
    for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        world.add_geom(
            type=BOX,
            size=[0.05 if sx else room + 0.1, 0.05 if sy else room + 0.1, 0.5],
            pos=[sx * (room + 0.05), sy * (room + 0.05), 0.5],
            **wall,
        )
    for i, o in enumerate(layout.obstacles):
        world.add_geom(
            name=f"obstacle{i}",
            type=CYLINDER,
            size=[o.radius, o.height / 2, 0],
            pos=[*o.pos, o.height / 2],
            contype=BODY_BITS[0],
            conaffinity=BODY_BITS[1],
            rgba=[0.35, 0.5, 0.38, 1],
            density=0,
        )
        world.add_geom(
            type=SPHERE,
            size=[o.radius * 0.9, 0, 0],
            pos=[*o.pos, o.height + 0.1],
            rgba=[0.25, 0.55, 0.25, 1],
            contype=0,
            conaffinity=0,
            density=0,
        )
    world.add_light(
        pos=[0, 0, 6],
        dir=[0, 0, -1],
        diffuse=[0.5, 0.5, 0.5],
        castshadow=False,
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
    )
    world.add_camera(
        name="overview",
        pos=[0, -room * 1.35, room * 1.5],
        xyaxes=look_at_xyaxes((0, -room * 1.35, room * 1.5), (0, -0.3, 0)),
        fovy=50,
    )

    _add_payload(world, layout)
    gx, gy, gyaw = layout.goal
    goal = world.add_body(name=GOAL, mocap=True, pos=[gx, gy, 0.0], quat=_yaw_quat(gyaw))
    hx, hy, _ = layout.half_extents
    _geom(goal, BOX, (hx, hy, 0.002), pos=(0, 0, 0.002), rgba=(0.2, 0.8, 0.3, 0.35), group=2)
    _geom(goal, BOX, (hx * 0.45, 0.025, 0.003), pos=(hx * 0.45, 0, 0.004), rgba=(0.1, 0.6, 0.2, 0.6), group=2)

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
            data=[*anchor, 0, 0, 0, 0, 0, 0, 0, 0, 0],
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
