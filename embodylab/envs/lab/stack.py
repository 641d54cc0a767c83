"""LabStack: put the red cube on top of the blue cube.

Two 4 cm cubes (half-extent h = 0.02 m) start resting on the table (z = h) at random, separated
positions (at least 0.1 m apart) with random yaw. World frame, metres throughout.

Goal (6 values): [red target 3, blue target 3] with the blue target at blue's initial position and the
red target directly above it, z = 3h = 0.06 m (resting on blue). Achieved: [red position 3, blue
position 3] (cube centres).
Success: each cube centre is within 0.02 m of its target, *and* the red-minus-blue offset is within
0.02 m of the target offset (0, 0, 2h). The offset test is what "on top" means: red's centre lies over
blue's top face (horizontal offset < h) at resting height, even when both cubes drift from their
targets in opposite directions. It compares achieved with desired, so it holds whenever
achieved == desired and hindsight relabelling stays meaningful.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import ObjectSpec
from embodylab.envs.lab.base import LabEnv, lab_scene

CUBE_HALF = 0.02
RED, BLUE = 0, 1


class LabStackEnv(LabEnv):
    success_threshold = 0.02
    min_separation = 0.1

    def _load_scene(self):
        half = (CUBE_HALF,) * 3
        return lab_scene(
            objects=[
                ObjectSpec("red_cube", "cube", half_extents=half, rgba=(0.85, 0.15, 0.15, 1.0)),
                ObjectSpec("blue_cube", "cube", half_extents=half, rgba=(0.15, 0.3, 0.85, 1.0)),
            ]
        )

    def _initialize_episode(self) -> None:
        red_xy, blue_xy = self._sample_separated_xy(2, self.min_separation)
        for index, xy in ((RED, red_xy), (BLUE, blue_xy)):
            self.sim.set_object_pose(index, [*xy, CUBE_HALF], self._random_yaw_quat())
        blue = np.array([*blue_xy, CUBE_HALF])
        self.goal = np.concatenate([blue + [0.0, 0.0, 2 * CUBE_HALF], blue])

    def _achieved_goal(self) -> np.ndarray:
        return np.concatenate([self.sim.object_position("red_cube"), self.sim.object_position("blue_cube")])

    def _goal_reached(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        red_error = np.linalg.norm(achieved[..., 0:3] - desired[..., 0:3], axis=-1)
        blue_error = np.linalg.norm(achieved[..., 3:6] - desired[..., 3:6], axis=-1)
        offset_error = np.linalg.norm(
            (achieved[..., 0:3] - achieved[..., 3:6]) - (desired[..., 0:3] - desired[..., 3:6]), axis=-1
        )
        t = self.success_threshold
        return (red_error < t) & (blue_error < t) & (offset_error < t)

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("red_cube"))
