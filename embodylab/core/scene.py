"""Backend-free scene description: plain dataclasses that a physics backend compiles.

Units are metres, kilograms and radians; quaternions are (w, x, y, z); every pose is in the frame of
its parent (the world for objects, fixtures, the robot mount and free cameras).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Shape = Literal["box", "sphere", "cylinder", "capsule"]
Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
RGBA = tuple[float, float, float, float]

IDENTITY_QUAT: Quat = (1.0, 0.0, 0.0, 0.0)
PHYSICS_TIMESTEP = 0.002
"""seconds per physics step, in every embodylab suite."""
CONTROL_HZ = 25
"""control steps per second, in every embodylab suite: each control step runs 1 / (CONTROL_HZ x timestep)
physics steps."""
OBJECT_FEATURE_DIM = 16
"""position 3, quaternion (w, x, y, z) 4, linear velocity 3, angular velocity 3, half-extents 3."""
# Where each quantity lies in a row of the object features (`ObjectStates.features[i, POSITION]`).
POSITION = slice(0, 3)
"""metres, world frame"""
QUATERNION = slice(3, 7)
"""(w, x, y, z), world frame"""
LINEAR_VELOCITY = slice(7, 10)
"""m/s, world frame"""
ANGULAR_VELOCITY = slice(10, 13)
"""rad/s, world frame"""
HALF_EXTENTS = slice(13, 16)
"""metres, along the object's own axes"""


@dataclass
class ObjectSpec:
    """A free rigid object the robot can move.

    `half_extents` are the object's half sizes along its own axes; for a sphere all three equal the
    radius, for a cylinder or capsule they are (radius, radius, half-length).
    """

    name: str
    category: str
    shape: Shape = "box"
    half_extents: Vec3 = (0.02, 0.02, 0.02)
    mass: float = 0.1
    friction: Vec3 = (1.0, 0.005, 0.0001)
    rgba: RGBA = (0.8, 0.2, 0.2, 1.0)
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    condim: int = 4
    """contact dimensions: 4 (sliding and torsional friction) or 6 (also rolling friction, friction[2])"""


@dataclass
class GeomSpec:
    """One primitive shape of a fixture link. `collide=False` makes it visual only."""

    shape: Shape
    half_extents: Vec3
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    rgba: RGBA = (0.6, 0.6, 0.6, 1.0)
    friction: Vec3 = (1.0, 0.005, 0.0001)
    mass: float | None = None
    collide: bool = True
    name: str = ""


@dataclass
class JointSpec:
    """The joint that connects a fixture link to its parent: a hinge (radians) or a slide (metres)."""

    kind: Literal["hinge", "slide"]
    axis: Vec3
    range: tuple[float, float]
    pos: Vec3 = (0.0, 0.0, 0.0)
    damping: float = 1.0
    frictionloss: float = 0.0
    armature: float = 0.01


@dataclass
class LinkSpec:
    """A rigid part of a fixture; links with a joint are articulated and appear in `object_states()`."""

    name: str
    geoms: list[GeomSpec]
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    joint: JointSpec | None = None
    category: str = ""
    children: list[LinkSpec] = field(default_factory=list)


