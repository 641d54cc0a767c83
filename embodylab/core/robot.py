"""A Franka Emika Panda built in code from its published kinematics.

The arm follows the modified (Craig) Denavit–Hartenberg parameters in Franka's robot documentation;
joint limits and link masses are the published ones. The hand is a parallel-jaw gripper whose two
fingers are coupled by an equality constraint and driven by one position actuator.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from embodylab.core.geometry import quat_to_yaw, yaw_to_quat
from embodylab.core.scene import MobileBaseSpec, look_at_xyaxes

# Modified DH rows (a_{i-1} [m], d_i [m], alpha_{i-1} [rad]) for joints 1..7, then the flange.
PANDA_MDH: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -np.pi / 2),
    (0.0, 0.316, np.pi / 2),
    (0.0825, 0.0, np.pi / 2),
    (-0.0825, 0.384, -np.pi / 2),
    (0.0, 0.0, np.pi / 2),
    (0.088, 0.0, np.pi / 2),
)
PANDA_FLANGE_D = 0.107
PANDA_JOINT_LIMITS: tuple[tuple[float, float], ...] = (
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
)
PANDA_LINK_MASSES = (0.629769, 4.970684, 0.646926, 3.228604, 3.587895, 1.225946, 1.666555, 0.735522)
PANDA_HAND_MASS = 0.73
PANDA_FINGER_MASS = 0.015
PANDA_TORQUE_LIMITS = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
HAND_YAW = -np.pi / 4  # the hand is mounted on the flange turned by -45 degrees about z
TCP_OFFSET = 0.1034  # flange to the centre between the fingertips, metres
FINGER_TRAVEL = 0.04  # each finger, metres
FINGER_BASE_Z = 0.0584

ARM_KP = (4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0)
ARM_COLLISION_BITS = (2, 1)  # (contype, conaffinity): arm links skip each other but hit the world
WHITE = (0.95, 0.95, 0.95, 1.0)
DARK = (0.15, 0.15, 0.17, 1.0)


def mdh_transform(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    """4×4 homogeneous transform of one modified-DH row: RotX(alpha) TransX(a) RotZ(theta) TransZ(d)."""
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array(
        [
            [ct, -st, 0.0, a],
            [st * ca, ct * ca, -sa, -d * sa],
            [st * sa, ct * sa, ca, d * ca],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def panda_dh_forward_kinematics(q: np.ndarray) -> list[np.ndarray]:
    """Frames of links 1..7, the flange and the tool centre point, relative to the robot base."""
    frames, T = [], np.eye(4)
    for (a, d, alpha), theta in zip(PANDA_MDH, q, strict=True):
        T = T @ mdh_transform(a, d, alpha, theta)
        frames.append(T)
    T = T @ mdh_transform(0.0, PANDA_FLANGE_D, 0.0, 0.0)
    frames.append(T)
    tcp = T @ mdh_transform(0.0, TCP_OFFSET, 0.0, HAND_YAW)
    frames.append(tcp)
    return frames


def _quat_rot_x(angle: float) -> list[float]:
    return [np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0]


def _next_origin(row: tuple[float, float, float]) -> np.ndarray:
    a, d, alpha = row
    return np.array([a, -d * np.sin(alpha), d * np.cos(alpha)])


@dataclass(frozen=True)
class PandaNames:
    """Names of the elements `add_panda` creates (all prefixed)."""

    prefix: str

    @property
    def joints(self) -> list[str]:
        return [f"{self.prefix}joint{i}" for i in range(1, 8)]

    @property
    def actuators(self) -> list[str]:
        return [f"{self.prefix}actuator{i}" for i in range(1, 8)]

    @property
    def fingers(self) -> list[str]:
        return [f"{self.prefix}finger_joint1", f"{self.prefix}finger_joint2"]

    @property
    def gripper_actuator(self) -> str:
        return f"{self.prefix}gripper"

    @property
    def tcp_site(self) -> str:
        return f"{self.prefix}tcp"

    @property
    def hand_body(self) -> str:
        return f"{self.prefix}hand"

    @property
    def finger_bodies(self) -> list[str]:
        return [f"{self.prefix}left_finger", f"{self.prefix}right_finger"]

    @property
    def base_body(self) -> str:
        return f"{self.prefix}link0"


def _add_link_geoms(body, start: np.ndarray, end: np.ndarray, radius: float, mass: float) -> None:
    contype, conaffinity = ARM_COLLISION_BITS
    if np.linalg.norm(end - start) > 1e-6:
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=np.concatenate([start, end]),
            size=[radius, 0, 0],
            mass=mass,
            rgba=WHITE,
            contype=contype,
            conaffinity=conaffinity,
        )
    else:
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[radius, 0, 0],
            mass=mass,
            rgba=WHITE,
            contype=contype,
            conaffinity=conaffinity,
        )
    # Dark joint housing around the joint axis: visual only, massless.
    body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[radius * 1.05, radius * 1.1, 0],
        rgba=DARK,
        contype=0,
        conaffinity=0,
        density=0,
        group=1,
    )


def add_panda(parent, pos, quat, prefix: str = "") -> PandaNames:
    """Add a Panda arm with its gripper under `parent` (an `MjsBody`) and return the element names.

    Arm joints get position actuators (ctrl = target angle, rad); the gripper actuator's ctrl is the
    target opening of each finger in metres, 0 (closed) to 0.04 (open). All links are gravity-compensated.
    """
    names = PandaNames(prefix)
    base = parent.add_body(name=names.base_body, pos=pos, quat=quat, gravcomp=1.0)
    first_joint = _next_origin(PANDA_MDH[0])
    _add_link_geoms(base, np.array([0.0, 0.0, 0.0]), first_joint - [0, 0, 0.1], 0.065, PANDA_LINK_MASSES[0])
    body = base
    for i, row in enumerate(PANDA_MDH):
        a, d, alpha = row
        body = body.add_body(
            name=f"{prefix}link{i + 1}",
            pos=[a, -d * np.sin(alpha), d * np.cos(alpha)],
            quat=_quat_rot_x(alpha),
            gravcomp=1.0,
        )
        lo, hi = PANDA_JOINT_LIMITS[i]
        body.add_joint(
            name=names.joints[i],
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0, 0, 1],
            range=[lo, hi],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            armature=0.1,
            damping=1.0,
        )
        nxt = _next_origin(PANDA_MDH[i + 1]) if i + 1 < len(PANDA_MDH) else np.array([0, 0, PANDA_FLANGE_D])
        radius = 0.06 if i < 4 else 0.05
        _add_link_geoms(body, np.zeros(3), nxt, radius, PANDA_LINK_MASSES[i + 1])

    hand = body.add_body(
        name=names.hand_body, pos=[0, 0, PANDA_FLANGE_D], quat=yaw_to_quat(HAND_YAW), gravcomp=1.0
    )
    contype, conaffinity = ARM_COLLISION_BITS
    hand.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.025, 0.095, 0.025],
        pos=[0, 0, 0.03],
        mass=PANDA_HAND_MASS,
        rgba=WHITE,
        contype=contype,
        conaffinity=conaffinity,
    )
    hand.add_geom(
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[0.04, 0.005, 0],
        pos=[0, 0, 0.005],
        rgba=DARK,
        contype=0,
        conaffinity=0,
        density=0,
        group=1,
    )
    hand.add_site(name=names.tcp_site, pos=[0, 0, TCP_OFFSET], size=[0.005, 0, 0], rgba=[1, 0, 0, 0])
    hand.add_camera(name=f"{prefix}wrist", pos=[0.06, 0, 0.02], quat=[0, 1, 0, 0], fovy=70.0)
    for side, sign in ((0, 1.0), (1, -1.0)):
        finger = hand.add_body(name=names.finger_bodies[side], pos=[0, 0, FINGER_BASE_Z], gravcomp=1.0)
        finger.add_joint(
            name=names.fingers[side],
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0.0, FINGER_TRAVEL],
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=5.0,
            armature=0.01,
        )
        # Finger pad: its inner face sits on the hand's centre plane when the finger is closed.
        finger.add_geom(
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.011, 0.007, 0.026],
            pos=[0, sign * 0.007, 0.026],
            mass=PANDA_FINGER_MASS,
            rgba=DARK,
            friction=[1.5, 0.02, 0.002],
            condim=4,
            solref=[0.01, 1.0],
            contype=contype,
            conaffinity=conaffinity,
        )
    return names


def add_panda_actuators(spec: mujoco.MjSpec, names: PandaNames) -> None:
    """Position actuators: the seven arm joints and the coupled gripper fingers."""
    if spec.compiler.degree:
        raise ValueError("the Panda is specified in radians: set spec.compiler.degree = False first")
    for i, (joint, actuator) in enumerate(zip(names.joints, names.actuators, strict=True)):
        act = spec.add_actuator(name=actuator, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=ARM_KP[i], kv=ARM_KP[i] / 25)
        act.ctrlrange = PANDA_JOINT_LIMITS[i]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-PANDA_TORQUE_LIMITS[i], PANDA_TORQUE_LIMITS[i]]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    grip = spec.add_actuator(
        name=names.gripper_actuator, target=names.fingers[0], trntype=mujoco.mjtTrn.mjTRN_JOINT
    )
    grip.set_to_position(kp=1000.0, kv=20.0)
    grip.ctrlrange = [0.0, FINGER_TRAVEL]
    grip.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    grip.forcerange = [-40.0, 40.0]
    grip.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT,
        name1=names.fingers[1],
        name2=names.fingers[0],
        objtype=mujoco.mjtObj.mjOBJ_JOINT,
        # q1 = q0 (polynomial coefficients 0, 1); the array's length is MuJoCo's (11 before 3.17, 12 since).
        data=np.array([0, 1, 0, 0, 0] + [0] * (mujoco.mjNEQDATA - 5), dtype=float),
        solref=[0.005, 1.0],
    )


# ---- holonomic mobile base ----------------------------------------------------------------------------
BASE_COLLISION_BITS = (4, 1)
"""(contype, conaffinity) of the base and lift column: they hit walls, furniture and objects (which carry
contype 1) but neither the floor they float over nor the arm riding on them (contype 2, conaffinity 1)."""
BASE_MASS = 40.0
LIFT_MASS = 4.0
BASE_HEAD_CAMERA_HEIGHT = 1.75


@dataclass(frozen=True)
class MobileBaseNames:
    """Names of the elements `add_mobile_base` creates (all prefixed)."""

    prefix: str

    @property
    def joints(self) -> list[str]:
        """The world-x slide, world-y slide and yaw hinge of the base, then the lift slide."""
        return [
            f"{self.prefix}base_x",
            f"{self.prefix}base_y",
            f"{self.prefix}base_yaw",
            f"{self.prefix}lift",
        ]

    @property
    def actuators(self) -> list[str]:
        return [
            f"{self.prefix}base_vx",
            f"{self.prefix}base_vy",
            f"{self.prefix}base_wz",
            f"{self.prefix}lift",
        ]

    @property
    def base_body(self) -> str:
        return f"{self.prefix}base"

    @property
    def lift_body(self) -> str:
        return f"{self.prefix}lift"

    @property
    def head_camera(self) -> str:
        return f"{self.prefix}head"


def add_mobile_base(
    parent, base: MobileBaseSpec, pos, quat, prefix: str = ""
) -> tuple[mujoco.MjsBody, MobileBaseNames, tuple[float, float, float]]:
    """Add a holonomic base with a lift column under `parent`; return (lift body, names, start x, y, yaw).

    The x and y slides act along the world axes and the yaw hinge about the
    world z axis, each with its reference at the start pose, so the joint positions read world x, y (m)
    and yaw (rad). The lift slide's position is the height (m) of the arm's base link above the floor.
    The base floats 2 cm above the floor: it never touches it, so it slides without friction."""
    names = MobileBaseNames(prefix)
    hx, hy, hz = base.half_extents
    start_yaw = quat_to_yaw(quat)
    # Each joint's reference is its start value and its body starts there, so qpos reads world values.
    start = (float(pos[0]), float(pos[1]), start_yaw)
    x_body = parent.add_body(name=f"{prefix}base_x", pos=[start[0], 0.0, 0.0])
    x_body.add_joint(
        name=names.joints[0], type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0], ref=start[0], armature=1.0
    )
    y_body = x_body.add_body(name=f"{prefix}base_y", pos=[0.0, start[1], 0.0])
    y_body.add_joint(
        name=names.joints[1], type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0], ref=start[1], armature=1.0
    )
    for carrier in (x_body, y_body):  # the slide carriers need some mass of their own to be simulated
        carrier.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.01, 0, 0], mass=0.5, contype=0,
                         conaffinity=0, group=3)  # fmt: skip
    body = y_body.add_body(name=names.base_body, quat=yaw_to_quat(start_yaw))
    body.add_joint(
        name=names.joints[2], type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1], ref=start_yaw, armature=0.5
    )
    contype, conaffinity = BASE_COLLISION_BITS
    body.add_geom(
        name=f"{prefix}base_box",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[hx, hy, hz],
        pos=[0, 0, 0.02 + hz],
        mass=BASE_MASS,
        rgba=base.rgba,
        contype=contype,
        conaffinity=conaffinity,
    )
    for sx in (-1, 1):  # wheels: visual only, the base glides on its joints
        for sy in (-1, 1):
            body.add_geom(
                type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                size=[0.05, 0.02, 0],
                pos=[sx * (hx - 0.07), sy * (hy + 0.005), 0.05],
                quat=_quat_rot_x(np.pi / 2),
                rgba=DARK,
                contype=0,
                conaffinity=0,
                density=0,
                group=1,
            )
    # A mast at the back carries the head camera, the robot's eye.
    mast_x = -hx + 0.05
    body.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.025, 0.025, (BASE_HEAD_CAMERA_HEIGHT - 2 * hz) / 2],
        pos=[mast_x, 0, 0.02 + 2 * hz + (BASE_HEAD_CAMERA_HEIGHT - 2 * hz) / 2],
        rgba=base.rgba,
        contype=0,
        conaffinity=0,
        density=0,
    )
    head = np.array([mast_x + 0.03, 0.0, BASE_HEAD_CAMERA_HEIGHT + 0.05])
    body.add_camera(
        name=names.head_camera, pos=head, xyaxes=look_at_xyaxes(tuple(head), (1.6, 0.0, 0.3)), fovy=70.0
    )
    lift = body.add_body(name=names.lift_body, pos=[base.arm_offset, 0.0, base.home_lift], gravcomp=1.0)
    lo, hi = base.lift_range
    lift.add_joint(
        name=names.joints[3],
        type=mujoco.mjtJoint.mjJNT_SLIDE,
        axis=[0, 0, 1],
        ref=base.home_lift,
        range=[lo, hi],
        limited=mujoco.mjtLimited.mjLIMITED_TRUE,
        damping=50.0,
        armature=1.0,
    )
    # The column hangs from the arm's base link down into the base box and shows the lift's travel; only
    # its top collides (a full-length collider would hit the floor with the lift down).
    column_half = (hi + 0.05) / 2
    lift.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.07, 0.07, column_half],
        pos=[0, 0, -column_half],
        rgba=WHITE,
        contype=0,
        conaffinity=0,
        density=0,
    )
    lift.add_geom(
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.07, 0.07, 0.05],
        pos=[0, 0, -0.05],
        mass=LIFT_MASS,
        rgba=WHITE,
        contype=contype,
        conaffinity=conaffinity,
    )
    return lift, names, start


def add_mobile_base_actuators(spec: mujoco.MjSpec, base: MobileBaseSpec, names: MobileBaseNames) -> None:
    """Velocity actuators on the base joints (ctrl: world vx, vy in m/s, yaw rate in rad/s) and a position
    actuator on the lift (ctrl: arm base-link height, m). Force limits let walls and furniture stop the
    base instead of the base pushing through them."""
    for joint, actuator, kv, force, limit in zip(
        names.joints[:3],
        names.actuators[:3],
        (2000.0, 2000.0, 400.0),
        (600.0, 600.0, 150.0),
        (base.max_speed, base.max_speed, base.max_yaw_rate),
        strict=True,
    ):
        act = spec.add_actuator(name=actuator, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_velocity(kv=kv)
        act.ctrlrange = [-limit, limit]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-force, force]
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    lift = spec.add_actuator(
        name=names.actuators[3], target=names.joints[3], trntype=mujoco.mjtTrn.mjTRN_JOINT
    )
    lift.set_to_position(kp=20000.0, kv=2000.0)
    lift.ctrlrange = list(base.lift_range)
    lift.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
    lift.forcerange = [-2000.0, 2000.0]
    lift.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
