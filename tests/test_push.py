import gymnasium as gym
import mujoco
import numpy as np
import pytest

from embodylab.envs.lab.push import CUBE_HALF, MIN_GOAL_DISTANCE
from embodylab.skills.experts import rollout

ENV_ID = "embodylab/LabPush-v0"


@pytest.fixture(scope="module")
def env():
    return gym.make(ENV_ID)


def test_expert_pushes_the_cube_to_the_goal_on_nine_of_ten_seeds(env):
    assert sum(rollout(env, seed) for seed in range(10)) >= 9


def test_goal_lies_on_the_table_away_from_the_cube(env):
    for seed in range(20):
        env.reset(seed=seed)
        cube, goal = env.unwrapped.sim.object_position("cube"), env.unwrapped.goal
        assert goal[2] == pytest.approx(CUBE_HALF)
        assert np.linalg.norm(goal[:2] - cube[:2]) >= MIN_GOAL_DISTANCE


@pytest.mark.parametrize(("offset", "reached"), [(0.035, True), (0.045, False)])
def test_success_is_the_cube_within_four_centimetres_of_the_goal(env, offset, reached):
    env.reset(seed=0)
    u = env.unwrapped
    u.sim.set_object_pose(0, u.goal + [offset, 0.0, 0.0])
    mujoco.mj_forward(u.model, u.data)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape))
    assert info["is_success"] is reached


def test_hand_starts_low_over_the_table_pointing_down_and_holds_still(env):
    reacher = gym.make("embodylab/LabReach-v0").unwrapped
    reacher.reset(seed=0)
    u = env.unwrapped
    for seed in range(3):
        env.reset(seed=seed)
        tcp = u.arm.tcp_pos.copy()
        # straight below the home posture's tcp, hand orientation unchanged
        np.testing.assert_allclose(tcp, [*reacher.arm.tcp_pos[:2], u.start_tcp_height], atol=1e-4)
        np.testing.assert_allclose(np.abs(u.arm.target_quat @ reacher.arm.target_quat), 1.0, atol=1e-6)
        for _ in range(10):
            env.step(np.zeros(env.action_space.shape))
        assert np.linalg.norm(u.arm.tcp_pos - tcp) < 0.005


def test_posture_for_an_unreachable_tcp_position_raises(env):
    with pytest.raises(ValueError, match="out of the arm's reach"):
        env.unwrapped.arm.posture_for_tcp([2.0, 0.0, 0.1])
    with pytest.raises(ValueError, match="finite joint angles"):
        env.unwrapped.arm.set_home([0.0] * 6)


def test_the_hand_stays_inside_the_lab_box(env):
    u = env.unwrapped
    low, high = (np.array(b) for b in u.tcp_bounds)
    env.reset(seed=0)
    for direction in ([1, 1, 1, 0], [-1, -1, -1, 0], [-1, 1, 1, 0]):
        for _ in range(60):
            env.step(np.array(direction, dtype=np.float32))
            assert (u.arm.tcp_pos >= low - 0.01).all() and (u.arm.tcp_pos <= high + 0.01).all()
    with pytest.raises(ValueError, match="low < high"):
        u.arm.set_tcp_bounds([0, 0, 0], [1, -1, 1])
