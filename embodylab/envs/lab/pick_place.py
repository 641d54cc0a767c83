"""LabPickPlace: pick a cube up and hold it at a goal, on the table or in the air.

A red cube (half-extent 0.02 m, 0.1 kg, axis-aligned) starts at rest on the table at a uniformly random
xy in the lab workspace. The goal xy is random and at least 0.1 m from the cube; with probability 1/2 the
goal lies on the table (z = 0.02 m, the resting cube-centre height), otherwise in the air with z uniform
in [0.08, 0.25] m above the table top — so a cube pushed along the table is never within the threshold
of an air goal. The achieved goal is the cube centre (world frame, metres).
Success: the cube centre is within 0.04 m (Euclidean, x, y and z) of the goal.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import ObjectSpec
from embodylab.envs.lab.base import TABLE_TOP_Z, LabEnv, lab_scene

CUBE_HALF = 0.02
MIN_GOAL_DISTANCE = 0.1
"""metres between the cube's start and the goal, in the table plane."""
AIR_GOAL_HEIGHT = (0.08, 0.25)
"""metres above the table top of an air goal's centre."""


class LabPickPlaceEnv(LabEnv):
    success_threshold = 0.04
    air_goal_probability = 0.5

    def _load_scene(self):
        cube = ObjectSpec(
            "cube", "cube", half_extents=(CUBE_HALF,) * 3, mass=0.1, rgba=(0.9, 0.15, 0.15, 1.0)
        )
        return lab_scene([cube])

    def _initialize_episode(self) -> None:
        cube_xy, goal_xy = self._sample_separated_xy(2, MIN_GOAL_DISTANCE)
        self.sim.set_object_pose(0, [*cube_xy, TABLE_TOP_Z + CUBE_HALF])
        if self.np_random.uniform() < self.air_goal_probability:
            goal_z = TABLE_TOP_Z + self.np_random.uniform(*AIR_GOAL_HEIGHT)
        else:
            goal_z = TABLE_TOP_Z + CUBE_HALF
        self.goal = np.array([*goal_xy, goal_z])

    def _achieved_goal(self) -> np.ndarray:
        return self.sim.object_position("cube")

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("cube"))
