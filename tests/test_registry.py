"""The id registry: one source of task descriptions, and id resolution with namespace and version optional."""

import gymnasium as gym
import pytest

import embodylab  # noqa: F401
from embodylab.envs.registry import ALL_ENVS, is_team_id, resolve_env_id, short_id


@pytest.mark.parametrize("entry", ALL_ENVS, ids=lambda e: short_id(e.id))
def test_a_task_describes_itself_with_its_registry_entry(entry):
    env = gym.make(entry.id, disable_env_checker=True)
    assert env.unwrapped.description == entry.description
    assert "description" not in vars(type(env.unwrapped))  # no second copy on the class
    env.close()


def test_the_goal_conditioned_variant_keeps_its_tasks_description():
    env = gym.make("embodylab/LabPush-v0", goal_conditioned=True, disable_env_checker=True)
    assert env.unwrapped.description == "Push a cube across the table to a goal on the table."


@pytest.mark.parametrize("given", ["LabReach", "LabReach-v0", "embodylab/LabReach-v0", "embodylab/LabReach"])
def test_namespace_and_version_may_be_omitted(given):
    assert resolve_env_id(given) == "embodylab/LabReach-v0"


def test_an_unknown_id_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid ids: embodylab/LabReach-v0"):
        resolve_env_id("LabTeleport")


@pytest.mark.parametrize("given", ["team", "TeamCarry", "TeamCarry-v0", "embodylab/TeamCarry-v0"])
def test_the_team_env_has_its_aliases(given):
    assert is_team_id(given)
    assert not is_team_id("LabReach-v0")
