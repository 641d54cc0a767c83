"""LabPegInsert: pick up an upright tube and insert it into the hole of a rack.

The tube is a solid cylinder (radius 0.012 m, length 0.08 m, collision geometry a true MuJoCo cylinder)
standing upright on the table at a random position. The rack is a static fixture (no joint): four boxes
0.03 m tall around a square through-hole 0.028 m wide, so the hole is 4 mm wider than the tube's
diameter (2 mm clearance a side); the table top is the hole's floor. The rack stands at a random position
at least 0.15 m from the tube, with random yaw. World frame, metres throughout.

Goal (3 values): where the tube's bottom-centre point is when fully inserted, i.e. the centre of the
hole's floor (hole x, hole y, 0). Achieved: the tube's bottom-centre point (the centre of its bottom
face, following the tube's orientation).
Success: the bottom-centre is within 0.01 m of the goal. The walls leave the bottom-centre at most
2 mm from the hole's axis below the rack top, so success means the tube is in the hole and inserted at
least 20 mm deep (of the 30 mm).
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import FixtureSpec, GeomSpec, LinkSpec, ObjectSpec
from embodylab.envs.lab.base import WORKSPACE_HIGH, WORKSPACE_LOW, LabEnv, lab_scene

PEG_RADIUS = 0.012
PEG_HALF_LENGTH = 0.04
HOLE_HALF_WIDTH = 0.014
RACK_HEIGHT = 0.03
RACK_WALL = 0.02
RACK_HALF_WIDTH = HOLE_HALF_WIDTH + RACK_WALL
RACK_RGBA = (0.45, 0.47, 0.52, 1.0)


def rack_fixture(name: str = "rack") -> FixtureSpec:
    """A square block with a square through-hole at its centre, built from four walls on the table."""
    a, w, h = HOLE_HALF_WIDTH, RACK_WALL, RACK_HEIGHT / 2
    walls = [
        GeomSpec(
            "box", (a + w, w / 2, h), pos=(0.0, sign * (a + w / 2), h), rgba=RACK_RGBA, name=f"wall_y{i}"
        )
        for i, sign in enumerate((1.0, -1.0))
    ] + [
        GeomSpec("box", (w / 2, a, h), pos=(sign * (a + w / 2), 0.0, h), rgba=RACK_RGBA, name=f"wall_x{i}")
        for i, sign in enumerate((1.0, -1.0))
    ]
    return FixtureSpec(name, "rack", root=LinkSpec("base", walls))


class LabPegInsertEnv(LabEnv):
    success_threshold = 0.01
    min_separation = 0.15
    rack_height = RACK_HEIGHT

    def _load_scene(self):
        tube = ObjectSpec(
            "tube",
            "tube",
            shape="cylinder",
            half_extents=(PEG_RADIUS, PEG_RADIUS, PEG_HALF_LENGTH),
            mass=0.05,
            rgba=(0.95, 0.6, 0.1, 1.0),
        )
        return lab_scene(objects=[tube], fixtures=[rack_fixture()], goal_marker_radius=HOLE_HALF_WIDTH)

    def _initialize_episode(self) -> None:
        margin = RACK_HALF_WIDTH * np.sqrt(2)  # the rack's footprint stays on the workspace at any yaw
        peg_xy, rack_xy = self._sample_separated_xy(
            2, self.min_separation, WORKSPACE_LOW + margin, WORKSPACE_HIGH - margin
        )
        self.sim.set_object_pose(0, [*peg_xy, PEG_HALF_LENGTH])
        # The rack is static: its pose lives in the model, so a reset moves it there.
        rack = self.model.body("rack/base")
        rack.pos[:] = [*rack_xy, 0.0]
        rack.quat[:] = self._random_yaw_quat()
        self.goal = np.array([*rack_xy, 0.0])

    def _goal_marker_position(self) -> np.ndarray:
        return self.goal + [0.0, 0.0, RACK_HEIGHT]  # the hole's mouth

    def tube_bottom(self) -> np.ndarray:
        """The centre of the tube's bottom face, world frame, metres."""
        body = self.sim.object_body_ids[0]
        axis = self.data.xmat[body].reshape(3, 3)[:, 2]
        return self.data.xpos[body] - PEG_HALF_LENGTH * axis

    def _achieved_goal(self) -> np.ndarray:
        return self.tube_bottom()

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("tube"))
