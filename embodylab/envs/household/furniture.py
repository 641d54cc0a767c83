"""Furniture of the household suite, built from boxes and cylinders, with real joints where it opens.

Every builder returns a `Furniture`: the `FixtureSpec` a backend compiles plus the symbolic facts the
household layer needs (its top surfaces, its openable parts, the containers inside them). Geometry is
given in the fixture frame: the origin lies on the floor at the middle of the fixture's back, +x points
out of the wall into the room (the front faces +x), +y to the fixture's left, z up; metres, radians.

Handles are vertical bars 24 mm across that stand 7.5 cm proud of the door or drawer front (the wrist link above
the hand then clears the furniture): the Panda's
fingers close around them from the front with the hand pointing down, as in LabDrawer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embodylab.core.scene import RGBA, FixtureSpec, GeomSpec, JointSpec, LinkSpec

PANEL = 0.018
"""metres: thickness of carcass boards and door panels"""
HANDLE_RADIUS = 0.012
HANDLE_STANDOFF = 0.075
"""metres from the front face of a door or drawer to the axis of its handle bar"""
HANDLE_RGBA: RGBA = (0.7, 0.7, 0.72, 1.0)
DRAWER_TRAVEL = 0.36
REACH_DEPTH = 0.45
"""metres behind a top's front edge where objects are put (the Panda reaches about this far in)"""
TOP_DRAWER_HEIGHT = 0.2
"""metres: a chest's top drawer is shallow, so that the hand can lower things into it over its front"""
DOOR_TRAVEL = 1.75
"""radians a hinged door can swing open"""


@dataclass
class Surface:
    """A horizontal top that objects rest on: the rectangle `centre ± half` (fixture frame, m) at height `z`.

    `free` is the part of the top objects may be put on (a microwave may stand on the rest)."""

    name: str
    centre: tuple[float, float]
    half: tuple[float, float]
    z: float


@dataclass
class Openable:
    """A door or drawer: `link` is its articulated link; `handle` the handle bar's centre in the link frame.

    `open_at` / `closed_below` are joint positions (rad for hinges, m for slides): the part counts as open
    at or beyond `open_at` and as closed below `closed_below`; in between it is neither."""

    link: str
    kind: str
    handle: tuple[float, float, float]
    open_at: float
    closed_below: float
    handle_half_length: float = 0.03
    """metres: half the length of the vertical handle bar"""


@dataclass
class Container:
    """The inside of a drawer: a box `centre ± half` in the frame of the drawer link, metres."""

    link: str
    centre: tuple[float, float, float]
    half: tuple[float, float, float]
    loadable: bool = True
    """whether the robot can put things into it: over the tall front of a low drawer the Panda's elbow
    cannot reach down into the tray, so tasks only ask for loadable containers"""


@dataclass
class Furniture:
    spec: FixtureSpec
    width: float
    depth: float
    height: float
    surfaces: list[Surface] = field(default_factory=list)
    openables: list[Openable] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)
    standoff: float = 0.6
    """metres from the fixture's front to the robot base centre when the robot works at it"""


def _box(half, pos, rgba, name="", collide=True, mass=None) -> GeomSpec:
    return GeomSpec("box", tuple(map(float, half)), pos=tuple(map(float, pos)), rgba=rgba, name=name,
                    collide=collide, mass=mass)  # fmt: skip


def _shade(rgba: RGBA, factor: float) -> RGBA:
    return (*(min(1.0, c * factor) for c in rgba[:3]), rgba[3])


def _handle_geoms(x_face: float, y: float, z: float, half_length: float) -> list[GeomSpec]:
    """A vertical bar `HANDLE_STANDOFF` in front of the face at x = `x_face`, on two short standoffs."""
    bar_x = x_face + HANDLE_STANDOFF
    standoff_half = (HANDLE_STANDOFF - HANDLE_RADIUS) / 2
    geoms = [
        GeomSpec(
            "cylinder",
            (HANDLE_RADIUS, HANDLE_RADIUS, half_length),
            pos=(bar_x, y, z),
            rgba=HANDLE_RGBA,
            friction=(1.5, 0.02, 0.002),
            mass=0.03,
            name="handle",
        )
    ]
    for side, dz in (("upper", 0.7), ("lower", -0.7)):
        geoms.append(
            _box(
                (standoff_half, 0.006, 0.006),
                (x_face + standoff_half, y, z + dz * half_length),
                HANDLE_RGBA,
                name=f"standoff_{side}",
                mass=0.01,
            )  # fmt: skip
        )
    return geoms


