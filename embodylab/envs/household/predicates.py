"""Ground atoms of the household world, computed from the physics state, and the JSON scene graph.

Atoms are tuples of strings (DESIGN.md):

- `("on", obj, surface)`: `obj` rests on the top of fixture `surface` — its lowest point lies within
  `ON_TOLERANCE` of the top's height, its centre above the top, and the robot does not hold it;
- `("in", obj, container)`: `obj`'s centre lies inside the tray of drawer `container` and it is not held;
- `("open", part)` / `("closed", part)`: a door or drawer (`fixture/part`) is open past its `open_at`
  position / shut below `closed_below` (in between, neither holds: it is ajar);
- `("holding", obj)`: both finger pads touch `obj` (contacts in the physics);
- `("at", "robot", place)`: the base stands within `AT_DISTANCE` m and `AT_YAW` rad of the place in front of
  fixture `place`;
- `("in_room", x, room)`: `x` (an object, a fixture or "robot") stands inside `room`.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.control import MobileBase, PandaArm
from embodylab.core.geometry import wrap_angle
from embodylab.core.mujoco_backend import MujocoScene
from embodylab.envs.household.apartment import Apartment

ROBOT = "robot"
ON_TOLERANCE = 0.02
"""metres between an object's lowest point and a top for the object to count as resting on it"""
ON_MARGIN = 0.0
"""metres the centre may lie beyond the edge of a top and still count as on it"""
IN_HEADROOM = 0.06
"""metres above a drawer's walls that a tall object's centre may reach and still count as inside"""
AT_DISTANCE = 0.15
AT_YAW = 0.3

Atom = tuple[str, ...]


