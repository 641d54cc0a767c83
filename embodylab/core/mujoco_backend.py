"""Compile a `SceneSpec` to MuJoCo through `mujoco.MjSpec`, and read the compiled scene back.

`MujocoScene` owns the `MjModel`/`MjData` pair and every id the envs need, looked up once at build time
so that stepping, resetting and state read-out never search by name. It keeps the compiled model only, not
the `MjSpec` it was compiled from, so that it can be copied and pickled (`MjModel` and `MjData` can be).
"""

from __future__ import annotations

import mujoco
import numpy as np

from embodylab.core.builders import add_checker_floor, add_lights, set_physics_options, set_render_quality
from embodylab.core.robot import (
    MobileBaseNames,
    PandaNames,
    add_mobile_base,
    add_mobile_base_actuators,
    add_panda,
    add_panda_actuators,
)
from embodylab.core.scene import (
    ANGULAR_VELOCITY,
    HALF_EXTENTS,
    LINEAR_VELOCITY,
    OBJECT_FEATURE_DIM,
    POSITION,
    QUATERNION,
    FixtureSpec,
    GeomSpec,
    LinkSpec,
    ObjectStates,
    SceneSpec,
    Shape,
    look_at_xyaxes,
)

_GEOM_TYPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
}
WORLD_COLLISION_BITS = (1, 3)  # (contype, conaffinity) of objects and furniture: they touch everything
GOAL_MARKER_BODY = "goal_marker"


def mujoco_geom_size(shape: Shape, half_extents) -> list[float]:
    """MuJoCo's `size` for a shape given its half-extents (radius, radius, half-length for round shapes)."""
    hx, hy, hz = half_extents
    if shape == "box":
        return [hx, hy, hz]
    if shape == "sphere":
        return [hx, 0.0, 0.0]
    if shape == "cylinder":
        return [hx, hz, 0.0]
    if shape == "capsule":
        return [hx, hz - hx, 0.0]
    raise ValueError(f"unknown shape {shape!r}; valid shapes: {sorted(_GEOM_TYPES)}")


def _add_geom(body, geom: GeomSpec, name: str) -> None:
    contype, conaffinity = WORLD_COLLISION_BITS if geom.collide else (0, 0)
    kwargs = dict(
        type=_GEOM_TYPES[geom.shape],
        size=mujoco_geom_size(geom.shape, geom.half_extents),
        pos=geom.pos,
        quat=geom.quat,
        rgba=geom.rgba,
        friction=geom.friction,
        contype=contype,
        conaffinity=conaffinity,
    )
    if name:
        kwargs["name"] = name
    if geom.mass is not None:
        kwargs["mass"] = geom.mass
    elif not geom.collide:
        kwargs["density"] = 0.0
    body.add_geom(**kwargs)


def _add_link(parent, link: LinkSpec, fixture: FixtureSpec, pos, quat) -> None:
    body = parent.add_body(name=f"{fixture.name}/{link.name}", pos=pos, quat=quat)
    if link.joint is not None:
        j = link.joint
        body.add_joint(
            name=f"{fixture.name}/{link.name}",
            type=mujoco.mjtJoint.mjJNT_HINGE if j.kind == "hinge" else mujoco.mjtJoint.mjJNT_SLIDE,
            axis=j.axis,
            pos=j.pos,
            range=j.range,
            limited=mujoco.mjtLimited.mjLIMITED_TRUE,
            damping=j.damping,
            frictionloss=j.frictionloss,
            armature=j.armature,
        )
    for i, geom in enumerate(link.geoms):
        _add_geom(body, geom, f"{fixture.name}/{link.name}/{geom.name or i}")
    for child in link.children:
        _add_link(body, child, fixture, child.pos, child.quat)