def _carcass(
    width: float, depth: float, height: float, rgba: RGBA, open_front: bool = True
) -> list[GeomSpec]:
    """Sides, top, bottom and back boards of a box open at the front (x = depth)."""
    hw, hd, t = width / 2, depth / 2, PANEL / 2
    geoms = [
        _box((hd, t, height / 2), (hd, hw - t, height / 2), rgba, "left"),
        _box((hd, t, height / 2), (hd, -hw + t, height / 2), rgba, "right"),
        _box((hd, hw, t), (hd, 0, height - t), rgba, "top"),
        _box((hd, hw - PANEL, t), (hd, 0, t + 0.06), rgba, "bottom"),
        _box((t, hw - PANEL, height / 2), (t, 0, height / 2), rgba, "back"),
        _box((0.01, hw - PANEL, 0.03), (depth - 0.03, 0, 0.03), _shade(rgba, 0.6), "plinth"),
    ]
    return geoms


def _hinged_door(
    name: str, width: float, depth: float, z_low: float, z_high: float, y_hinge: float, side: int,
    rgba: RGBA, handle_half_length: float, mass: float,
) -> tuple[LinkSpec, Openable]:  # fmt: skip
    """A door across the front of a carcass, hinged on a vertical axis at (depth, y_hinge).

    `side` = +1 for a door that extends from its hinge towards +y (hinge on the fixture's right), -1 for
    one that extends towards -y. The door opens outwards: its free edge swings into +x."""
    link_pos = (depth + PANEL / 2, y_hinge, (z_low + z_high) / 2)
    half_height = (z_high - z_low) / 2
    panel = _box((PANEL / 2, width / 2, half_height), (0.0, side * width / 2, 0.0), rgba, "panel", mass=mass)
    handle_y = side * (width - 0.06)
    handle_z = 0.0 if half_height < 0.3 else min(half_height - 0.15, 0.3)
    geoms = [panel, *_handle_geoms(PANEL / 2, handle_y, handle_z, handle_half_length)]
    # Positive angles swing the free edge outwards: about -z for a door extending to +y, +z otherwise.
    joint = JointSpec("hinge", axis=(0.0, 0.0, -float(side)), range=(0.0, DOOR_TRAVEL), damping=2.0,
                      frictionloss=0.2, armature=0.05)  # fmt: skip
    link = LinkSpec(name, geoms, pos=link_pos, joint=joint, category="door")
    handle = (PANEL / 2 + HANDLE_STANDOFF, handle_y, handle_z)
    return link, Openable(name, "hinge", handle, 1.0, 0.1, handle_half_length)


def _drawer(
    name: str, width: float, depth: float, z_low: float, z_high: float, rgba: RGBA
) -> tuple[LinkSpec, Openable, Container]:
    """An open-topped tray behind a front panel, on a slide along +x, with its handle bar."""
    front_half_z = (z_high - z_low) / 2 - 0.004
    centre = (depth / 2, 0.0, (z_low + z_high) / 2)
    # The tray runs from 2 cm in front of the back board to the front panel (drawer frame, x).
    tray_back, tray_front = -depth / 2 + PANEL + 0.004, depth / 2 - PANEL
    tray_hx, tray_x = (tray_front - tray_back) / 2, (tray_front + tray_back) / 2
    tray_hy = width / 2 - PANEL - 0.01
    wall_hz = front_half_z - 0.02  # tray walls almost as tall as the front
    wall_z = -front_half_z + 0.012 + wall_hz
    t = 0.006
    geoms = [
        _box(
            (PANEL / 2, width / 2 - PANEL - 0.004, front_half_z),
            (depth / 2 - PANEL / 2, 0, 0),
            rgba,
            "front",
            mass=0.3,
        ),
        _box((tray_hx, tray_hy, t), (tray_x, 0, -front_half_z + 0.012), rgba, "bottom", mass=0.15),
        _box((tray_hx, t, wall_hz), (tray_x, tray_hy - t, wall_z), rgba, "left", mass=0.05),
        _box((tray_hx, t, wall_hz), (tray_x, -tray_hy + t, wall_z), rgba, "right", mass=0.05),
        _box((t, tray_hy, wall_hz), (tray_back + t, 0, wall_z), rgba, "back", mass=0.05),
        *_handle_geoms(depth / 2, 0.0, 0.0, min(0.03, front_half_z - 0.02)),
    ]
    joint = JointSpec(
        "slide", axis=(1.0, 0.0, 0.0), range=(0.0, DRAWER_TRAVEL), damping=8.0, frictionloss=1.0
    )
    link = LinkSpec(name, geoms, pos=centre, joint=joint, category="drawer")
    handle = (depth / 2 + HANDLE_STANDOFF, 0.0, 0.0)
    inside = Container(
        name,
        centre=(tray_x - PANEL / 2, 0.0, -front_half_z + 0.018 + wall_hz),
        half=(tray_hx - PANEL / 2 - t, tray_hy - 2 * t, wall_hz),
    )
    return link, Openable(name, "slide", handle, open_at=0.2, closed_below=0.02), inside


