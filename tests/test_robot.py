"""The built Panda matches its published kinematics and holds still under gravity compensation."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from embodylab.core.mujoco_backend import MujocoScene
from embodylab.core.robot import PANDA_JOINT_LIMITS, PANDA_LINK_MASSES, panda_dh_forward_kinematics
from embodylab.core.scene import RobotMount, SceneSpec

CONFIGURATIONS = [
    np.zeros(7),
    np.array([0.0, -0.3, 0.0, -2.3, 0.0, 2.0, 0.785]),
    np.array([1.2, 0.5, -0.7, -1.5, 2.1, 1.0, -2.0]),
    np.array([-2.5, -1.5, 2.5, -0.2, -2.5, 3.5, 2.5]),
    np.array([0.3, 1.7, 0.4, -3.0, 0.9, 0.1, 0.0]),
]


@pytest.fixture(scope="module")
def robot_scene():
    base = (0.1, -0.2, 0.3)
    return MujocoScene(SceneSpec(table=None, robot=RobotMount(pos=base), goal_marker=False)), np.array(base)


@pytest.mark.parametrize("q", CONFIGURATIONS)
def test_forward_kinematics_matches_the_modified_dh_model(robot_scene, q):
    scene, base = robot_scene
    m, d = scene.model, scene.data
    d.qpos[:7] = q
    mujoco.mj_kinematics(m, d)
    frames = panda_dh_forward_kinematics(q)
    for i in range(7):
        np.testing.assert_allclose(d.xpos[m.body(f"link{i + 1}").id], base + frames[i][:3, 3], atol=1e-6)
        np.testing.assert_allclose(
            d.xmat[m.body(f"link{i + 1}").id].reshape(3, 3), frames[i][:3, :3], atol=1e-6
        )
    tcp = m.site("tcp").id
    np.testing.assert_allclose(d.site_xpos[tcp], base + frames[-1][:3, 3], atol=1e-6)


def test_joint_limits_and_link_masses_are_the_published_ones(robot_scene):
    scene, _ = robot_scene
    m = scene.model
    for i, (lo, hi) in enumerate(PANDA_JOINT_LIMITS):
        np.testing.assert_allclose(m.jnt_range[m.joint(f"joint{i + 1}").id], [lo, hi])
    masses = [m.body_mass[m.body(f"link{i}").id] for i in range(8)]
    np.testing.assert_allclose(masses, PANDA_LINK_MASSES)


def test_arm_holds_its_pose_with_zero_action():
    env = gym.make("embodylab/LabReach-v0")
    env.reset(seed=0)
    start = env.unwrapped.arm.tcp_pos.copy()
    for _ in range(25):
        env.step(np.array([0.0, 0.0, 0.0, 1.0]))
    assert np.linalg.norm(env.unwrapped.arm.tcp_pos - start) < 0.005


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_ee_delta_moves_the_tool_along_the_commanded_axis(axis):
    env = gym.make("embodylab/LabReach-v0")
    env.reset(seed=0)
    start = env.unwrapped.arm.tcp_pos.copy()
    action = np.zeros(4)
    action[axis], action[3] = -1.0 if axis == 2 else 1.0, 1.0
    for _ in range(3):
        env.step(action)
    moved = env.unwrapped.arm.tcp_pos - start
    assert abs(moved[axis]) > 0.05
    assert np.abs(np.delete(moved, axis)).max() < 0.3 * abs(moved[axis])


def test_gripper_closes_and_opens():
    env = gym.make("embodylab/LabReach-v0")
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([0.0, 0.0, 0.0, -1.0]))
    assert env.unwrapped.arm.gripper_width < 0.005
    for _ in range(10):
        env.step(np.array([0.0, 0.0, 0.0, 1.0]))
    assert env.unwrapped.arm.gripper_width > 0.075
