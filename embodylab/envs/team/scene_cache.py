"""Compiled TeamCarry scenes reused across resets: one compile per scene topology, layouts written in place.

`topology_key` says which layouts compile to models that differ only in values; `LayoutWriter` writes a
layout into a model compiled for another of the same topology; `SceneCache` holds, per topology, the
model, its data, its ids, its writer and `SceneViews` (numpy views into the data for the env's hot path).
Views do not survive a copy (a copied view is a detached array), so the cache rebuilds them on the
copy's data when it is deep-copied or unpickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cmp_to_key

import mujoco
import numpy as np

from embodylab.core.geometry import yaw_to_quat
from embodylab.envs.team.layout import TeamLayout
from embodylab.envs.team.scene import (
    BOX,
    CAPSULE,
    CYLINDER,
    GOAL,
    GeomParams,
    SceneIds,
    compile_scene,
    goal_geoms,
    obstacle_geoms,
    payload_geoms,
    payload_inertia,
    sofa_cushions,
)


def topology_key(layout: TeamLayout) -> tuple:
    """What fixes the compiled model's tree and array sizes: two layouts with the same key compile to
    models that differ only in values (sizes, poses, masses, colours), which `LayoutWriter` writes."""
    return (
        layout.shape,
        len(layout.obstacles),
        sofa_cushions(layout.half_extents[0]) if layout.shape == "sofa" else 0,
        len(layout.handles),
        layout.roles,
        layout.room_half,
    )


_MJ_EPS = 1e-14  # mjEPS: MuJoCo's tie tolerance when it sorts geoms into a body's bounding-volume tree
_IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
_BOX_CORNERS = np.array([[v & 1, (v >> 1) & 1, (v >> 2) & 1] for v in range(8)], float) * 2 - 1  # [8, 3]


def _quat_mats(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices `[n, 3, 3]` of unit quaternions `[n, 4]` (w, x, y, z)."""
    w, x, y, z = quat.T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)


