"""The shared tabletop of the lab suite: a table, a Panda at its edge, cameras and lights.

The table top is the plane z = 0 (world frame); the robot base stands at x = -0.55 m facing +x.
"""

from __future__ import annotations

import numpy as np

from embodylab.core.geometry import yaw_to_quat
from embodylab.core.scene import (
    CameraSpec,
    FixtureSpec,
    LightSpec,
    ObjectSpec,
    RobotMount,
    SceneSpec,
    TableSpec,
)
from embodylab.envs.base import EmbodiedEnv

TABLE_TOP_Z = 0.0
WORKSPACE_LOW = np.array([-0.2, -0.25])
"""x, y bounds (metres) of where objects and goals are placed."""
WORKSPACE_HIGH = np.array([0.15, 0.25])

LAB_CAMERAS = (
    CameraSpec("front", pos=(0.95, 0.5, 0.75), lookat=(-0.22, 0.0, 0.2), fovy=50.0),
    CameraSpec("side", pos=(-0.2, 1.35, 0.8), lookat=(-0.2, 0.0, 0.25), fovy=50.0),
)
LAB_LIGHTS = (
    # One slanted key light plus MuJoCo's headlight: each extra light costs ~15% of software render speed.
    LightSpec(
        pos=(0.6, 0.5, 2.0), direction=(-0.3, -0.25, -1.0), directional=True, diffuse=(0.65, 0.65, 0.65)
    ),
)


def lab_scene(objects: list[ObjectSpec] = (), fixtures: list[FixtureSpec] = (), **kwargs) -> SceneSpec:
    """The lab tabletop with the given task objects and fixtures."""
    return SceneSpec(
        objects=list(objects),
        fixtures=list(fixtures),
        robot=RobotMount(),
        table=TableSpec(top_height=TABLE_TOP_Z),
        cameras=list(LAB_CAMERAS),
        lights=list(LAB_LIGHTS),
        **kwargs,
    )


class LabEnv(EmbodiedEnv):
    """Base of the lab tabletop tasks; adds sampling helpers over the shared workspace."""

    tcp_bounds = ((-0.45, -0.45, -0.02), (0.35, 0.45, 0.45))
    """The hand stays over the table, within 0.25 m of the object workspace and below 0.45 m: without the
    box, an RL policy's saturated actions took it 0.7 m sideways or 0.6 m up, where no task happens."""
    start_tcp_height: float | None = None
    """metres above the table top at which the tool centre point starts each episode, straight below its
    place in the mount's home posture, hand orientation unchanged; None: the home posture itself (tcp
    0.36 m up)."""

    def _start_posture(self) -> np.ndarray | None:
        if self.start_tcp_height is None:
            return None
        self.arm.reset()
        x, y, _ = self.arm.tcp_pos
        return self.arm.posture_for_tcp([x, y, TABLE_TOP_Z + self.start_tcp_height])

    def _sample_xy(self, low=WORKSPACE_LOW, high=WORKSPACE_HIGH) -> np.ndarray:
        return self.np_random.uniform(low, high)

    def _sample_separated_xy(self, count: int, min_distance: float, low=WORKSPACE_LOW, high=WORKSPACE_HIGH):
        """`count` xy positions at least `min_distance` apart (rejection sampling from np_random)."""
        points: list[np.ndarray] = []
        while len(points) < count:
            candidate = self.np_random.uniform(low, high)
            if all(np.linalg.norm(candidate - p) >= min_distance for p in points):
                points.append(candidate)
        return points

    def _random_yaw_quat(self) -> np.ndarray:
        yaw = self.np_random.uniform(-np.pi, np.pi)
        return yaw_to_quat(yaw)