def _front_strip(depth: float, width: float, z: float, y_centre: float = 0.0, y_half: float | None = None):
    """The usable part of a top: the strip `REACH_DEPTH` deep behind its front edge (8 cm in from every
    edge), which the arm reaches from the robot's place in front of the fixture."""
    back = max(0.08, depth - REACH_DEPTH)
    front = depth - 0.08
    y_half = width / 2 - 0.08 if y_half is None else y_half
    return Surface("top", ((front + back) / 2, y_centre), ((front - back) / 2, y_half), z)


# ---- the fixtures ------------------------------------------------------------------------------------
def counter(name: str, width: float, rgba: RGBA, top_rgba: RGBA, microwave_room: float = 0.0) -> Furniture:
    """A kitchen or bathroom counter 0.9 m high; `microwave_room` metres of its top at the +y end are
    kept free of objects for a microwave."""
    depth, height = 0.6, 0.9
    geoms = [
        _box((depth / 2 - 0.02, width / 2, (height - 0.04) / 2), (depth / 2 - 0.02, 0, (height - 0.04) / 2), rgba,
             "body"),
        _box((depth / 2, width / 2 + 0.01, 0.02), (depth / 2, 0, height - 0.02), top_rgba, "top"),
    ]  # fmt: skip
    for y in np.linspace(-width / 2, width / 2, max(2, round(width / 0.5)) + 1)[1:-1]:  # door seams
        geoms.append(_box((0.002, 0.003, 0.36), (depth - 0.02, y, 0.45), _shade(rgba, 0.7), collide=False))
    free_width = width - microwave_room - 0.16
    surface = Surface(
        "top", (depth / 2, -width / 2 + 0.08 + free_width / 2), (depth / 2 - 0.12, free_width / 2), height
    )
    spec = FixtureSpec(name, "counter", LinkSpec("body", geoms))
    return Furniture(spec, width, depth, height, surfaces=[surface], standoff=0.55)


def table(name: str, width: float, depth: float, height: float, rgba: RGBA) -> Furniture:
    top = 0.03
    geoms = [_box((depth / 2, width / 2, top / 2), (depth / 2, 0, height - top / 2), rgba, "top")]
    for sx in (0.05, depth - 0.05):
        for sy in (-1, 1):
            geoms.append(_box((0.025, 0.025, (height - top) / 2), (sx, sy * (width / 2 - 0.05), (height - top) / 2),
                              _shade(rgba, 0.8)))  # fmt: skip
    surface = _front_strip(depth, width, height)
    spec = FixtureSpec(name, "table", LinkSpec("body", geoms))
    return Furniture(spec, width, depth, height, surfaces=[surface], standoff=0.55)


def shelf(name: str, width: float, height: float, rgba: RGBA) -> Furniture:
    """An open bookcase: two lower boards behind the open front and a top that objects stand on."""
    depth = 0.38
    geoms = _carcass(width, depth, height, rgba)
    for i, z in enumerate(np.linspace(0.06, height, 4)[1:-1]):
        geoms.append(
            _box((depth / 2 - PANEL, width / 2 - PANEL, PANEL / 2), (depth / 2, 0, z), rgba, f"board{i}")
        )
    surface = Surface("top", (depth / 2 + 0.02, 0.0), (depth / 2 - 0.08, width / 2 - 0.08), height)
    spec = FixtureSpec(name, "shelf", LinkSpec("carcass", geoms))
    return Furniture(spec, width, depth, height, surfaces=[surface], standoff=0.5)