class LayoutWriter:
    """Writes a layout into a model compiled for another layout with the same `topology_key`, so that
    the model equals the one `compile_scene` builds for it (tested field by field) without compiling:
    the payload's pose, mass, inertia and geoms, the goal marker, the obstacles, the constants MuJoCo
    derives from them (`mj_setConst`, statistics, grip anchors) and the bounding-volume trees that
    collision detection walks."""

    def __init__(self, model: mujoco.MjModel, ids: SceneIds):
        self.model, self.ids = model, ids
        self.goal_body = model.body(GOAL).id
        obstacles = []
        while (
            g := mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"obstacle{len(obstacles) // 2}")
        ) >= 0:
            obstacles += [g, g + 1]  # each obstacle's cylinder and its crown
        groups = [ids.payload_body, self.goal_body]
        adr, num = model.body_geomadr[groups], model.body_geomnum[groups]
        # Every layout-dependent geom, in the order payload, goal, obstacles (that of `_layout_geoms`).
        self.geoms = np.r_[np.arange(adr[0], adr[0] + num[0]), np.arange(adr[1], adr[1] + num[1]), obstacles]
        gtype = model.geom_type[self.geoms]
        self.is_box, self.is_capsule, self.is_cylinder = gtype == BOX, gtype == CAPSULE, gtype == CYLINDER
        self.eq_body1, self.eq_body2 = model.eq_obj1id.copy(), model.eq_obj2id.copy()
        self.eq_anchor1 = model.eq_data[:, 0:3].copy()
        self.joint_body = model.jnt_bodyid.copy()
        self.joint_parent = model.body_parentid[model.jnt_bodyid]
        bound_geoms = np.flatnonzero(model.geom_bodyid > 0)
        self.bound_geoms, self.bound_bodies = bound_geoms, model.geom_bodyid[bound_geoms]
        self.trees = []
        for body in (0, ids.payload_body):
            start, count = model.body_geomadr[body], model.body_geomnum[body]
            solid = [
                g for g in range(start, start + count) if model.geom_contype[g] or model.geom_conaffinity[g]
            ]
            if solid:
                self.trees.append((body, np.array(solid)))
        self._data = mujoco.MjData(model)

    def write(self, layout: TeamLayout) -> None:
        m, ids = self.model, self.ids
        x, y, yaw = layout.start
        body = ids.payload_body
        m.body_pos[body] = (x, y, 0.0)
        m.body_quat[body] = yaw_to_quat(yaw)
        m.body_mass[body] = layout.mass
        m.body_ipos[body] = (0.0, 0.0, layout.half_extents[2])
        m.body_inertia[body] = payload_inertia(layout)
        q = slice(ids.payload_qpos, ids.payload_qpos + 7)
        m.qpos0[q] = m.qpos_spring[q] = (x, y, 0.0, *yaw_to_quat(yaw))
        gx, gy, gyaw = layout.goal
        # A massless (mocap) body's inertial frame is its own frame.
        m.body_pos[self.goal_body] = m.body_ipos[self.goal_body] = (gx, gy, 0.0)
        m.body_quat[self.goal_body] = m.body_iquat[self.goal_body] = yaw_to_quat(gyaw)
        self._write_geoms(payload_geoms(layout) + goal_geoms(layout) + obstacle_geoms(layout))
        d = self._data
        mujoco.mj_setConst(m, d)  # leaves d at qpos0 with its kinematics
        self._write_statistics(d)
        # A connect constraint's second anchor is where the first sits, in the payload's frame, at qpos0.
        rot1 = d.xmat[self.eq_body1].reshape(-1, 3, 3)
        rot2 = d.xmat[self.eq_body2].reshape(-1, 3, 3)
        world = d.xpos[self.eq_body1] + np.einsum("nij,nj->ni", rot1, self.eq_anchor1)
        m.eq_data[:, 3:6] = np.einsum("nji,nj->ni", rot2, world - d.xpos[self.eq_body2])
        for body, geoms in self.trees:
            self._write_tree(body, geoms)

    def _write_geoms(self, params: list[GeomParams]) -> None:
        """Size, pose, colour and the derived bounding radius and box of every layout-dependent geom."""
        m, geoms = self.model, self.geoms
        values = np.array([(*g.size, *g.pos, *g.quat, *g.rgba) for g in params])
        size = values[:, 0:3]
        m.geom_size[geoms] = size
        m.geom_pos[geoms] = values[:, 3:6]
        m.geom_quat[geoms] = values[:, 6:10]
        m.geom_rgba[geoms] = values[:, 10:14]
        r, h = size[:, 0], size[:, 1]
        half = np.repeat(r[:, None], 3, axis=1)  # spheres
        half[self.is_box] = size[self.is_box]
        half[self.is_capsule, 2] += h[self.is_capsule]
        half[self.is_cylinder, 2] = h[self.is_cylinder]
        m.geom_aabb[geoms, :3] = 0.0
        m.geom_aabb[geoms, 3:] = half
        rbound = r.copy()
        rbound[self.is_box] = np.linalg.norm(size[self.is_box], axis=1)
        rbound[self.is_capsule] += h[self.is_capsule]
        rbound[self.is_cylinder] = np.hypot(r, h)[self.is_cylinder]
        m.geom_rbound[geoms] = rbound

    def _write_statistics(self, d: mujoco.MjData) -> None:
        """`stat.meanmass`, `meaninertia` and `meansize` as MuJoCo's compiler computes them at qpos0."""
        m = self.model
        size = np.zeros(m.nbody)
        for bodies in (self.joint_body, self.joint_parent):  # the farthest joint of a body or of its children
            np.maximum.at(size, bodies, np.linalg.norm(d.xipos[bodies] - d.xanchor, axis=1))
        size[0] = 0.0
        g, b = self.bound_geoms, self.bound_bodies
        reach = m.geom_rbound[g] + np.linalg.norm(d.xipos[b] - d.geom_xpos[g], axis=1)
        np.maximum.at(size, b, np.where(m.geom_rbound[g] > 0, reach, 0.0))
        m.stat.meansize = float(np.mean(np.maximum(size[1:], 1e-5)))
        m.stat.meanmass = float(np.mean(m.body_mass[1:]))
        m.stat.meaninertia = float(np.mean(m.dof_M0))  # the mean diagonal of the inertia matrix at qpos0

    def _write_tree(self, body: int, geoms: np.ndarray) -> None:
        """Rebuilds `body`'s bounding-volume tree over its collision `geoms` the way MuJoCo's compiler
        does: each node holds the box (centre, half-size; body inertial frame) around its geoms; a node
        with more than one geom splits them at the median along its longest axis, depth first."""
        m = self.model
        offset = m.geom_pos[geoms] - m.body_ipos[body]
        aabb = m.geom_aabb[geoms]
        corners = aabb[:, None, :3] + _BOX_CORNERS * aabb[:, None, 3:]  # [g, 8, 3] geom frame
        quats, iquat = m.geom_quat[geoms], m.body_iquat[body]
        if (quats == _IDENTITY).all() and (iquat == _IDENTITY).all():  # the usual case: no rotation
            local = corners + offset[:, None]
        else:
            to_inertial = _quat_mats(iquat[None])[0].T
            offset = offset @ to_inertial.T
            local = np.einsum("gij,gvj->gvi", to_inertial @ _quat_mats(quats), corners) + offset[:, None]
        # Plain floats from here: the trees hold a handful of nodes, far too few for numpy to pay off.
        low, high = local.min(axis=1).tolist(), local.max(axis=1).tolist()
        centres = offset.tolist()
        boxes, node_geoms = [], []

        def make(elements: list[int]) -> None:
            lo = [min(c) for c in zip(*[low[e] for e in elements], strict=True)]
            hi = [max(c) for c in zip(*[high[e] for e in elements], strict=True)]
            for k in range(3):
                if abs(lo[k] - hi[k]) < _MJ_EPS:
                    lo[k], hi[k] = lo[k] - _MJ_EPS, hi[k] + _MJ_EPS
            edges = [b - a for a, b in zip(lo, hi, strict=True)]
            boxes.append([(b + a) / 2 for a, b in zip(lo, hi, strict=True)] + [e / 2 for e in edges])
            node_geoms.append(int(geoms[elements[0]]) if len(elements) == 1 else -1)
            if len(elements) == 1:
                return
            axis = 0
            if edges[1] >= edges[0] + _MJ_EPS:
                axis = 1
            if edges[2] >= edges[axis] + _MJ_EPS:
                axis = 2

            def before(a: int, b: int) -> int:  # MuJoCo's order: coordinate, ties by geom order
                ca, cb = centres[a][axis], centres[b][axis]
                if abs(ca - cb) > _MJ_EPS:
                    return -1 if ca < cb else 1
                return a - b

            ordered = sorted(elements, key=cmp_to_key(before))
            middle = len(elements) // 2
            make(ordered[:middle])
            make(ordered[middle:])

        make(list(range(len(geoms))))
        adr, count = m.body_bvhadr[body], m.body_bvhnum[body]
        if len(boxes) != count:
            raise RuntimeError(f"body {body}'s bounding-volume tree has {len(boxes)} nodes, not {count}")
        m.bvh_aabb[adr : adr + count] = boxes
        m.bvh_nodeid[adr : adr + count] = node_geoms


