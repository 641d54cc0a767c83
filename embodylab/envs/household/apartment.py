"""Procedural apartments: `generate_apartment(seed)` builds a furnished, walkable `SceneSpec` plus the facts
the symbolic layer reads (rooms, surfaces, openable parts, containers, where the robot stands to work).

Layout: 2–4 rooms side by side along +x (world frame, metres), all `depth` deep in y, separated by walls with
one 1 m doorway each; the first room is the kitchen. Furniture stands against the two long walls (y = 0 and
y = depth) in up to four slots per room, leaving the middle of every room and the doorways free, so the
robot can always drive from any workplace to the room's centre line and along it through the doorways.

Every apartment holds one counter with a microwave, one fridge, one cabinet with two hinged doors, one chest
of drawers (two drawers) and at least one table and one shelf, plus extra tables, shelves and counters; the
objects (`N_OBJECTS` of them, from `CATEGORIES`) stand on the tops. The same seed gives the same apartment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embodylab.core.geometry import wrap_angle, yaw_to_quat
from embodylab.core.scene import (
    CameraSpec,
    FixtureSpec,
    GeomSpec,
    LightSpec,
    LinkSpec,
    MobileBaseSpec,
    ObjectSpec,
    RobotMount,
    SceneSpec,
)
from embodylab.envs.household import furniture
from embodylab.envs.household.furniture import Furniture

WALL_THICKNESS = 0.1
WALL_HEIGHT = 1.1
"""metres: low walls, so that a camera above the apartment sees into every room"""
DOOR_WIDTH = 1.0
N_OBJECTS = 8
MICROWAVE_ROOM = 0.6
"""metres of the counter top kept for the microwave"""
ROOM_KINDS = ("kitchen", "living_room", "bedroom", "bathroom")
OBJECT_FRICTION = (1.0, 0.005, 0.002)
"""sliding, torsional and rolling friction of the objects (contact dimension 6): fruit and balls are not
perfect spheres, and 2 mm of rolling resistance keeps a ball that is set down from rolling off a top"""
OBJECT_CLEARANCE = 0.04
"""metres of free space kept between objects (and around them) when placing them on a top"""

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.82, 0.12, 0.12),
    "blue": (0.15, 0.3, 0.85),
    "green": (0.15, 0.65, 0.25),
    "yellow": (0.95, 0.82, 0.12),
    "orange": (0.95, 0.5, 0.1),
    "purple": (0.5, 0.2, 0.65),
    "white": (0.93, 0.93, 0.9),
    "black": (0.1, 0.1, 0.11),
    "pink": (0.95, 0.5, 0.65),
    "brown": (0.45, 0.28, 0.15),
    "grey": (0.5, 0.5, 0.52),
}


@dataclass(frozen=True)
class Category:
    """An object category: its shape, half-extent ranges (m; see `ObjectSpec`), mass range (kg), the
    colours it comes in, and the kind of fixture it belongs on when the home is tidy."""

    name: str
    shape: str
    half_low: tuple[float, float, float]
    half_high: tuple[float, float, float]
    mass: tuple[float, float]
    colours: tuple[str, ...]
    belongs_on: str
    """fixture category where it belongs in a tidy home ('drawer': inside the chest's top drawer)"""
    lying: bool = False
    """capsules lie on their side (axis along x) instead of standing"""


# Every object is at most 7 cm across along one horizontal axis, so the Panda's 8 cm grip spans it.
CATEGORIES: tuple[Category, ...] = (
    Category("mug", "cylinder", (0.03, 0.03, 0.045), (0.034, 0.034, 0.055), (0.2, 0.3), ("red", "blue", "white", "green", "yellow"), "counter"),
    Category("cup", "cylinder", (0.026, 0.026, 0.04), (0.03, 0.03, 0.05), (0.1, 0.2), ("white", "blue", "pink", "orange"), "counter"),
    Category("bowl", "cylinder", (0.032, 0.032, 0.025), (0.035, 0.035, 0.03), (0.15, 0.25), ("white", "blue", "green", "red"), "counter"),
    Category("glass", "cylinder", (0.025, 0.025, 0.05), (0.029, 0.029, 0.06), (0.1, 0.2), ("grey", "blue", "green"), "counter"),
    Category("jar", "cylinder", (0.03, 0.03, 0.05), (0.035, 0.035, 0.065), (0.2, 0.35), ("orange", "brown", "red"), "counter"),
    Category("bottle", "cylinder", (0.027, 0.027, 0.08), (0.031, 0.031, 0.095), (0.2, 0.35), ("green", "blue", "brown", "white"), "counter"),
    Category("can", "cylinder", (0.031, 0.031, 0.055), (0.033, 0.033, 0.062), (0.15, 0.3), ("red", "grey", "yellow", "green"), "counter"),
    Category("salt_shaker", "cylinder", (0.02, 0.02, 0.04), (0.022, 0.022, 0.048), (0.08, 0.12), ("white", "black"), "counter"),
    Category("apple", "sphere", (0.032, 0.032, 0.032), (0.036, 0.036, 0.036), (0.15, 0.2), ("red", "green", "yellow"), "table"),
    Category("orange", "sphere", (0.033, 0.033, 0.033), (0.036, 0.036, 0.036), (0.15, 0.2), ("orange",), "table"),
    Category("lemon", "sphere", (0.026, 0.026, 0.026), (0.029, 0.029, 0.029), (0.08, 0.12), ("yellow",), "table"),
    Category("pear", "sphere", (0.031, 0.031, 0.031), (0.035, 0.035, 0.035), (0.15, 0.2), ("green", "yellow"), "table"),
    Category("banana", "capsule", (0.018, 0.018, 0.075), (0.02, 0.02, 0.085), (0.1, 0.15), ("yellow",), "table", lying=True),
    Category("candle", "cylinder", (0.028, 0.028, 0.045), (0.032, 0.032, 0.06), (0.1, 0.2), ("white", "red", "purple"), "shelf"),
    Category("book", "box", (0.075, 0.03, 0.02), (0.09, 0.033, 0.025), (0.2, 0.35), ("red", "blue", "green", "brown", "black"), "shelf"),
    Category("toy_block", "box", (0.028, 0.028, 0.028), (0.032, 0.032, 0.032), (0.05, 0.1), ("red", "blue", "yellow", "green"), "shelf"),
    Category("tennis_ball", "sphere", (0.032, 0.032, 0.032), (0.034, 0.034, 0.034), (0.05, 0.06), ("yellow", "green"), "shelf"),
    Category("remote", "box", (0.08, 0.022, 0.012), (0.09, 0.025, 0.014), (0.1, 0.15), ("black", "grey"), "table"),
    Category("phone", "box", (0.07, 0.033, 0.01), (0.075, 0.036, 0.011), (0.15, 0.2), ("black", "white", "blue"), "table"),
    Category("sponge", "box", (0.045, 0.03, 0.018), (0.05, 0.033, 0.022), (0.03, 0.05), ("yellow", "green", "pink"), "counter"),
    Category("soap", "box", (0.04, 0.025, 0.015), (0.045, 0.028, 0.02), (0.08, 0.12), ("white", "pink", "green"), "drawer"),
    Category("tea_box", "box", (0.05, 0.03, 0.035), (0.055, 0.033, 0.04), (0.08, 0.12), ("green", "red", "black"), "drawer"),
    Category("towel", "box", (0.07, 0.032, 0.016), (0.08, 0.035, 0.02), (0.1, 0.15), ("white", "blue", "pink", "grey"), "drawer"),
)  # fmt: skip
CATEGORY_BY_NAME = {c.name: c for c in CATEGORIES}

WOODS = ((0.55, 0.38, 0.22), (0.68, 0.52, 0.34), (0.4, 0.27, 0.17), (0.75, 0.64, 0.48))
PAINTS = ((0.88, 0.88, 0.85), (0.62, 0.72, 0.78), (0.55, 0.62, 0.5), (0.8, 0.72, 0.6), (0.35, 0.38, 0.45))
FLOORS = {
    "kitchen": (0.55, 0.55, 0.52),
    "living_room": (0.5, 0.36, 0.24),
    "bedroom": (0.42, 0.34, 0.3),
    "bathroom": (0.45, 0.55, 0.6),
}
WALL_RGBA = (0.78, 0.76, 0.72, 1.0)


@dataclass
class Room:
    """An axis-aligned room: `low`/`high` are its inner corners (world x, y, metres)."""

    name: str
    kind: str
    low: tuple[float, float]
    high: tuple[float, float]

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.low[0] + self.high[0]) / 2, (self.low[1] + self.high[1]) / 2)

    def contains(self, xy) -> bool:
        return self.low[0] <= xy[0] <= self.high[0] and self.low[1] <= xy[1] <= self.high[1]