def _yaw_rotation(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


class SymbolicState:
    """Computes the atoms of one compiled apartment (`atoms()`) and its scene graph (`scene_graph()`)."""

    def __init__(self, apartment: Apartment, sim: MujocoScene, arm: PandaArm, base: MobileBase):
        self.apartment, self.sim, self.arm, self.base = apartment, sim, arm, base
        m = sim.model
        self.objects = [o.name for o in apartment.objects]
        self._object_geoms = np.array([m.geom(name).id for name in self.objects])
        self._object_body = {name: m.body(name).id for name in self.objects}
        self._geom_to_object = {
            int(g): name for g, name in zip(self._object_geoms, self.objects, strict=True)
        }
        self._finger_bodies = [int(b) for b in arm.finger_body_ids]
        # Tops: (fixture, world centre xy, rotation world<-fixture, half-extents, height) of the whole
        # physical top (`Surface.half` is only the strip where things are put).
        self.surfaces = []
        for info in apartment.fixtures:
            for surface in info.furniture.surfaces:
                furniture = info.furniture
                centre = info.to_world((furniture.depth / 2, 0.0, surface.z))
                half = np.array([furniture.depth / 2, furniture.width / 2])
                self.surfaces.append((info.name, centre[:2], _yaw_rotation(info.yaw), half, centre[2]))
        self.containers = []  # (entity name, body id, centre in link frame, half-extents)
        self.parts = []  # (entity name, qpos address, open_at, closed_below)
        for info in apartment.fixtures:
            for part in info.furniture.openables:
                entity = f"{info.name}/{part.link}"
                joint = sim.fixture_joint_ids[entity]
                self.parts.append((entity, int(m.jnt_qposadr[joint]), part.open_at, part.closed_below))
            for box in info.furniture.containers:
                entity = f"{info.name}/{box.link}"
                self.containers.append(
                    (entity, m.body(entity).id, np.asarray(box.centre), np.asarray(box.half))
                )
        self._fixture_rooms = [(info.name, info.room) for info in apartment.fixtures]
        self._vectorised_tables(m)

    def _vectorised_tables(self, m) -> None:
        """Arrays over objects, tops, containers, rooms and places that `atoms()` evaluates in one pass each
        (the per-object methods below stay the reference; a test holds them equal)."""
        specs = self.apartment.scene.objects
        self._bodies = np.array([self._object_body[name] for name in self.objects])
        self._halves = np.array([spec.half_extents for spec in specs], dtype=float).reshape(-1, 3)
        self._is_sphere = np.array([spec.shape == "sphere" for spec in specs])
        self._is_capsule = np.array([spec.shape == "capsule" for spec in specs])
        self._object_of_geom = np.full(m.ngeom, -1)
        self._object_of_geom[self._object_geoms] = np.arange(len(self.objects))
        finger_of_body = np.full(m.nbody, -1)
        finger_of_body[self._finger_bodies] = np.arange(len(self._finger_bodies))
        self._finger_of_geom = finger_of_body[m.geom_bodyid]
        self._top_centres = np.array([c for _, c, _, _, _ in self.surfaces]).reshape(-1, 2)
        self._top_rotations = np.array([r for _, _, r, _, _ in self.surfaces]).reshape(-1, 2, 2)
        self._top_halves = np.array([h for _, _, _, h, _ in self.surfaces]).reshape(-1, 2) + ON_MARGIN
        self._top_heights = np.array([z for *_, z in self.surfaces])
        rooms = self.apartment.rooms
        self._room_low = np.array([r.low for r in rooms], dtype=float).reshape(-1, 2)
        self._room_high = np.array([r.high for r in rooms], dtype=float).reshape(-1, 2)
        self._places = np.array([info.place for info in self.apartment.fixtures], dtype=float).reshape(-1, 3)
        self._fixture_atoms = {("in_room", fixture, room) for fixture, room in self._fixture_rooms}  # fixed

    def _first_room(self, xy: np.ndarray) -> np.ndarray:
        """Index of the first room containing each point of `xy` [n, 2] (-1: none), as `room_of` picks."""
        inside = np.all((self._room_low <= xy[:, None]) & (xy[:, None] <= self._room_high), axis=2)
        return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)

    # ---- geometry ---------------------------------------------------------------------------------
    def lowest_point(self, name: str) -> float:
        """World z (m) of the object's lowest point, from its pose and its bounding box (spheres exact)."""
        d, body = self.sim.data, self._object_body[name]
        index = self.objects.index(name)
        spec = self.apartment.scene.objects[index]
        if spec.shape == "sphere":
            return float(d.xpos[body][2] - spec.half_extents[0])
        column = np.abs(d.xmat[body].reshape(3, 3)[2])
        half = np.asarray(spec.half_extents)
        if spec.shape == "capsule":  # the rounded ends reach half-length along the axis, radius across it
            r = half[0]
            return float(d.xpos[body][2] - r - column[2] * (half[2] - r))
        return float(d.xpos[body][2] - column @ half)

    def held_objects(self) -> set[str]:
        """Objects that both finger pads touch."""
        d, m = self.sim.data, self.sim.model
        touching: dict[str, set[int]] = {}
        for i in range(d.ncon):
            g1, g2 = int(d.contact.geom1[i]), int(d.contact.geom2[i])
            for obj_geom, other in ((g1, g2), (g2, g1)):
                name = self._geom_to_object.get(obj_geom)
                if name is not None and int(m.geom_bodyid[other]) in self._finger_bodies:
                    touching.setdefault(name, set()).add(int(m.geom_bodyid[other]))
        return {name for name, fingers in touching.items() if len(fingers) == 2}

    def supporting_surface(self, name: str) -> str | None:
        """The fixture whose top `name` rests on, or None."""
        pos = self.sim.data.xpos[self._object_body[name]]
        low = self.lowest_point(name)
        for fixture, centre, rotation, half, z in self.surfaces:
            local = rotation.T @ (pos[:2] - centre)
            if abs(low - z) < ON_TOLERANCE and np.all(np.abs(local) <= half + ON_MARGIN):
                return fixture
        return None

    def container_of(self, name: str) -> str | None:
        d = self.sim.data
        pos = d.xpos[self._object_body[name]]
        for entity, body, centre, half in self.containers:
            local = d.xmat[body].reshape(3, 3).T @ (pos - d.xpos[body]) - centre
            if np.all(np.abs(local[:2]) <= half[:2]) and -half[2] - 0.01 <= local[2] <= half[2] + IN_HEADROOM:
                return entity
        return None

    def _part_states(self):
        """(entity, 'open' | 'closed' | 'ajar') of every door and drawer."""
        qpos = self.sim.data.qpos
        for name, adr, open_at, closed_below in self.parts:
            q = float(qpos[adr])
            yield name, "open" if q >= open_at else "closed" if q < closed_below else "ajar"

    def part_state(self, entity: str) -> str:
        """'open', 'closed' or 'ajar'."""
        for name, state in self._part_states():
            if name == entity:
                return state
        raise ValueError(f"unknown door or drawer {entity!r}; valid: {', '.join(p[0] for p in self.parts)}")

    def _part_atoms(self) -> set[Atom]:
        """("open", part) / ("closed", part) atoms; an ajar part has neither."""
        return {(state, name) for name, state in self._part_states() if state != "ajar"}

    def robot_place(self) -> str | None:
        x, y, yaw = self.base.pose
        for info in self.apartment.fixtures:
            px, py, pyaw = info.place
            dyaw = wrap_angle(yaw - pyaw)
            if np.hypot(x - px, y - py) < AT_DISTANCE and abs(dyaw) < AT_YAW:
                return info.name
        return None

    # ---- atoms ------------------------------------------------------------------------------------
    def atoms(self) -> set[Atom]:
        """Every ground atom that holds now: the per-object tests of `atoms_reference`, evaluated for all
        objects at once (this runs every env step)."""
        d = self.sim.data
        atoms: set[Atom] = set()
        n = len(self.objects)
        # holding: both finger pads in contact with the object.
        geom1, geom2 = d.contact.geom1[: d.ncon], d.contact.geom2[: d.ncon]
        touching = np.zeros((n + 1, max(1, len(self._finger_bodies))), dtype=bool)  # row n: no object
        for obj_geom, other in ((geom1, geom2), (geom2, geom1)):
            finger = self._finger_of_geom[other]
            mask = finger >= 0
            touching[self._object_of_geom[obj_geom[mask]], finger[mask]] = True
        held = touching[:n].all(axis=1) if len(self._finger_bodies) == 2 else np.zeros(n, dtype=bool)

        pos = d.xpos[self._bodies]
        column = np.abs(d.xmat[self._bodies][:, 6:9])  # |third row of R|: the z reach of each body axis
        half = self._halves
        low = pos[:, 2] - (column[:, 0] * half[:, 0] + column[:, 1] * half[:, 1] + column[:, 2] * half[:, 2])
        low = np.where(
            self._is_capsule, pos[:, 2] - half[:, 0] - column[:, 2] * (half[:, 2] - half[:, 0]), low
        )
        low = np.where(self._is_sphere, pos[:, 2] - half[:, 0], low)

        rooms = self._first_room(pos[:, :2])
        if len(self._top_heights):
            offset = pos[:, None, :2] - self._top_centres[None]  # [n, tops, 2]
            local = np.einsum("tji,ntj->nti", self._top_rotations, offset)  # rotation.T @ offset
            on = (np.abs(low[:, None] - self._top_heights[None]) < ON_TOLERANCE) & np.all(
                np.abs(local) <= self._top_halves[None], axis=2
            )
            tops = np.where(on.any(axis=1), on.argmax(axis=1), -1)
        else:
            tops = np.full(n, -1)
        inside = np.full(n, -1)
        for c in range(len(self.containers) - 1, -1, -1):  # the first container in order wins
            _, body, centre, box_half = self.containers[c]
            local = (pos - d.xpos[body]) @ d.xmat[body].reshape(3, 3) - centre  # R.T @ (pos - origin)
            ok = np.all(np.abs(local[:, :2]) <= box_half[:2], axis=1) & (local[:, 2] >= -box_half[2] - 0.01)
            ok &= local[:, 2] <= box_half[2] + IN_HEADROOM
            inside[ok] = c

        for i, name in enumerate(self.objects):
            if held[i]:
                atoms.add(("holding", name))
            if rooms[i] >= 0:
                atoms.add(("in_room", name, self.apartment.rooms[rooms[i]].name))
            if held[i]:
                continue
            if tops[i] >= 0:
                atoms.add(("on", name, self.surfaces[tops[i]][0]))
            if inside[i] >= 0:
                atoms.add(("in", name, self.containers[inside[i]][0]))
        atoms |= self._part_atoms()
        x, y, yaw = self.base.pose
        if len(self._places):
            dyaw = wrap_angle(yaw - self._places[:, 2])
            near = (np.hypot(x - self._places[:, 0], y - self._places[:, 1]) < AT_DISTANCE) & (
                np.abs(dyaw) < AT_YAW
            )
            if near.any():
                atoms.add(("at", ROBOT, self.apartment.fixtures[int(near.argmax())].name))
        robot_room = self._first_room(np.array([[x, y]]))[0]
        if robot_room >= 0:
            atoms.add(("in_room", ROBOT, self.apartment.rooms[robot_room].name))
        atoms |= self._fixture_atoms
        return atoms

    def atoms_reference(self) -> set[Atom]:
        """Every ground atom that holds now, object by object through the per-object predicates (slow; the
        definition `atoms()` must match)."""
        atoms: set[Atom] = set()
        held = self.held_objects()
        d = self.sim.data
        for name in held:
            atoms.add(("holding", name))
        for name in self.objects:
            room = self.apartment.room_of(d.xpos[self._object_body[name]][:2])
            if room is not None:
                atoms.add(("in_room", name, room))
            if name in held:
                continue
            surface = self.supporting_surface(name)
            if surface is not None:
                atoms.add(("on", name, surface))
            container = self.container_of(name)
            if container is not None:
                atoms.add(("in", name, container))
        atoms |= self._part_atoms()
        place = self.robot_place()
        if place is not None:
            atoms.add(("at", ROBOT, place))
        robot_room = self.apartment.room_of(self.base.pose[:2])
        if robot_room is not None:
            atoms.add(("in_room", ROBOT, robot_room))
        for fixture, room in self._fixture_rooms:
            atoms.add(("in_room", fixture, room))
        return atoms

    # ---- scene graph ------------------------------------------------------------------------------
    def scene_graph(self, atoms: set[Atom] | None = None) -> dict:
        """Rooms, fixtures (with their doors and drawers), objects, the robot and the relations (atoms)
        as plain lists, dicts, strings and floats: `json.dumps` takes it as it is (`scene_graph_of`)."""
        atoms = self.atoms() if atoms is None else atoms
        d = self.sim.data
        robot = {
            "lift": round(self.base.lift, 4),
            "tcp": _floats(self.arm.tcp_pos),
            "gripper_width": round(self.arm.gripper_width, 4),
        }
        positions = [d.xpos[self._object_body[name]] for name in self.objects]
        return scene_graph_of(
            self.apartment, atoms, dict(self._part_states()), positions, self.base.pose, robot
        )


