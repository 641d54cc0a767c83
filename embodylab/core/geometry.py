"""Small planar geometry shared by envs and skills: yaw quaternions, angle wrapping, SE(2) poses.

Angles are radians; quaternions are (w, x, y, z); an SE(2) pose is (x, y, yaw) in metres and radians.
"""

from __future__ import annotations

import numpy as np


def yaw_to_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z), float64 [4], of a rotation by `yaw` radians about the z axis."""
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def quat_to_yaw(quat) -> float:
    """Rotation (rad) about z of a (w, x, y, z) quaternion that turns about z only."""
    w, x, y, z = quat
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def wrap_angle(angle):
    """`angle` (radians, a scalar or an array) wrapped to [-pi, pi]: the atan2 of its sine and cosine (pi maps
    to pi, -pi to -pi)."""
    return np.arctan2(np.sin(angle), np.cos(angle))


def se2_compose(pose: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """World pose (x, y, yaw) of `offset` given in the frame of `pose`; the yaw is not wrapped."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    return np.array(
        [
            pose[0] + c * offset[0] - s * offset[1],
            pose[1] + s * offset[0] + c * offset[1],
            pose[2] + offset[2],
        ]
    )


def se2_relative(pose: np.ndarray, other: np.ndarray) -> np.ndarray:
    """`other` (x, y, yaw) expressed in the frame of `pose`, its yaw wrapped by `wrap_angle`."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    d = other[:2] - pose[:2]
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], wrap_angle(other[2] - pose[2])])
