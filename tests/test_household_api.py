"""Every household id honours the Gymnasium API, the obs-mode contract, determinism and the bad-input rules."""

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from embodylab.envs.base import OBS_MODES
from embodylab.envs.registry import HOUSEHOLD_ENVS

HOUSEHOLD_IDS = [entry.id for entry in HOUSEHOLD_ENVS]


@pytest.mark.parametrize("obs_mode", list(OBS_MODES))
@pytest.mark.parametrize("env_id", HOUSEHOLD_IDS)
def test_check_env_passes_for_every_obs_mode(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=32)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("kwargs", [{"control_mode": "joint_delta_pos"}, {"goal_conditioned": True}])
def test_check_env_passes_for_joint_control_and_goal_dicts(kwargs):
    env = gym.make("embodylab/HouseholdTidy-v0", **kwargs)
    check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", HOUSEHOLD_IDS)
def test_info_carries_predicates_goal_and_instruction(env_id):
    env = gym.make(env_id)
    _, info = env.reset(seed=4)
    assert isinstance(info["predicates"], set) and all(isinstance(a, tuple) for a in info["predicates"])
    assert info["goal"] and not info["goal"] <= info["predicates"] and info["is_success"] is False
    assert info["instruction"].startswith(("put", "tidy"))
    assert info["goal_distance"] == len(info["goal"] - info["predicates"])
    _, _, _, _, info = env.step(env.action_space.sample())
    assert "predicates" in info
    graph = json.loads(json.dumps(env.unwrapped.scene_graph()))
    assert {"rooms", "fixtures", "objects", "robot", "relations"} <= set(graph)
    assert len(graph["objects"]) == 8 and all(o["phrase"] for o in graph["objects"])


def test_same_seed_gives_identical_trajectories_and_other_seeds_differ():
    def trajectory(seed):
        env = gym.make("embodylab/HouseholdPickPlace-v0")
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        observations = [obs]
        for _ in range(40):
            obs, *_ = env.step(env.action_space.sample())
            observations.append(obs)
        return np.array(observations), info["instruction"]

    a, instruction_a = trajectory(7)
    b, instruction_b = trajectory(7)
    c, _ = trajectory(8)
    np.testing.assert_array_equal(a, b)
    assert instruction_a == instruction_b
    assert not np.array_equal(a, c)


def test_apartment_seed_fixes_the_layout_across_episodes():
    env = gym.make("embodylab/HouseholdStow-v0", apartment_seed=5)
    env.reset(seed=1)
    first = env.unwrapped.apartment
    env.reset(seed=2)
    assert env.unwrapped.apartment is first
    env.reset(seed=3, options={"apartment_seed": 6})
    assert env.unwrapped.apartment.seed == 6


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_non_finite_action_raises_naming_the_entry(bad_value):
    env = gym.make("embodylab/HouseholdPickPlace-v0")
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape)
    action[5] = bad_value
    with pytest.raises(ValueError, match=r"\[5\]"):
        env.step(action)
    env.step(np.zeros(env.action_space.shape))


def test_huge_action_is_clipped_and_wrong_shape_rejected():
    clipped, huge = gym.make("embodylab/HouseholdStow-v0"), gym.make("embodylab/HouseholdStow-v0")
    clipped.reset(seed=2)
    huge.reset(seed=2)
    a, *_ = clipped.step(np.ones(9))
    b, *_ = huge.step(np.full(9, 1e6))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="shape"):
        clipped.step(np.zeros(4))


@pytest.mark.parametrize(
    "kwargs, valid", [({"camera": "front"}, "overhead"), ({"obs_mode": "lidar"}, "pointcloud")]
)
def test_unknown_options_list_the_valid_ones(kwargs, valid):
    with pytest.raises(ValueError, match=valid):
        gym.make("embodylab/HouseholdTidy-v0", **kwargs)


def test_bad_apartment_seeds_are_rejected():
    with pytest.raises(ValueError, match="apartment_seed"):
        gym.make("embodylab/HouseholdTidy-v0", apartment_seed=-1)
    env = gym.make("embodylab/HouseholdTidy-v0")
    with pytest.raises(ValueError, match="apartment_seed"):
        env.reset(options={"apartment_seed": "kitchen"})
    with pytest.raises(ValueError, match="apartment_seed"):
        env.reset(options={"flat": 1})


def test_base_walls_stop_the_robot():
    env = gym.make("embodylab/HouseholdPickPlace-v0")
    env.reset(seed=0)
    u = env.unwrapped
    action = np.zeros(9)
    action[0] = 1.0  # full speed ahead, whatever is there
    for _ in range(300):
        env.step(action)
    x, y, _ = u.base.pose
    length, depth = u.apartment.size
    half = np.hypot(*u.apartment.scene.robot.mobile_base.half_extents[:2])
    assert -0.05 + half * 0.5 < x < length - half * 0.5 + 0.05
    assert 0.0 < y < depth


def test_oracle_policy_is_refused_for_lab_ids(capsys, tmp_path):
    from embodylab.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["render", "LabReach-v0", "--policy", "oracle", "--out", str(tmp_path / "r.mp4")])
    assert exit_info.value.code == 2
    assert "household" in capsys.readouterr().err


def test_a_cached_apartment_replays_exactly_like_a_freshly_compiled_one():
    actions = np.random.default_rng(4).uniform(-1, 1, size=(15, 9))

    def rollout(env, seed):
        obs, _ = env.reset(seed=seed, options={"apartment_seed": 5})
        return [obs, *(env.step(a)[0] for a in actions)]

    env = gym.make("embodylab/HouseholdPickPlace-v0")
    first = rollout(env, 1)
    model = env.unwrapped.model
    env.reset(seed=2, options={"apartment_seed": 6})  # another apartment, then back to the cached one
    again = rollout(env, 1)
    assert env.unwrapped.model is model  # not recompiled
    fresh = rollout(gym.make("embodylab/HouseholdPickPlace-v0"), 1)
    for a, b, c in zip(first, again, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