def _floats(values) -> list[float]:
    return [round(float(v), 4) for v in values]


def scene_graph_of(
    apartment: Apartment,
    atoms: set[Atom],
    part_states: dict[str, str],
    object_positions,
    robot_pose,
    robot: dict,
) -> dict:
    """The scene graph of `apartment` in a state given by its atoms, each door's and drawer's state
    ('open' | 'closed' | 'ajar'), the objects' world positions [n_objects, 3] (m, in `apartment.objects`
    order), the robot base's world (x, y, yaw) (m, rad) and the robot's other entries; the rooms of the objects and the robot
    are those their positions stand in. One definition for the compiled env (`SymbolicState.scene_graph`)
    and for symbolic start states without physics (`embodylab.policies.planner.data`)."""
    apt = apartment
    rooms = [
        {"name": r.name, "kind": r.kind, "low": _floats(r.low), "high": _floats(r.high)} for r in apt.rooms
    ]
    fixtures = []
    for info in apt.fixtures:
        parts = [
            {
                "name": f"{info.name}/{p.link}",
                "kind": "drawer" if p.kind == "slide" else "door",
                "state": part_states[f"{info.name}/{p.link}"],
                "is_container": any(c.link == p.link for c in info.furniture.containers),
            }
            for p in info.furniture.openables
        ]
        fixtures.append(
            {
                "name": info.name,
                "category": info.category,
                "phrase": info.name.replace("_", " "),
                "room": info.room,
                "position": _floats(info.pos),
                "yaw": round(float(info.yaw), 4),
                "place": _floats(info.place),
                "on_top_of": info.on_top_of,
                "has_top": bool(info.furniture.surfaces),
                "size": _floats((info.furniture.width, info.furniture.depth, info.furniture.height)),
                "parts": parts,
            }
        )
    objects = []
    for obj, spec, position in zip(apt.objects, apt.scene.objects, object_positions, strict=True):
        objects.append(
            {
                "name": obj.name,
                "category": obj.category,
                "colour": obj.colour,
                "phrase": obj.phrase,
                "shape": spec.shape,
                "half_extents": _floats(spec.half_extents),
                "position": _floats(position),
                "room": apt.room_of(position[:2]),
            }
        )
    return {
        "rooms": rooms,
        "fixtures": fixtures,
        "objects": objects,
        "robot": {"base": _floats(robot_pose), **robot, "room": apt.room_of(robot_pose[:2])},
        "relations": [list(atom) for atom in sorted(atoms)],
    }
