"""The household skills work on the physics: doors and drawers open and close, and the oracle solves tasks."""

import gymnasium as gym
import pytest

from embodylab.skills import household
from embodylab.skills.experts import rollout
from embodylab.skills.household import run_oracle


@pytest.mark.parametrize("part", ["chest_of_drawers/top_drawer", "cabinet/left_door"])
def test_open_and_close_move_the_joint_through_its_handle(part):
    env = gym.make("embodylab/HouseholdStow-v0")
    env.reset(seed=3)
    robot = household.Robot(env)
    assert household.navigate(env, part.split("/")[0], robot=robot).success
    opened = household.open_part(env, part, robot=robot)
    assert opened.success, opened.reason
    assert ("open", part) in env.unwrapped.predicates()
    closed = household.close_part(env, part, robot=robot)
    assert closed.success, closed.reason
    assert ("closed", part) in env.unwrapped.predicates()


def test_skills_report_bad_arguments_as_failures():
    env = gym.make("embodylab/HouseholdPickPlace-v0")
    env.reset(seed=0)
    assert "unknown fixture" in household.navigate(env, "garage").reason
    assert "unknown object" in household.pick(env, "purple_unicorn").reason
    assert "not holding" in household.place(env, env.unwrapped.apartment.objects[0].name, "table").reason
    assert "unknown door or drawer" in household.open_part(env, "fridge/lid").reason


@pytest.mark.parametrize(
    "env_id, seed", [("embodylab/HouseholdPickPlace-v0", 20), ("embodylab/HouseholdStow-v0", 21)]
)
def test_oracle_plan_executed_in_physics_reaches_the_goal(env_id, seed):
    env = gym.make(env_id)
    _, info = env.reset(seed=seed)
    report = run_oracle(env)
    assert report.success, report.failures
    assert info["goal"] <= env.unwrapped.predicates()
    assert report.skill_steps >= 4 and report.plan[0].startswith("navigate")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_rollout_solves_tidy_episodes(seed):
    assert rollout(gym.make("embodylab/HouseholdTidy-v0"), seed)
