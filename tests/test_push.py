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


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_compute_reward_is_vectorised_over_a_batch(reward_type):
    env = gym.make(ENV_ID, goal_conditioned=True, reward_type=reward_type)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    achieved = obs["achieved_goal"] + rng.normal(0.0, 0.05, (32, 3)).astype(np.float32)
    desired = np.repeat(obs["desired_goal"][None], 32, axis=0)
    desired[:8] = achieved[:8] + 0.01  # some reached, some not
    batch = env.unwrapped.compute_reward(achieved, desired, [info] * 32)
    assert batch.shape == (32,)
    single = [env.unwrapped.compute_reward(a, d, info) for a, d in zip(achieved, desired, strict=True)]
    np.testing.assert_allclose(batch, single)
    if reward_type == "sparse":
        assert set(np.unique(batch)) <= {-1.0, 0.0} and (batch[:8] == 0.0).all()


@pytest.mark.parametrize(("offset", "reached"), [(0.035, True), (0.045, False)])
def test_success_is_the_cube_within_four_centimetres_of_the_goal(env, offset, reached):
    env.reset(seed=0)
    u = env.unwrapped
    u.sim.set_object_pose(0, u.goal + [offset, 0.0, 0.0])
    mujoco.mj_forward(u.model, u.data)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape))
    assert info["is_success"] is reached
