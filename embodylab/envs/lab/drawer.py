"""LabDrawer: pull the drawer of a small chest on the table open to a target opening.

The chest is a fixture: a static carcass (top, bottom, sides, back) and one articulated link, the drawer
(`chest/drawer`), on a slide joint along the chest's front axis (the axis that faces the robot). The joint
position is the drawer's opening in metres: 0 is closed, `MAX_OPENING` fully open. A vertical handle
bar on the drawer's front panel fits between the Panda's fingers.

Per episode (from the seed): the chest's centre on the table, xy in `chest_xy_low`..`chest_xy_high`
(metres, world frame), its yaw in ±`chest_max_yaw` radians about world z (0 faces the robot, the drawer
opening towards -x), the initial opening in [0, 0.02] m and the target opening in [0.10, 0.18] m.

Goal: achieved = [current opening] and desired = [target opening], both shape (1,), metres.
Goal distance = max(desired - achieved, 0) (opening further than the target is not penalised).
Success: opening >= target - 0.01 m.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from embodylab.core.geometry import yaw_to_quat
from embodylab.core.scene import FixtureSpec, GeomSpec, JointSpec, LinkSpec
from embodylab.envs.lab.base import LabEnv, lab_scene

CHEST = "chest"
DRAWER_JOINT = f"{CHEST}/drawer"
"""Name of the drawer's slide joint and of its body (`object_states()` lists it under this name)."""
MAX_OPENING = 0.2
CHEST_HALF = np.array([0.12, 0.15, 0.065])
"""Half-extents (m) of the carcass; the chest frame sits at the centre of its footprint on the table."""
WALL = 0.005
PANEL_HALF = np.array([0.0075, 0.148, 0.058])
PANEL_X = -CHEST_HALF[0] - 0.002 - PANEL_HALF[0]
"""Chest-frame x of the front panel's centre: 2 mm in front of the carcass edges when closed."""
HANDLE_STANDOFF = 0.05
"""Distance (m) from the panel's front face to the handle bar's axis."""
HANDLE_RADIUS = 0.012
HANDLE_HALF_LENGTH = 0.022
HANDLE_LOCAL = np.array([PANEL_X - PANEL_HALF[0] - HANDLE_STANDOFF, 0.0, 0.09])
"""Chest-frame centre of the handle bar when the drawer is closed."""
TRAY_BACK_X = CHEST_HALF[0] - 2 * WALL - 0.03
"""Chest-frame x of the tray's back wall (closed): 3 cm short of the carcass back."""
TRAY_WALL = 0.004
DRAWER_CENTRE = np.array([(HANDLE_LOCAL[0] - HANDLE_RADIUS + TRAY_BACK_X + TRAY_WALL) / 2, 0.0, 0.066])
"""Origin of the drawer body (chest frame, closed): the centre of its bounding box, handle included, so
that its `object_states()` position and half-extents describe the box."""
CARCASS_RGBA = (0.66, 0.64, 0.6, 1.0)
DRAWER_RGBA = (0.3, 0.45, 0.72, 1.0)
HANDLE_RGBA = (0.25, 0.25, 0.28, 1.0)


def _carcass() -> list[GeomSpec]:
    hx, hy, hz = CHEST_HALF
    inner_y, inner_z = hy - 2 * WALL, hz - 2 * WALL
    parts = {
        "bottom": ((hx, hy, WALL), (0.0, 0.0, WALL)),
        "top": ((hx, hy, WALL), (0.0, 0.0, 2 * hz - WALL)),
        "left": ((hx, WALL, inner_z), (0.0, hy - WALL, hz)),
        "right": ((hx, WALL, inner_z), (0.0, WALL - hy, hz)),
        "back": ((WALL, inner_y, inner_z), (hx - WALL, 0.0, hz)),
    }
    return [
        GeomSpec("box", half, pos=pos, rgba=CARCASS_RGBA, name=name) for name, (half, pos) in parts.items()
    ]