def build_mjspec(scene: SceneSpec) -> tuple[mujoco.MjSpec, PandaNames | None]:
    """Translate the scene description into an `MjSpec` (no XML involved)."""
    scene.validate()
    spec = mujoco.MjSpec()
    spec.modelname = "embodylab"
    set_physics_options(spec, scene.timestep, cone="elliptic", noslip_iterations=3)
    # Software rasterisers spend their time on triangles and multisampling, not on pixels: coarser round
    # shapes and no MSAA render 64x64 observations ~6x faster and look the same at 256x256.
    set_render_quality(
        spec,
        numslices=12,
        numstacks=6,
        headlight_ambient=[0.35] * 3,
        headlight_diffuse=[0.4] * 3,
        shadowsize=2048,
    )
    spec.stat.center = [0.0, 0.0, 0.1]
    spec.stat.extent = 1.2
    world = spec.worldbody
    add_checker_floor(
        spec,
        scene.floor_half_size,
        rgb1=[0.32, 0.34, 0.38],
        rgb2=[0.26, 0.28, 0.32],
        texrepeat=6,
        reflectance=0.1,
        collision_bits=(1, 3),
        height=scene.floor_height,
    )
    if scene.table is not None:
        t = scene.table
        hx, hy, hz = t.half_extents
        table = world.add_body(name="table", pos=[0, 0, t.top_height - hz])
        table.add_geom(
            name="table_top",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[hx, hy, hz],
            rgba=t.rgba,
            friction=[1.0, 0.005, 0.0001],
            contype=1,
            conaffinity=3,
        )
        for sx in (-1, 1):
            for sy in (-1, 1):
                table.add_geom(
                    type=mujoco.mjtGeom.mjGEOM_BOX,
                    size=[0.025, 0.025, t.leg_length / 2],
                    pos=[sx * (hx - 0.05), sy * (hy - 0.05), -hz - t.leg_length / 2],
                    rgba=[c * 0.7 for c in t.rgba[:3]] + [1.0],
                    contype=0,
                    conaffinity=0,
                )
    add_lights(spec, scene.lights)
    for cam in scene.cameras:
        world.add_camera(
            name=cam.name, pos=cam.pos, xyaxes=look_at_xyaxes(cam.pos, cam.lookat), fovy=cam.fovy
        )

    for obj in scene.objects:
        body = world.add_body(name=obj.name, pos=obj.pos, quat=obj.quat)
        body.add_freejoint(name=obj.name)
        contype, conaffinity = WORLD_COLLISION_BITS
        body.add_geom(
            name=obj.name,
            type=_GEOM_TYPES[obj.shape],
            size=mujoco_geom_size(obj.shape, obj.half_extents),
            mass=obj.mass,
            friction=obj.friction,
            rgba=obj.rgba,
            condim=obj.condim,
            contype=contype,
            conaffinity=conaffinity,
            solref=[0.01, 1.0],
        )
    for fixture in scene.fixtures:
        _add_link(world, fixture.root, fixture, fixture.pos, fixture.quat)

    if scene.goal_marker:
        marker = world.add_body(name=GOAL_MARKER_BODY, mocap=True, pos=[0, 0, -10])
        marker.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE,
            size=[scene.goal_marker_radius, 0, 0],
            rgba=scene.goal_marker_rgba,
            contype=0,
            conaffinity=0,
            density=0,
            group=2,
        )

    robot_names = None
    if scene.robot is not None:
        mount, parent, pos, quat = scene.robot, world, scene.robot.pos, scene.robot.quat
        if mount.mobile_base is not None:  # the arm rides on the lift, at its origin
            parent, base_names, _ = add_mobile_base(world, mount.mobile_base, pos, quat)
            pos, quat = (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0)
        robot_names = add_panda(parent, pos, quat)
        add_panda_actuators(spec, robot_names)
        if mount.mobile_base is not None:
            add_mobile_base_actuators(spec, mount.mobile_base, base_names)
    return spec, robot_names


def _articulated_links(fixture: FixtureSpec) -> list[tuple[str, LinkSpec]]:
    found, stack = [], [fixture.root]
    while stack:
        link = stack.pop(0)
        if link.joint is not None:
            found.append((f"{fixture.name}/{link.name}", link))
        stack.extend(link.children)
    return found


