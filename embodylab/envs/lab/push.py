"""LabPush: push a cube across the table to a goal on the table surface.

A blue cube (half-extent 0.025 m, 0.1 kg, axis-aligned) starts at rest on the table at a uniformly random
xy in the lab workspace; the goal is a point on the table at cube-centre height (z = 0.025 m) at a random
xy at least 0.1 m from the cube. The achieved goal is the cube centre (world frame, metres).
Success: the cube centre is within 0.04 m (Euclidean, x, y and z) of the goal.

Task variant (for curricula): `reset(options={"goal_distance": (lo, hi)})` instead draws the cube
uniformly in the workspace and the goal at a table-plane distance in [lo, hi] metres from it, in a
uniformly random direction, both redrawn until the goal lies in the workspace. `goal_distance_arms`
cuts a distance range into such variants.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.scene import ObjectSpec
from embodylab.envs.lab.base import TABLE_TOP_Z, WORKSPACE_HIGH, WORKSPACE_LOW, LabEnv, lab_scene

CUBE_HALF = 0.025
MIN_GOAL_DISTANCE = 0.1
"""metres between the cube's start and the goal, in the table plane."""
MAX_GOAL_DISTANCE = 0.45
"""metres, the largest `goal_distance` option: beyond it under 4% of cube positions leave the goal room."""


def goal_distance_arms(
    n_bins: int = 4, max_distance: float = 0.35, min_distance: float = MIN_GOAL_DISTANCE
) -> list[dict[str, tuple[float, float]]]:
    """`n_bins` LabPush variants, `{"goal_distance": (lo, hi)}`, cutting [min_distance, max_distance]
    (metres) into equal-width bins, nearest first."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}")
    edges = np.linspace(min_distance, max_distance, n_bins + 1)
    return [{"goal_distance": (float(lo), float(hi))} for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


class LabPushEnv(LabEnv):
    description = "Push a cube across the table to a goal on the table."
    success_threshold = 0.04
    reset_option_keys = ("goal_distance",)
    start_tcp_height = 0.09
    """The hand starts low over the table, 4 cm above the cube's top (the expert's travel height), as Fetch
    Push's gripper starts near the table: from the mount's home posture, 0.34 m above the cube, random
    actions touched the cube in 0 of 20 episodes, and HER had no moved cube to relabel."""

    def curriculum_arms(self) -> list[dict[str, tuple[float, float]]]:
        """The task variants a curriculum chooses among: goal-distance bins (see `goal_distance_arms`)."""
        return goal_distance_arms()

    def _load_scene(self):
        cube = ObjectSpec(
            "cube", "cube", half_extents=(CUBE_HALF,) * 3, mass=0.1, rgba=(0.15, 0.35, 0.9, 1.0)
        )
        return lab_scene([cube])

    def _initialize_episode(self) -> None:
        goal_distance = self._episode_options.get("goal_distance")
        if goal_distance is None:
            cube_xy, goal_xy = self._sample_separated_xy(2, MIN_GOAL_DISTANCE)
        else:
            cube_xy, goal_xy = self._sample_goal_at_distance(*_check_goal_distance(goal_distance))
        z = TABLE_TOP_Z + CUBE_HALF
        self.sim.set_object_pose(0, [*cube_xy, z])
        self.goal = np.array([*goal_xy, z])

    def _sample_goal_at_distance(self, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """Cube and goal xy (metres) in the workspace, `low` to `high` apart (rejection sampling)."""
        while True:
            cube_xy = self.np_random.uniform(WORKSPACE_LOW, WORKSPACE_HIGH)
            distance = self.np_random.uniform(low, high)
            angle = self.np_random.uniform(-np.pi, np.pi)
            goal_xy = cube_xy + distance * np.array([np.cos(angle), np.sin(angle)])
            if (goal_xy >= WORKSPACE_LOW).all() and (goal_xy <= WORKSPACE_HIGH).all():
                return cube_xy, goal_xy

    def _achieved_goal(self) -> np.ndarray:
        return self.sim.object_position("cube")

    def _shaping_reward(self) -> float:
        return -self._distance(self.arm.tcp_pos, self.sim.object_position("cube"))


def _check_goal_distance(value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"goal_distance must be a pair (lo, hi) of metres; got {value!r}") from exc
    if not 0.0 <= low <= high <= MAX_GOAL_DISTANCE:
        raise ValueError(
            f"goal_distance must satisfy 0 <= lo <= hi <= {MAX_GOAL_DISTANCE} m; got ({low}, {high})"
        )
    return low, high