def cabinet(name: str, width: float, height: float, rgba: RGBA, door_rgba: RGBA) -> Furniture:
    """A cupboard with a shelf and two doors hinged at its outer edges (they meet in the middle)."""
    depth = 0.45
    geoms = _carcass(width, depth, height, rgba)
    geoms.append(
        _box((depth / 2 - PANEL, width / 2 - PANEL, PANEL / 2), (depth / 2, 0, height / 2), rgba, "shelf")
    )
    door_width = width / 2 - 0.004
    left, left_open = _hinged_door("left_door", door_width, depth, 0.065, height - 0.005, width / 2, -1,
                                   door_rgba, 0.05, 0.8)  # fmt: skip
    right, right_open = _hinged_door("right_door", door_width, depth, 0.065, height - 0.005, -width / 2, 1,
                                     door_rgba, 0.05, 0.8)  # fmt: skip
    surface = _front_strip(depth, width, height)
    spec = FixtureSpec(name, "cabinet", LinkSpec("carcass", geoms, children=[left, right]))
    return Furniture(spec, width, depth, height, surfaces=[surface], openables=[left_open, right_open],
                     standoff=0.75)  # fmt: skip


def chest_of_drawers(name: str, width: float, rgba: RGBA, front_rgba: RGBA) -> Furniture:
    """A chest with a shallow top drawer and a deep bottom drawer, each an open tray on a slide."""
    depth, height = 0.5, 0.82
    geoms = _carcass(width, depth, height, rgba)
    split = height - TOP_DRAWER_HEIGHT
    geoms.append(
        _box((depth / 2 - PANEL, width / 2 - PANEL, PANEL / 2), (depth / 2, 0, split), rgba, "divider")
    )
    top, top_open, top_inside = _drawer("top_drawer", width, depth, split, height - PANEL, front_rgba)
    bottom, bottom_open, bottom_inside = _drawer(
        "bottom_drawer", width, depth, 0.06 + PANEL, split, front_rgba
    )
    bottom_inside.loadable = False
    surface = _front_strip(depth, width, height)
    spec = FixtureSpec(name, "chest_of_drawers", LinkSpec("carcass", geoms, children=[top, bottom]))
    return Furniture(spec, width, depth, height, surfaces=[surface], openables=[top_open, bottom_open],
                     containers=[top_inside, bottom_inside], standoff=0.76)  # fmt: skip


def fridge(name: str, rgba: RGBA) -> Furniture:
    width, depth, height = 0.7, 0.66, 1.75
    geoms = _carcass(width, depth, height, rgba)
    for i, z in enumerate((0.55, 1.05)):
        geoms.append(_box((depth / 2 - 0.04, width / 2 - PANEL, 0.006), (depth / 2, 0, z), (0.85, 0.9, 0.95, 1.0),
                          f"rack{i}"))  # fmt: skip
    door, door_open = _hinged_door("door", width - 0.004, depth, 0.065, height - 0.005, -width / 2, 1,
                                   _shade(rgba, 1.05), 0.12, 2.5)  # fmt: skip
    spec = FixtureSpec(name, "fridge", LinkSpec("carcass", geoms, children=[door]))
    return Furniture(spec, width, depth, height, openables=[door_open], standoff=1.0)


def microwave(name: str, rgba: RGBA) -> Furniture:
    """A microwave oven meant to stand on a counter (its fixture frame sits on the counter top)."""
    width, depth, height = 0.5, 0.36, 0.3
    hw, hd, t = width / 2, depth / 2, 0.01
    geoms = [
        _box((hd, t, height / 2), (hd, hw - t, height / 2), rgba, "left"),
        _box((hd, t, height / 2), (hd, -hw + t, height / 2), rgba, "right"),
        _box((hd, hw, t), (hd, 0, height - t), rgba, "top"),
        _box((hd, hw, t), (hd, 0, t), rgba, "bottom"),
        _box((t, hw, height / 2), (t, 0, height / 2), rgba, "back"),
        _box((0.003, 0.06, height / 2 - 0.02), (depth, hw - 0.07, height / 2), (0.1, 0.1, 0.1, 1.0), "panel",
             collide=False),
    ]  # fmt: skip
    door, door_open = _hinged_door("door", width - 0.15, depth, 0.012, height - 0.012, -hw, 1,
                                   (0.12, 0.12, 0.14, 1.0), 0.06, 0.4)  # fmt: skip
    spec = FixtureSpec(name, "microwave", LinkSpec("body", geoms, children=[door]))
    return Furniture(spec, width, depth, height, openables=[door_open], standoff=0.75)
