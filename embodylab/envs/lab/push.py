"""LabPush: push a cube across the table to a goal on the table surface.

A blue cube (half-extent 0.025 m, 0.1 kg, axis-aligned) starts at rest on the table at a uniformly random
xy in the lab workspace; the goal is a point on the table at cube-centre height (z = 0.025 m) at a random
xy at least 0.1 m from the cube. The achieved goal is the cube centre (world frame, metres).
Success: the cube centre is within 0.04 m (Euclidean, x, y and z) of the goal.

Task variants (for curricula), as `reset(options=...)`:
- `{"goal_distance": (lo, hi)}` instead draws the cube uniformly in the workspace and the goal at a
  table-plane distance in [lo, hi] metres from it, in a uniformly random direction, both redrawn until the
  goal lies in the workspace. `goal_distance_arms` cuts a distance range into such variants.
- `{"hand_distance": (lo, hi)}` starts the hand (at its usual height, 9 cm above the table) at a
  table-plane distance in [lo, hi] metres from the cube, in a uniformly random direction, instead of
  at its home xy (a median 17 cm away). Starting near the object is a start-state curriculum (as reverse
  curricula are): random actions push a cube beside the hand far more often, which gives HER moved cubes
  to relabel. `hand_start_arms` are such variants plus the unchanged task. Success and reward are the
  task's own in every variant.
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
MAX_HAND_DISTANCE = 0.25
"""metres, the largest `hand_distance` option: every cube position keeps directions with room for the hand."""
HAND_START_LOW = np.array([-0.25, -0.4])
"""x, y bounds (metres) of a `hand_distance` start: where the arm reaches 9 cm above the table from its
home posture (nearer the base or further out, the IK found no posture at that height)."""
HAND_START_HIGH = np.array([0.15, 0.4])


def goal_distance_arms(
    n_bins: int = 4, max_distance: float = 0.35, min_distance: float = MIN_GOAL_DISTANCE
) -> list[dict[str, tuple[float, float]]]:
    """`n_bins` LabPush variants, `{"goal_distance": (lo, hi)}`, cutting [min_distance, max_distance]
    (metres) into equal-width bins, nearest first."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1; got {n_bins}")
    edges = np.linspace(min_distance, max_distance, n_bins + 1)
    return [{"goal_distance": (float(lo), float(hi))} for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def hand_start_arms(
    edges: tuple[float, ...] = (0.05, 0.1, 0.2),
) -> list[dict[str, tuple[float, float]]]:
    """LabPush variants `{"hand_distance": (lo, hi)}` between consecutive `edges` (metres, nearest first),
    then the unchanged task (`{}`): a start-state curriculum that ends on the task itself. The nearest
    default bin starts the hand just clear of the cube (its half-width is 2.5 cm)."""
    if len(edges) < 2 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=False)):
        raise ValueError(f"edges must be at least two increasing distances; got {edges}")
    arms: list[dict[str, tuple[float, float]]] = [
        {"hand_distance": (float(lo), float(hi))} for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    for arm in arms:
        _check_distance_range("hand_distance", arm["hand_distance"], MAX_HAND_DISTANCE)
    return [*arms, {}]


CURRICULUM_VARIANTS = {"goal_distance": goal_distance_arms, "hand_start": hand_start_arms}
"""LabPush's families of task variants for curricula, by name (`TrainConfig.curriculum_variants`)."""


class LabPushEnv(LabEnv):
    success_threshold = 0.04
    reset_option_keys = ("goal_distance", "hand_distance")
    start_tcp_height = 0.09
    """The hand starts low over the table, 4 cm above the cube's top (the expert's travel height), as Fetch
    Push's gripper starts near the table: from the mount's home posture, 0.34 m above the cube, random
    actions touched the cube in 0 of 20 episodes, and HER had no moved cube to relabel."""

    def curriculum_arms(self, variants: str = "goal_distance") -> list[dict[str, tuple[float, float]]]:
        """The task variants a curriculum chooses among: `variants` names a family of
        `CURRICULUM_VARIANTS` (goal-distance bins by default, see `goal_distance_arms`; `hand_start`: see
        `hand_start_arms`)."""
        if variants not in CURRICULUM_VARIANTS:
            raise ValueError(
                f"LabPush has no curriculum variants {variants!r}; choose from {sorted(CURRICULUM_VARIANTS)}"
            )
        return CURRICULUM_VARIANTS[variants]()

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
            distances = _check_distance_range("goal_distance", goal_distance, MAX_GOAL_DISTANCE)
            cube_xy, goal_xy = self._sample_goal_at_distance(*distances)
        z = TABLE_TOP_Z + CUBE_HALF
        self.sim.set_object_pose(0, [*cube_xy, z])
        self.goal = np.array([*goal_xy, z])
        hand_distance = self._episode_options.get("hand_distance")
        if hand_distance is not None:
            hand_xy = self._sample_hand_near(
                cube_xy, *_check_distance_range("hand_distance", hand_distance, MAX_HAND_DISTANCE)
            )
            self.arm.reset(self.arm.posture_for_tcp([*hand_xy, TABLE_TOP_Z + self.start_tcp_height]))

    def _sample_hand_near(self, cube_xy: np.ndarray, low: float, high: float) -> np.ndarray:
        """Hand xy `low` to `high` metres from the cube in a random direction, redrawn until it lies in
        the hand's start region (`HAND_START_LOW`/`HIGH`)."""
        while True:
            distance = self.np_random.uniform(low, high)
            angle = self.np_random.uniform(-np.pi, np.pi)
            hand_xy = cube_xy + distance * np.array([np.cos(angle), np.sin(angle)])
            if (hand_xy >= HAND_START_LOW).all() and (hand_xy <= HAND_START_HIGH).all():
                return hand_xy

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


def _check_distance_range(name: str, value, maximum: float) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a pair (lo, hi) of metres; got {value!r}") from exc
    if not 0.0 <= low <= high <= maximum:
        raise ValueError(f"{name} must satisfy 0 <= lo <= hi <= {maximum} m; got ({low}, {high})")
    return low, high