@dataclass
class FixtureInfo:
    """One piece of furniture in the apartment: its build, where it stands and its symbolic facts.

    `pos` is the fixture frame's origin (world, m) and `yaw` its rotation about z (rad); `place` is where the
    robot base stands (world x, y, yaw) to work at it."""

    name: str
    category: str
    room: str
    furniture: Furniture
    pos: tuple[float, float, float]
    yaw: float
    place: tuple[float, float, float]
    on_top_of: str | None = None

    def to_world(self, local) -> np.ndarray:
        """A point of the fixture frame in the world frame."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        x, y, z = local
        return np.array([self.pos[0] + c * x - s * y, self.pos[1] + s * x + c * y, self.pos[2] + z])


@dataclass
class ObjectInfo:
    name: str
    category: str
    colour: str

    @property
    def phrase(self) -> str:
        """The object in words, e.g. 'red mug'."""
        return f"{self.colour} {self.category.replace('_', ' ')}"


@dataclass
class Apartment:
    seed: int
    scene: SceneSpec
    rooms: list[Room]
    fixtures: list[FixtureInfo]
    objects: list[ObjectInfo]
    object_surfaces: list[str] = field(default_factory=list)
    """the surface (`fixture/top`) each object starts on"""
    doors: list[float] = field(default_factory=list)
    """world y (m) of the doorway centre in the wall after each room but the last"""

    @property
    def size(self) -> tuple[float, float]:
        return (self.rooms[-1].high[0], self.rooms[0].high[1])

    def fixture(self, name: str) -> FixtureInfo:
        for f in self.fixtures:
            if f.name == name:
                return f
        raise ValueError(f"unknown fixture {name!r}; fixtures: {', '.join(f.name for f in self.fixtures)}")

    def room_of(self, xy) -> str | None:
        for room in self.rooms:
            if room.contains(xy):
                return room.name
        return None


def _rgba(rgb, alpha: float = 1.0):
    return (*map(float, rgb), alpha)


def _jitter(rng: np.random.Generator, rgb, amount: float = 0.06):
    return _rgba(np.clip(np.asarray(rgb) + rng.uniform(-amount, amount, 3), 0.0, 1.0))


# Which room kinds prefer which furniture; the fixed pieces go to their preferred room when it exists.
FIXED_PIECES = (
    ("counter", "kitchen"),
    ("fridge", "kitchen"),
    ("table", "kitchen"),
    ("chest_of_drawers", "bedroom"),
    ("cabinet", "living_room"),
    ("shelf", "living_room"),
)
EXTRA_PIECES = {
    "kitchen": ("shelf", "counter"),
    "living_room": ("table", "shelf"),
    "bedroom": ("table", "shelf"),
    "bathroom": ("counter", "shelf"),
}


def _build_piece(
    kind: str, name: str, rng: np.random.Generator, max_width: float, microwave_room: float = 0.0
) -> Furniture:
    wood, paint = WOODS[rng.integers(len(WOODS))], PAINTS[rng.integers(len(PAINTS))]
    if kind == "counter":
        width = min(max_width, rng.uniform(1.2, 1.45))
        return furniture.counter(name, width, _jitter(rng, paint), _jitter(rng, (0.3, 0.3, 0.32), 0.05),
                                 microwave_room)  # fmt: skip
    if kind == "table":
        return furniture.table(name, min(max_width, rng.uniform(1.0, 1.3)), rng.uniform(0.65, 0.8),
                               rng.uniform(0.72, 0.76), _jitter(rng, wood))  # fmt: skip
    if kind == "shelf":
        return furniture.shelf(
            name, min(max_width, rng.uniform(0.8, 1.0)), rng.uniform(0.85, 1.0), _jitter(rng, wood)
        )
    if kind == "cabinet":
        return furniture.cabinet(name, rng.uniform(0.8, 0.9), rng.uniform(0.75, 0.85), _jitter(rng, wood),
                                 _jitter(rng, paint))  # fmt: skip
    if kind == "chest_of_drawers":
        return furniture.chest_of_drawers(
            name, rng.uniform(0.75, 0.9), _jitter(rng, wood), _jitter(rng, paint)
        )
    if kind == "fridge":
        return furniture.fridge(name, _jitter(rng, (0.9, 0.91, 0.93), 0.03))
    raise ValueError(f"unknown furniture kind {kind!r}")


def _place_in_front(fixture: FixtureInfo, front_local: tuple[float, float], standoff: float):
    """World (x, y, yaw) of a robot base `standoff` metres out from `front_local` (fixture frame), facing it."""
    x, y, _ = fixture.to_world((front_local[0] + standoff, front_local[1], 0.0))
    return (float(x), float(y), float(wrap_angle(fixture.yaw + np.pi)))


def _fixture_names(assignments: list[tuple[str, str]]) -> list[str]:
    """'counter' when a kind occurs once, else 'kitchen_counter', 'bathroom_counter' (room-qualified)."""
    kinds = [k for k, _ in assignments]
    names: list[str] = []
    for kind, room in assignments:
        name = kind if kinds.count(kind) == 1 else f"{room}_{kind}"
        repeats = sum(n == name or n.startswith(f"{name}_") for n in names)
        names.append(name if repeats == 0 else f"{name}_{repeats + 1}")
    return names


def _walls(rooms: list[Room], doors: list[float]) -> FixtureSpec:
    """Outer walls, the inner walls with their doorways (centred at y = `doors[i]`), and the room floors
    (visual only, a different finish per room kind)."""
    t, h = WALL_THICKNESS, WALL_HEIGHT
    length, depth = rooms[-1].high[0], rooms[0].high[1]
    rgba = WALL_RGBA
    geoms = [
        GeomSpec("box", (length / 2 + t, t / 2, h / 2), pos=(length / 2, -t / 2, h / 2), rgba=rgba, name="south"),
        GeomSpec("box", (length / 2 + t, t / 2, h / 2), pos=(length / 2, depth + t / 2, h / 2), rgba=rgba, name="north"),
        GeomSpec("box", (t / 2, depth / 2, h / 2), pos=(-t / 2, depth / 2, h / 2), rgba=rgba, name="west"),
        GeomSpec("box", (t / 2, depth / 2, h / 2), pos=(length + t / 2, depth / 2, h / 2), rgba=rgba, name="east"),
    ]  # fmt: skip
    for i, (room, door_y) in enumerate(zip(rooms[:-1], doors, strict=True)):
        x = room.high[0] + t / 2
        low_end, high_start = door_y - DOOR_WIDTH / 2, door_y + DOOR_WIDTH / 2
        geoms.append(GeomSpec("box", (t / 2, low_end / 2, h / 2), pos=(x, low_end / 2, h / 2), rgba=rgba,
                              name=f"inner{i}_a"))  # fmt: skip
        upper = depth - high_start
        geoms.append(GeomSpec("box", (t / 2, upper / 2, h / 2), pos=(x, high_start + upper / 2, h / 2), rgba=rgba,
                              name=f"inner{i}_b"))  # fmt: skip
    for room in rooms:
        (x0, y0), (x1, y1) = room.low, room.high
        geoms.append(GeomSpec("box", ((x1 - x0) / 2 + t / 2, (y1 - y0) / 2, 0.001), pos=((x0 + x1) / 2, (y0 + y1) / 2, 0.001),
                              rgba=_rgba(FLOORS[room.kind]), collide=False, name=f"floor_{room.name}"))  # fmt: skip
    return FixtureSpec("walls", "wall", LinkSpec("walls", geoms))


def _place_objects(
    rng: np.random.Generator, fixtures: list[FixtureInfo], count: int
) -> tuple[list[ObjectSpec], list[ObjectInfo], list[str]]:
    """`count` objects of distinct categories on the tops of the furniture, none touching another."""
    surfaces = [(f, s) for f in fixtures for s in f.furniture.surfaces]
    categories = rng.choice(len(CATEGORIES), size=count, replace=False)
    specs, infos, on, taken = [], [], [], {}
    for index in categories:
        cat = CATEGORIES[index]
        colour = cat.colours[rng.integers(len(cat.colours))]
        half = tuple(float(v) for v in rng.uniform(cat.half_low, cat.half_high))
        if cat.shape in ("sphere",):
            half = (half[0], half[0], half[0])
        elif cat.shape in ("cylinder", "capsule"):
            half = (half[0], half[0], half[2])
        footprint = max(half[:2]) if not cat.lying else half[2]
        height = half[0] if cat.lying else half[2]
        for _ in range(200):
            fixture, surface = surfaces[rng.integers(len(surfaces))]
            cx, cy = surface.centre
            hx, hy = surface.half[0] - footprint, surface.half[1] - footprint
            if hx <= 0 or hy <= 0:
                continue
            local = np.array([cx + rng.uniform(-hx, hx), cy + rng.uniform(-hy, hy)])
            key = f"{fixture.name}/{surface.name}"
            if all(
                np.linalg.norm(local - p) > footprint + r + OBJECT_CLEARANCE for p, r in taken.get(key, [])
            ):
                break
        else:
            raise RuntimeError("could not place every object on the furniture")
        taken.setdefault(key, []).append((local, footprint))
        pos = fixture.to_world((local[0], local[1], surface.z + height + 0.001))
        yaw = fixture.yaw + rng.uniform(-0.3, 0.3) + (np.pi / 2 if cat.shape == "box" else 0.0)
        quat = yaw_to_quat(yaw)
        if cat.lying:  # turn the capsule's axis from z into the horizontal plane, then yaw it
            q_lay = np.array([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0])
            quat = _quat_mul(quat, q_lay)
        name = f"{colour}_{cat.name}"
        specs.append(
            ObjectSpec(
                name,
                cat.name,
                cat.shape,
                half,
                mass=float(rng.uniform(*cat.mass)),
                friction=OBJECT_FRICTION,
                rgba=_rgba(COLOURS[colour]),
                pos=tuple(map(float, pos)),
                quat=tuple(map(float, quat)),
                condim=6,
            )
        )
        infos.append(ObjectInfo(name, cat.name, colour))
        on.append(key)
    return specs, infos, on


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ])  # fmt: skip


def generate_apartment(seed: int, n_objects: int = N_OBJECTS) -> Apartment:
    """A furnished apartment from `seed` (see the module docstring); the robot starts in the kitchen."""
    rng = np.random.default_rng(seed)
    n_rooms = int(rng.integers(2, 5))
    kinds = ["kitchen", *rng.permutation(ROOM_KINDS[1:])[: n_rooms - 1].tolist()]
    depth = float(rng.uniform(3.4, 4.0))
    rooms, x = [], 0.0
    for i, kind in enumerate(kinds):
        width = float(rng.uniform(3.3, 4.0))
        rooms.append(Room(kind, kind, (x, 0.0), (x + width, depth)))
        x += width + (WALL_THICKNESS if i < n_rooms - 1 else 0.0)
    doors = [float(depth / 2 + rng.uniform(-0.4, 0.4)) for _ in range(n_rooms - 1)]

    # Slots: (room index, wall: 0 south / 1 north, 0 left / 1 right along x). Fixed pieces first.
    slots = [(r, wall, side) for r in range(n_rooms) for wall in (0, 1) for side in (0, 1)]
    order = rng.permutation(len(slots)).tolist()
    free = [slots[i] for i in order]
    assignments: list[tuple[str, tuple[int, int, int]]] = []
    for kind, preferred in FIXED_PIECES:
        rooms_with = [r for r, room in enumerate(rooms) if room.kind == preferred]
        candidates = (
            [s for s in free if s[0] in rooms_with]
            or [s for s in free if rooms[s[0]].kind != "kitchen"]
            or free
        )
        slot = candidates[0]
        free.remove(slot)
        assignments.append((kind, slot))
    for slot in list(free):
        if rng.uniform() < 0.4:
            extras = EXTRA_PIECES[rooms[slot[0]].kind]
            assignments.append((extras[rng.integers(len(extras))], slot))
    names = _fixture_names([(kind, rooms[slot[0]].name) for kind, slot in assignments])

    fixtures: list[FixtureInfo] = []
    for (kind, (r, wall, side)), name in zip(assignments, names, strict=True):
        room = rooms[r]
        room_width = room.high[0] - room.low[0]
        with_oven = kind == "counter" and all(f.category != "microwave" for f in fixtures)
        piece = _build_piece(kind, name, rng, room_width / 2 - 0.25, MICROWAVE_ROOM if with_oven else 0.0)
        x = room.low[0] + room_width * (0.25 if side == 0 else 0.75) + rng.uniform(-0.08, 0.08)
        y, yaw = (0.0, np.pi / 2) if wall == 0 else (depth, -np.pi / 2)
        info = FixtureInfo(
            name, kind, room.name, piece, (float(x), float(y), 0.0), float(yaw), (0.0, 0.0, 0.0)
        )
        info.place = _place_in_front(info, (piece.depth, 0.0), piece.standoff)
        fixtures.append(info)
        if with_oven:
            # The microwave stands on the counter's +y end, set back 6 cm from the wall.
            oven = furniture.microwave("microwave", _jitter(rng, (0.85, 0.85, 0.87), 0.05))
            local = (0.06, piece.width / 2 - oven.width / 2 - 0.04, piece.height)
            oven_info = FixtureInfo("microwave", "microwave", room.name, oven, tuple(map(float, info.to_world(local))),
                                    float(yaw), (0.0, 0.0, 0.0), on_top_of=name)  # fmt: skip
            oven_info.place = _place_in_front(info, (local[0] + oven.depth, local[1]), oven.standoff)
            fixtures.append(oven_info)

    objects, object_infos, object_on = _place_objects(rng, fixtures, n_objects)
    fixture_specs = [_walls(rooms, doors)]
    for info in fixtures:
        spec = info.furniture.spec
        spec.pos, spec.quat = info.pos, tuple(yaw_to_quat(info.yaw).tolist())
        fixture_specs.append(spec)

    kitchen = rooms[0]
    start_yaw = float(rng.uniform(-np.pi, np.pi))
    robot = RobotMount(
        pos=(*kitchen.centre, 0.0), quat=tuple(yaw_to_quat(start_yaw).tolist()), mobile_base=MobileBaseSpec()
    )
    length = rooms[-1].high[0]
    centre = (length / 2, depth / 2)
    # Looking straight down from high enough that the whole apartment fits the 45 degree field of view.
    height = 0.5 * max(length, depth) / np.tan(np.radians(45.0) / 2) + WALL_HEIGHT + 0.6
    cameras = [
        CameraSpec("overhead", pos=(*centre, height), lookat=(*centre, 0.0), fovy=45.0),
        CameraSpec("corner", pos=(-0.3, -0.3, 3.2), lookat=(min(length, 7.0) / 2, depth / 2, 0.3), fovy=60.0),
    ]
    lights = [
        LightSpec(
            pos=(*centre, 6.0), direction=(0.3, 0.4, -1.0), directional=True, diffuse=(0.42, 0.42, 0.4)
        ),
    ]
    scene = SceneSpec(
        objects=objects,
        fixtures=fixture_specs,
        robot=robot,
        table=None,
        cameras=cameras,
        lights=lights,
        goal_marker=False,
        floor_height=0.0,
        floor_half_size=float(max(length, depth) + 2.0),
    )
    return Apartment(seed, scene, rooms, fixtures, object_infos, object_on, doors)
