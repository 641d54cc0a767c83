import gymnasium as gym
import numpy as np
import pytest

from embodylab.envs.lab.pick_place import AIR_GOAL_HEIGHT, CUBE_HALF, MIN_GOAL_DISTANCE
from embodylab.skills.experts import rollout

ENV_ID = "embodylab/LabPickPlace-v0"


@pytest.fixture(scope="module")
def env():
    return gym.make(ENV_ID)


def test_expert_places_the_cube_at_the_goal_on_nine_of_ten_seeds(env):
    assert sum(rollout(env, seed) for seed in range(10)) >= 9


def test_goals_are_on_the_table_or_out_of_reach_of_a_pushed_cube(env):
    in_air = []
    for seed in range(40):
        env.reset(seed=seed)
        cube, goal = env.unwrapped.sim.object_position("cube"), env.unwrapped.goal
        assert np.linalg.norm(goal[:2] - cube[:2]) >= MIN_GOAL_DISTANCE
        in_air.append(goal[2] > CUBE_HALF)
        if in_air[-1]:
            assert AIR_GOAL_HEIGHT[0] <= goal[2] <= AIR_GOAL_HEIGHT[1]
            # A cube resting anywhere on the table is farther than the success threshold from the goal.
            assert goal[2] - CUBE_HALF > env.unwrapped.success_threshold
        else:
            assert goal[2] == pytest.approx(CUBE_HALF)
    assert 0.25 < np.mean(in_air) < 0.75