@dataclass
class FixtureSpec:
    """Furniture fixed to the world (a cabinet, a rack), possibly with articulated links."""

    name: str
    category: str
    root: LinkSpec
    pos: Vec3 = (0.0, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT


@dataclass
class TableSpec:
    """A table whose top surface is the plane z = `top_height` (world frame)."""

    half_extents: Vec3 = (0.45, 0.6, 0.02)
    top_height: float = 0.0
    leg_length: float = 0.73
    rgba: RGBA = (0.55, 0.42, 0.3, 1.0)


@dataclass
class MobileBaseSpec:
    """A holonomic base (world x, y and yaw joints) with a vertical lift that carries the arm.

    With a mobile base, `RobotMount.pos`/`quat` give the base's start pose on the floor (only x, y and
    the yaw about z are used), and the base joints read world x (m), world y (m) and yaw (rad) directly.
    `lift_range` bounds the height (m, above the floor) of the arm's base link."""

    half_extents: Vec3 = (0.28, 0.24, 0.1)
    """half sizes of the base's collision box, metres; its bottom floats 2 cm above the floor"""
    arm_offset: float = 0.1
    """metres forward of the base centre at which the lift column carries the arm"""
    lift_range: tuple[float, float] = (0.3, 1.0)
    home_lift: float = 0.8
    max_speed: float = 0.8
    """m/s at a normalised base velocity command of 1"""
    max_yaw_rate: float = 1.0
    """rad/s at a normalised yaw-rate command of 1"""
    rgba: RGBA = (0.22, 0.24, 0.28, 1.0)


@dataclass
class RobotMount:
    """Where the robot stands and the joint configuration it resets to."""

    kind: Literal["panda"] = "panda"
    pos: Vec3 = (-0.55, 0.0, 0.0)
    quat: Quat = IDENTITY_QUAT
    home_qpos: tuple[float, ...] = (0.0, -0.3, 0.0, -2.3, 0.0, 2.0, 0.785)
    mobile_base: MobileBaseSpec | None = None
    """None: the arm is bolted to the world at `pos`; else it rides on this holonomic base."""


@dataclass
class CameraSpec:
    """A fixed camera looking from `pos` at `lookat`; `fovy` is the vertical field of view in degrees."""

    name: str
    pos: Vec3
    lookat: Vec3
    fovy: float = 45.0


@dataclass
class LightSpec:
    pos: Vec3
    direction: Vec3 = (0.0, 0.0, -1.0)
    directional: bool = False
    diffuse: Vec3 = (0.6, 0.6, 0.6)
    castshadow: bool = True


@dataclass
class SceneSpec:
    """Everything a backend needs to build a scene. `timestep` is the physics step in seconds."""

    objects: list[ObjectSpec] = field(default_factory=list)
    fixtures: list[FixtureSpec] = field(default_factory=list)
    robot: RobotMount | None = field(default_factory=RobotMount)
    table: TableSpec | None = field(default_factory=TableSpec)
    cameras: list[CameraSpec] = field(default_factory=list)
    lights: list[LightSpec] = field(default_factory=list)
    goal_marker: bool = True
    goal_marker_rgba: RGBA = (0.1, 0.9, 0.1, 0.45)
    goal_marker_radius: float = 0.02
    timestep: float = PHYSICS_TIMESTEP
    floor_height: float = -0.75
    floor_half_size: float = 3.0
    """metres: the floor plane spans ±this in x and y"""

    def validate(self) -> None:
        names = [o.name for o in self.objects] + [f.name for f in self.fixtures]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scene names must be unique; repeated: {duplicates}")
        for obj in self.objects:
            if obj.mass <= 0:
                raise ValueError(f"object {obj.name!r} has mass {obj.mass}; it must be positive")
            if min(obj.half_extents) <= 0:
                raise ValueError(f"object {obj.name!r} has half_extents {obj.half_extents}; all must be > 0")


@dataclass
class ObjectStates:
    """Object-centric state of a scene. `features` is float32 `[n_objects, 16]` in the world frame:
    position 3 (m), quaternion (w, x, y, z) 4, linear velocity 3 (m/s), angular velocity 3 (rad/s),
    half-extents 3 (m)."""

    names: list[str]
    categories: list[str]
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.features[self.names.index(name)]


def look_at_xyaxes(pos: Vec3, lookat: Vec3) -> np.ndarray:
    """MuJoCo camera `xyaxes` (right, up) for a camera at `pos` looking at `lookat` with z up."""
    forward = np.asarray(lookat, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-9:  # looking straight down: pick +y as up in the image
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.concatenate([right, up])
