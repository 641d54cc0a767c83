"""LabPush: push a cube across the table to a goal on the table surface.

A blue cube (half-extent 0.025 m, 0.1 kg, axis-aligned) starts at rest on the table at a uniformly random
xy in the lab workspace; the goal is a point on the table at cube-centre height (z = 0.025 m) at a random
xy at least 0.1 m from the cube. The achieved goal is the cube centre (world frame, metres).
Success: the cube centre is within 0.04 m (Euclidean, x, y and z) of the goal.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import ObjectSpec
from embodylab.envs.lab.base import TABLE_TOP_Z, LabEnv, lab_scene

CUBE_HALF = 0.025
MIN_GOAL_DISTANCE = 0.1
"""metres between the cube's start and the goal, in the table plane."""


class LabPushEnv(LabEnv):
    description = "Push a cube across the table to a goal on the table."
    success_threshold = 0.04

    def _load_scene(self):
        cube = ObjectSpec(
            "cube", "cube", half_extents=(CUBE_HALF,) * 3, mass=0.1, rgba=(0.15, 0.35, 0.9, 1.0)
        )
        return lab_scene([cube])

    def _initialize_episode(self) -> None:
        cube_xy, goal_xy = self._sample_separated_xy(2, MIN_GOAL_DISTANCE)
        z = TABLE_TOP_Z + CUBE_HALF
        self.sim.set_object_pose(0, [*cube_xy, z])
        self.goal = np.array([*goal_xy, z])

    def _achieved_goal(self) -> np.ndarray:
        return self.sim.object_position("cube")

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("cube"))
