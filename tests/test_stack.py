"""LabStack: the expert stacks, the goal reward is vectorised and HER-consistent, resets are seeded and
at rest, and success means red resting on blue."""

import gymnasium as gym
import numpy as np
import pytest

import embodylab  # noqa: F401  (registers the ids)
from embodylab.envs.lab.stack import CUBE_HALF
from embodylab.skills.experts import rollout

ENV_ID = "embodylab/LabStack-v0"


def cube_positions(env) -> np.ndarray:
    return env.unwrapped.object_states().features[:, 0:3].copy()


def test_expert_stacks_on_at_least_9_of_10_seeds():
    env = gym.make(ENV_ID)
    assert sum(rollout(env, seed) for seed in range(10)) >= 9


def test_success_needs_red_resting_on_blue():
    env = gym.make(ENV_ID).unwrapped
    blue = np.array([0.05, -0.1, CUBE_HALF])
    desired = np.concatenate([blue + [0, 0, 2 * CUBE_HALF], blue])
    cases = {
        "stacked": (blue + [0.005, 0.0, 2 * CUBE_HALF], blue),
        "red beside blue": (blue + [0.05, 0.0, 0.0], blue),
        "blue pushed away": (blue + [0.0, 0.0, 2 * CUBE_HALF], blue + [0.03, 0.0, 0.0]),
        # each cube within 2 cm of its own target, but red's centre hangs past blue's edge
        "red off blue's top face": (blue + [0.015, 0.0, 2 * CUBE_HALF], blue - [0.015, 0.0, 0.0]),
    }
    achieved = np.array([np.concatenate(c) for c in cases.values()])
    reached = env._goal_reached(achieved, np.repeat(desired[None], len(cases), axis=0))
    np.testing.assert_array_equal(reached, [True, False, False, False])


def test_any_achieved_goal_is_reached_when_it_is_the_desired_goal():
    env = gym.make(ENV_ID).unwrapped
    goals = np.random.default_rng(1).uniform(-0.3, 0.3, size=(16, 6))
    assert env._goal_reached(goals, goals).all()  # hindsight relabelling always finds a success


def test_goal_is_red_on_blues_initial_position():
    env = gym.make(ENV_ID)
    env.reset(seed=3)
    blue = cube_positions(env)[1]
    np.testing.assert_allclose(env.unwrapped.goal, [*blue[:2], 3 * CUBE_HALF, *blue], atol=1e-6)


def test_reset_distribution_is_seeded():
    env = gym.make(ENV_ID)
    env.reset(seed=7)
    first = cube_positions(env)
    env.reset(seed=8)
    other = cube_positions(env)
    env.reset(seed=7)
    np.testing.assert_array_equal(first, cube_positions(env))
    assert not np.allclose(first, other)


@pytest.mark.parametrize("seed", range(5))
def test_cubes_start_resting_on_the_table_apart_without_penetration(seed):
    env = gym.make(ENV_ID)
    env.reset(seed=seed)
    u = env.unwrapped
    start = cube_positions(env)
    np.testing.assert_allclose(start[:, 2], CUBE_HALF)
    assert np.linalg.norm(start[0, :2] - start[1, :2]) >= 0.1
    assert all(u.data.contact[i].dist > -1e-4 for i in range(u.data.ncon))
    env.step(np.zeros(4, dtype=np.float32))
    assert np.abs(cube_positions(env) - start).max() < 1e-3
