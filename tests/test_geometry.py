"""core/geometry: yaw quaternions, angle wrapping and SE(2) poses."""

import numpy as np

from embodylab.core.geometry import quat_to_yaw, se2_compose, se2_relative, wrap_angle, yaw_to_quat


def test_wrap_angle_maps_to_the_equivalent_angle_within_pi():
    assert wrap_angle(np.pi) == np.pi
    np.testing.assert_allclose(
        wrap_angle(np.array([3 * np.pi / 2, -3 * np.pi / 2, 0.5])), [-np.pi / 2, np.pi / 2, 0.5]
    )


def test_quat_to_yaw_inverts_yaw_to_quat():
    for yaw in np.linspace(-3.0, 3.0, 13):
        quat = yaw_to_quat(yaw)
        assert quat.shape == (4,) and np.isclose(np.linalg.norm(quat), 1.0)
        assert np.isclose(quat_to_yaw(quat), yaw)


def test_se2_relative_inverts_se2_compose():
    pose, offset = np.array([1.0, -2.0, 0.7]), np.array([0.3, 0.4, -0.2])
    np.testing.assert_allclose(se2_relative(pose, se2_compose(pose, offset)), offset, atol=1e-12)
