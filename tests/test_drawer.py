"""LabDrawer: the expert opens the drawer, the goal reward is vectorised, resets are seeded and at rest,
and the drawer is a real articulated link."""

import gymnasium as gym
import numpy as np
import pytest

import embodylab  # noqa: F401  (registers the ids)
from embodylab.envs.lab.drawer import DRAWER_JOINT
from embodylab.skills.experts import rollout

ENV_ID = "embodylab/LabDrawer-v0"


def chest_pose(env) -> tuple[np.ndarray, float, float, float]:
    u = env.unwrapped
    return u.handle_position(0.0), u.chest_yaw, u.opening(), float(u.goal[0])


def test_expert_opens_the_drawer_on_at_least_9_of_10_seeds():
    env = gym.make(ENV_ID)
    assert sum(rollout(env, seed) for seed in range(10)) >= 9


def test_success_is_opening_within_1cm_of_the_target_and_overshoot_is_not_penalised():
    env = gym.make(ENV_ID, goal_conditioned=True, reward_type="dense").unwrapped
    desired = np.array([[0.15], [0.15], [0.15], [0.15]])
    achieved = np.array([[0.10], [0.139], [0.141], [0.2]])
    np.testing.assert_array_equal(env._goal_reached(achieved, desired), [False, False, True, True])
    np.testing.assert_allclose(
        env.compute_reward(achieved, desired, {}), [-0.05, -0.011, -0.009, 0.0], atol=1e-6
    )


def test_reset_distribution_is_seeded():
    env = gym.make(ENV_ID)
    env.reset(seed=7)
    first = chest_pose(env)
    env.reset(seed=8)
    other = chest_pose(env)
    env.reset(seed=7)
    again = chest_pose(env)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1:] == again[1:]
    assert not np.allclose(first[0], other[0]) and first[1:] != other[1:]


@pytest.mark.parametrize("seed", range(5))
def test_drawer_starts_at_rest_without_penetration(seed):
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    u = env.unwrapped
    assert 0.0 <= u.opening() <= 0.02
    assert u.data.ncon == 0
    drawer = u.model.body(DRAWER_JOINT).id
    before = u.data.xpos.copy()
    env.step(np.array([0.0, 0.0, 0.0, 1.0]))
    assert np.abs(u.data.xpos[drawer] - before[drawer]).max() < 1e-3
    assert np.abs(u.data.xpos - before).max() < 1e-3


def test_drawer_is_articulated_pulling_opens_it():
    env = gym.make(ENV_ID)
    env.reset(seed=1)
    u = env.unwrapped
    start = u.sim.fixture_joint_position(DRAWER_JOINT)
    u.data.xfrc_applied[u.model.body(DRAWER_JOINT).id, :3] = 20.0 * u.opening_axis()
    for _ in range(5):
        env.step(np.array([0.0, 0.0, 0.0, 1.0]))
    assert u.sim.fixture_joint_position(DRAWER_JOINT) > start + 0.05


def test_drawer_appears_in_object_states_with_its_bounding_box():
    env = gym.make(ENV_ID)
    env.reset(seed=2)
    u = env.unwrapped
    states = u.object_states()
    assert states.names == [DRAWER_JOINT] and states.categories == ["drawer"]
    row = states[DRAWER_JOINT]
    np.testing.assert_allclose(row[0:3], u.data.xpos[u.model.body(DRAWER_JOINT).id], atol=1e-6)
    # tray and handle: about 28 cm deep, 30 cm wide and 12 cm tall, centred on the body origin
    np.testing.assert_allclose(row[13:16], [0.1415, 0.148, 0.058], atol=2e-3)