def _link_half_extents(link: LinkSpec) -> np.ndarray:
    """Axis-aligned half-extents (link frame) of the link's colliding geoms, ignoring geom rotations."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for geom in link.geoms:
        if not geom.collide:
            continue
        centre, half = np.asarray(geom.pos), np.asarray(geom.half_extents)
        lo, hi = np.minimum(lo, centre - half), np.maximum(hi, centre + half)
    return (hi - lo) / 2 if np.all(np.isfinite(lo)) else np.zeros(3)


class MujocoScene:
    """A compiled scene: the MuJoCo model and data plus cached ids for objects, fixtures and robot."""

    def __init__(self, scene: SceneSpec):
        self.spec_description = scene
        mjspec, self.robot_names = build_mjspec(scene)
        self.model = mjspec.compile()
        m = self.model
        mount = scene.robot
        self.base_names = MobileBaseNames("") if mount is not None and mount.mobile_base is not None else None
        self.data = mujoco.MjData(self.model)

        # Object-centric entities: the free objects, then the articulated fixture links.
        self.object_names = [o.name for o in scene.objects]
        self.object_categories = [o.category for o in scene.objects]
        half_extents = [o.half_extents for o in scene.objects]
        for fixture in scene.fixtures:
            for name, link in _articulated_links(fixture):
                self.object_names.append(name)
                self.object_categories.append(link.category or fixture.category)
                half_extents.append(_link_half_extents(link))
        self.object_body_ids = np.array([m.body(n).id for n in self.object_names], dtype=np.int64)
        self._object_body_id = dict(zip(self.object_names, self.object_body_ids.tolist(), strict=True))
        self._half_extents = np.asarray(half_extents, dtype=np.float32).reshape(-1, 3)
        self.n_free_objects = len(scene.objects)
        free_joints = [m.joint(o.name) for o in scene.objects]
        self.object_qpos_adr = np.array([j.qposadr[0] for j in free_joints], dtype=np.int64)
        self.object_qvel_adr = np.array([j.dofadr[0] for j in free_joints], dtype=np.int64)
        free_dofs = (self.object_qvel_adr[:, None] + np.arange(6)).reshape(-1)
        if len(free_dofs) and not np.array_equal(
            free_dofs, np.arange(free_dofs[0], free_dofs[0] + len(free_dofs))
        ):
            raise RuntimeError("the free objects' dofs are expected to be consecutive in the compiled model")
        self._free_qvel_slice = (
            slice(int(free_dofs[0]), int(free_dofs[-1]) + 1) if len(free_dofs) else slice(0, 0)
        )
        self.fixture_joint_ids = {
            name: m.joint(name).id for fixture in scene.fixtures for name, _ in _articulated_links(fixture)
        }
        # geom id -> object index (+1; 0 means "not an object") for segmentation read-out.
        self.geom_object_index = np.zeros(m.ngeom + 1, dtype=np.int32)
        body_to_object = {int(b): i for i, b in enumerate(self.object_body_ids)}
        for g in range(m.ngeom):
            body = int(m.geom_bodyid[g])
            while body != 0 and body not in body_to_object:  # rigid children count as their ancestor
                body = int(m.body_parentid[body])
            if body in body_to_object:
                self.geom_object_index[g] = body_to_object[body] + 1
        self.goal_mocap_id = int(m.body_mocapid[m.body(GOAL_MARKER_BODY).id]) if scene.goal_marker else -1
        ids = self.object_body_ids
        consecutive = len(ids) == 0 or np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids)))
        # A slice reads MjData through views; objects and fixture links are built consecutively.
        self._object_body_slice = slice(int(ids[0]), int(ids[-1]) + 1) if len(ids) and consecutive else ids
        self._velocity = np.zeros(6)
        self._bind_views()
        mujoco.mj_forward(m, self.data)

    def _bind_views(self) -> None:
        """With consecutive bodies, the object features are read through views into MjData (its memory
        never moves): made once, because slicing MjData costs more per step than copying out of it.
        Otherwise they are copies, taken every read. A copy of the scene rebinds them to its own MjData."""
        ids = self.object_body_ids
        consecutive = isinstance(self._object_body_slice, slice)
        self._feature_views = self._object_feature_sources() if len(ids) and consecutive else None

    def __getstate__(self) -> dict:
        # Copying (pickle, deepcopy) turns a view into a detached array: the views are rebuilt instead.
        return {k: v for k, v in self.__dict__.items() if k != "_feature_views"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_views()

    def _object_feature_sources(self) -> tuple[np.ndarray, ...]:
        """(position, quaternion, free objects' linear and angular velocity) of the objects, from MjData.

        A free joint's qvel starts with the linear velocity of the body origin (world frame); cvel's angular
        half is the body's angular velocity in world orientation."""
        d, bodies, n_free = self.data, self._object_body_slice, self.n_free_objects
        linear = d.qvel[self._free_qvel_slice].reshape(n_free, 6)[:, 0:3]
        return d.xpos[bodies], d.xquat[bodies], linear, d.cvel[bodies][:n_free, 0:3]

    # ---- state read-out -------------------------------------------------------------------------
    def object_states(self) -> ObjectStates:
        """A snapshot of the object-centric state (see `ObjectStates`)."""
        features = np.empty((len(self.object_names), OBJECT_FEATURE_DIM), np.float32)
        return ObjectStates(
            list(self.object_names), list(self.object_categories), self.update_object_features(features)
        )

    def update_object_features(self, f: np.ndarray) -> np.ndarray:
        """Write the float32 [n_objects, 16] object features into `f` (any writable view) and return it."""
        d = self.data
        ids = self.object_body_ids
        n_free = self.n_free_objects
        f[:, HALF_EXTENTS] = self._half_extents
        views = self._feature_views
        xpos, xquat, linear, angular = views if views is not None else self._object_feature_sources()
        f[:, POSITION] = xpos
        f[:, QUATERNION] = xquat
        if n_free:
            f[:n_free, LINEAR_VELOCITY] = linear
            f[:n_free, ANGULAR_VELOCITY] = angular
        # Articulated links: [angular, linear] at the body origin in world orientation (flg_local=0).
        for row in range(n_free, len(ids)):
            mujoco.mj_objectVelocity(
                self.model, d, mujoco.mjtObj.mjOBJ_BODY, int(ids[row]), self._velocity, 0
            )
            f[row, 7:10] = self._velocity[3:6]
            f[row, 10:13] = self._velocity[0:3]
        return f

    def object_position(self, name: str) -> np.ndarray:
        """World position (m) of the object or articulated link `name`, a copy."""
        return self.data.xpos[self._object_body_id[name]].copy()

    # ---- state writing (resets never recompile) -------------------------------------------------
    def set_object_pose(self, index: int, pos, quat=(1.0, 0.0, 0.0, 0.0)) -> None:
        adr = self.object_qpos_adr[index]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = quat
        vadr = self.object_qvel_adr[index]
        self.data.qvel[vadr : vadr + 6] = 0.0

    def set_goal_marker(self, pos) -> None:
        if self.goal_mocap_id >= 0:
            self.data.mocap_pos[self.goal_mocap_id] = pos

    def fixture_joint_position(self, name: str) -> float:
        return float(self.data.qpos[self.model.jnt_qposadr[self.fixture_joint_ids[name]]])