def _drawer() -> LinkSpec:
    """The drawer tray (panel, bottom, sides, back) and its handle, in the drawer body's frame.

    Masses are set by hand (0.5 kg in all): a light drawer that a gentle pull accelerates easily."""
    c = DRAWER_CENTRE
    front, back = PANEL_X + PANEL_HALF[0], TRAY_BACK_X
    half_x, mid_x = (back - front) / 2, (back + front) / 2 - c[0]
    side_y = CHEST_HALF[1] - 2 * WALL - 0.004 - TRAY_WALL  # 4 mm clear of the carcass sides
    wall_half_z, wall_z = 0.035, 0.055 - c[2]
    bar = HANDLE_LOCAL - c
    standoff_half_x = (HANDLE_STANDOFF - HANDLE_RADIUS) / 2
    standoff_x = PANEL_X - PANEL_HALF[0] - standoff_half_x - c[0]
    tray = {  # name: (half-extents, position, mass)
        "panel": (tuple(PANEL_HALF), (PANEL_X - c[0], 0.0, 0.0), 0.15),
        "bottom": ((half_x, side_y, TRAY_WALL), (mid_x, 0.0, 0.02 - c[2]), 0.08),
        "left": ((half_x, TRAY_WALL, wall_half_z), (mid_x, side_y, wall_z), 0.04),
        "right": ((half_x, TRAY_WALL, wall_half_z), (mid_x, -side_y, wall_z), 0.04),
        "back": ((TRAY_WALL, side_y, wall_half_z), (back - c[0], 0.0, wall_z), 0.04),
    }
    geoms = [
        GeomSpec("box", half, pos=pos, rgba=DRAWER_RGBA, mass=mass, name=name)
        for name, (half, pos, mass) in tray.items()
    ]
    geoms.append(
        GeomSpec(
            "cylinder",
            (HANDLE_RADIUS, HANDLE_RADIUS, HANDLE_HALF_LENGTH),
            pos=tuple(bar),
            rgba=HANDLE_RGBA,
            friction=(1.5, 0.02, 0.002),
            mass=0.03,
            name="handle",
        )
    )
    for side, dz in (("upper", 0.017), ("lower", -0.017)):
        half, pos = (standoff_half_x, 0.004, 0.004), (standoff_x, 0.0, bar[2] + dz)
        geoms.append(GeomSpec("box", half, pos=pos, rgba=HANDLE_RGBA, mass=0.01, name=f"standoff_{side}"))
    joint = JointSpec("slide", axis=(-1.0, 0.0, 0.0), range=(0.0, MAX_OPENING), damping=5.0, frictionloss=1.0)
    return LinkSpec("drawer", geoms, pos=tuple(c), joint=joint, category="drawer")


def chest_fixture() -> FixtureSpec:
    return FixtureSpec(CHEST, "chest", LinkSpec("carcass", _carcass(), children=[_drawer()]))


class LabDrawerEnv(LabEnv):
    success_threshold = 0.01
    """metres: success when the opening is at least the target minus this."""
    chest_xy_low = np.array([0.16, -0.1])
    chest_xy_high = np.array([0.22, 0.1])
    chest_max_yaw = 0.2
    initial_opening_max = 0.02
    target_low, target_high = 0.10, 0.18

    def _load_scene(self):
        return lab_scene(fixtures=[chest_fixture()])

    @cached_property
    def _chest_body(self) -> int:
        return self.model.body(f"{CHEST}/carcass").id

    @cached_property
    def _drawer_qpos(self) -> int:
        return int(self.model.jnt_qposadr[self.model.joint(DRAWER_JOINT).id])

    def _initialize_episode(self) -> None:
        m = self.model
        xy = self.np_random.uniform(self.chest_xy_low, self.chest_xy_high)
        self.chest_yaw = float(self.np_random.uniform(-self.chest_max_yaw, self.chest_max_yaw))
        # The carcass is static (welded to the world): move it by rewriting its model pose, no recompile.
        m.body_pos[self._chest_body] = (xy[0], xy[1], 0.0)
        m.body_quat[self._chest_body] = yaw_to_quat(self.chest_yaw)
        self.data.qpos[self._drawer_qpos] = self.np_random.uniform(0.0, self.initial_opening_max)
        self.goal = np.array([self.np_random.uniform(self.target_low, self.target_high)])

    # ---- geometry in the world frame -------------------------------------------------------------
    def opening_axis(self) -> np.ndarray:
        """Unit vector (world frame) along which the drawer opens."""
        return np.array([-np.cos(self.chest_yaw), -np.sin(self.chest_yaw), 0.0])

    def handle_position(self, opening: float) -> np.ndarray:
        """World position (m) of the handle bar's centre when the drawer is open by `opening` metres."""
        c, s = np.cos(self.chest_yaw), np.sin(self.chest_yaw)
        x, y, z = HANDLE_LOCAL
        centre = self.model.body_pos[self._chest_body]
        return centre + np.array([c * x - s * y, s * x + c * y, z]) + opening * self.opening_axis()

    def opening(self) -> float:
        return float(self.data.qpos[self._drawer_qpos])

    # ---- task hooks ---------------------------------------------------------------------------------
    def _goal_marker_position(self) -> np.ndarray:
        return self.handle_position(float(self.goal[0]))

    def _achieved_goal(self) -> np.ndarray:
        return np.array([self.opening()])

    def _goal_distance(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        return np.maximum(desired[..., 0] - achieved[..., 0], 0.0)

    def _goal_reached(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        return achieved[..., 0] >= desired[..., 0] - self.success_threshold

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.handle_position(self.opening()))
