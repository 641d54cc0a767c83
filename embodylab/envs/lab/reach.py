"""LabReach: move the gripper's tool centre point to a goal in the air above the table.

This is the template task: a lab task is this much code over `LabEnv`.
Success: the tool centre point is within 3 cm of the goal (world frame).
"""

from __future__ import annotations

import numpy as np

from embodylab.envs.lab.base import LabEnv, lab_scene


class LabReachEnv(LabEnv):
    success_threshold = 0.03
    goal_low = np.array([-0.2, -0.25, 0.05])
    goal_high = np.array([0.15, 0.25, 0.35])

    def _load_scene(self):
        return lab_scene()

    def _initialize_episode(self) -> None:
        self.goal = self.np_random.uniform(self.goal_low, self.goal_high)

    def _achieved_goal(self) -> np.ndarray:
        return self.arm.tcp_pos.copy()
