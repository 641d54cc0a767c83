"""The expert registry: experts are found by env class, along its MRO."""

import gymnasium as gym
import pytest

from embodylab.envs.team import make
from embodylab.skills.experts import HouseholdOracle, TeamCarryExpert, expert_class, make_expert
from embodylab.skills.experts.lab import ClutterExpert, PushExpert


def test_make_expert_finds_the_expert_registered_for_the_env_class():
    assert type(make_expert(gym.make("embodylab/LabPush-v0"))) is PushExpert
    assert type(make_expert(gym.make("embodylab/LabClutter-v0"))) is ClutterExpert
    assert isinstance(make_expert(make("TeamCarry-v0", n_agents=2)), TeamCarryExpert)


def test_a_subclass_gets_the_expert_of_its_nearest_registered_base():
    from embodylab.envs.household.stow import HouseholdStowEnv

    assert expert_class(HouseholdStowEnv) is HouseholdOracle


def test_an_env_class_without_an_expert_is_an_error_naming_those_with_one():
    with pytest.raises(ValueError, match="no scripted expert for dict; experts exist for: .*LabPushEnv"):
        expert_class(dict)
