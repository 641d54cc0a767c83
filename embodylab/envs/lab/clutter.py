"""LabClutter: push one target cube to a goal on the table among 0–7 distractor cubes.

The scene holds `n_objects` cubes (1–8, a constructor argument, default 4; half-extent 0.025 m, 0.1 kg,
axis-aligned): object 0 is the blue target (category `target_cube`), the others are red distractors
(category `cube`). All start at rest on the table at uniformly random xy in the lab workspace, at least
0.07 m apart (centre to centre); the goal is a point at cube-centre height (z = 0.025 m) at least 0.1 m
from the target and from every distractor's start. The achieved goal is the target's centre (world frame,
metres). Success: the target's centre is within 0.04 m of the goal.

The object count is the knob world models are tested on: a model trained on scenes of 1–3 objects is
evaluated on scenes of 6.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import ObjectSpec
from embodylab.envs.lab.base import TABLE_TOP_Z, LabEnv, lab_scene
from embodylab.envs.lab.push import CUBE_HALF, MIN_GOAL_DISTANCE

MAX_OBJECTS = 8
MIN_SEPARATION = 0.07
"""metres between cube centres at the start: 2 cm of clearance between neighbouring faces."""


class LabClutterEnv(LabEnv):
    success_threshold = 0.04

    def __init__(self, n_objects: int = 4, **kwargs):
        if isinstance(n_objects, bool) or not isinstance(n_objects, int | np.integer):
            raise ValueError(f"n_objects must be an integer in [1, {MAX_OBJECTS}]; got {n_objects!r}")
        if not 1 <= n_objects <= MAX_OBJECTS:
            raise ValueError(f"n_objects must lie in [1, {MAX_OBJECTS}]; got {n_objects}")
        self.n_objects = int(n_objects)
        super().__init__(**kwargs)

    def _load_scene(self):
        size = (CUBE_HALF,) * 3
        target = ObjectSpec("target", "target_cube", half_extents=size, mass=0.1, rgba=(0.15, 0.35, 0.9, 1.0))
        distractors = [
            ObjectSpec(f"distractor_{i}", "cube", half_extents=size, mass=0.1, rgba=(0.85, 0.2, 0.15, 1.0))
            for i in range(1, self.n_objects)
        ]
        return lab_scene([target, *distractors])

    def _initialize_episode(self) -> None:
        # The goal is drawn with the cubes so that it starts clear of every one of them.
        *cubes_xy, goal_xy = self._sample_separated_xy(self.n_objects + 1, MIN_SEPARATION)
        while np.linalg.norm(goal_xy - cubes_xy[0]) < MIN_GOAL_DISTANCE:
            *cubes_xy, goal_xy = self._sample_separated_xy(self.n_objects + 1, MIN_SEPARATION)
        z = TABLE_TOP_Z + CUBE_HALF
        for index, xy in enumerate(cubes_xy):
            self.sim.set_object_pose(index, [*xy, z])
        self.goal = np.array([*goal_xy, z])

    def _achieved_goal(self) -> np.ndarray:
        return self.sim.object_position("target")

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("target"))