@dataclass(frozen=True)
class SceneViews:
    """Views into one `MjData` for the env's hot path. The scene lays out each agent's joints (x, y,
    yaw, lift), actuators, grips and hand sites consecutively and agent after agent, so every
    per-agent quantity is a strided view `[n_agents, ...]`."""

    agent_qpos: np.ndarray  # [n_agents, 4] x, y, yaw, lift
    agent_qvel: np.ndarray  # [n_agents, 4]
    agent_ctrl: np.ndarray  # [n_agents, 4] actuators x, y, yaw, lift
    grip_active: np.ndarray  # [n_agents, 2] eq_active of the grips (left, right)
    hands: np.ndarray  # [n_agents, 2, 3] hand site positions, world frame
    payload_qpos: np.ndarray  # [7]
    payload_qvel: np.ndarray  # [6]
    payload_pos: np.ndarray  # [3] body position, world frame
    payload_rot: np.ndarray  # [3, 3] body rotation, world frame


def bind_views(data: mujoco.MjData, ids: SceneIds) -> SceneViews:
    """The `SceneViews` of `data`, a data of the model `ids` describe."""
    n = len(ids.lift_qpos)

    def per_agent(array: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The view `[n_agents, width, ...]` of `array` at `index` `[n_agents, width]`."""
        width = index.shape[1]
        first = int(index.min())
        view = array[first : first + n * width].reshape(n, width, *array.shape[1:])
        within = index - first - width * np.arange(n)[:, None]
        if (within == np.arange(width)).all():
            return view
        if (within == np.arange(width)[::-1]).all():
            return view[:, ::-1]
        raise RuntimeError(f"team scene layout changed: indices {index.tolist()} are not per agent blocks")

    return SceneViews(
        agent_qpos=per_agent(data.qpos, np.c_[ids.base_qpos, ids.lift_qpos]),
        agent_qvel=per_agent(data.qvel, np.c_[ids.base_qvel, ids.lift_qvel]),
        agent_ctrl=per_agent(data.ctrl, np.c_[ids.base_actuators, ids.lift_actuators]),
        grip_active=per_agent(data.eq_active, ids.grip_equalities),
        hands=per_agent(data.site_xpos, ids.hand_sites),
        payload_qpos=data.qpos[ids.payload_qpos : ids.payload_qpos + 7],
        payload_qvel=data.qvel[ids.payload_qvel : ids.payload_qvel + 6],
        payload_pos=data.xpos[ids.payload_body],
        payload_rot=data.xmat[ids.payload_body].reshape(3, 3),
    )


@dataclass
class CachedScene:
    """One compiled topology: the model, a data for it, its ids, its layout writer and views into the data."""

    model: mujoco.MjModel
    data: mujoco.MjData
    ids: SceneIds
    writer: LayoutWriter
    views: SceneViews

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "views"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.views = bind_views(self.data, self.ids)


class SceneCache:
    """Compiled TeamCarry models by `topology_key`: the first layout of a topology is compiled (a few
    ms), every later one is written into that model (`LayoutWriter`), so that a reset resets state and
    writes values instead of rebuilding. Each env owns its cache, because the env writes into its model
    (grip anchors) while it runs."""

    def __init__(self, timestep: float):
        self.timestep = timestep
        self._entries: dict[tuple, CachedScene] = {}

    def load(self, layout: TeamLayout) -> CachedScene:
        """The scene for `layout`, its data reset to qpos0 (agents at the origin, grips open)."""
        key = topology_key(layout)
        scene = self._entries.get(key)
        if scene is None:
            model, ids = compile_scene(layout, self.timestep)
            data = mujoco.MjData(model)
            scene = CachedScene(model, data, ids, LayoutWriter(model, ids), bind_views(data, ids))
            self._entries[key] = scene
        scene.writer.write(layout)
        mujoco.mj_resetData(scene.model, scene.data)
        return scene

    def scenes(self) -> list[CachedScene]:
        """Every compiled scene, in the order of first use."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
