"""Stable-Baselines3's `check_env` passes on every lab and household id and obs mode, goal-conditioned or not;
only goal-conditioned envs have `compute_reward`, and their step reward is exactly it; actions must have the
action space's shape."""

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from embodylab.envs.base import OBS_MODES, REWARD_TYPES
from embodylab.envs.registry import HOUSEHOLD_ENVS, LAB_ENVS
from embodylab.skills.experts import make_expert

LAB_IDS = [entry.id for entry in LAB_ENVS]
HOUSEHOLD_IDS = [entry.id for entry in HOUSEHOLD_ENVS]
# Household scenes render ~4x slower than the lab's: one id in every obs mode, every id in state mode.
IDS_AND_OBS_MODES = [(env_id, mode) for env_id in LAB_IDS + HOUSEHOLD_IDS[:1] for mode in OBS_MODES] + [
    (env_id, "state") for env_id in HOUSEHOLD_IDS[1:]
]
IMAGE_SIZE = 16
HOUSEHOLD_EPISODE_STEPS = 40
"""steps of the household episodes below (their time limits are thousands of steps)"""


def _sb3_check(env: gym.Env) -> None:
    with warnings.catch_warnings():  # its advice on unbounded Boxes and image sizes, not failures
        warnings.simplefilter("ignore")
        check_env(env)


@pytest.mark.parametrize(("env_id", "obs_mode"), IDS_AND_OBS_MODES)
def test_sb3_check_env_passes_without_goal_conditioning(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=IMAGE_SIZE)
    _sb3_check(env)
    env.close()


@pytest.mark.parametrize(("env_id", "obs_mode"), IDS_AND_OBS_MODES)
def test_sb3_check_env_passes_on_the_goal_conditioned_unwrapped_env_with_dense_reward(env_id, obs_mode):
    # Unwrapped: SB3 calls `compute_reward` on the env it is given, and Gymnasium's wrappers do not forward it.
    env = gym.make(env_id, obs_mode=obs_mode, image_size=IMAGE_SIZE, goal_conditioned=True)
    _sb3_check(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id", LAB_IDS + HOUSEHOLD_IDS)
def test_sb3_check_env_passes_on_the_goal_conditioned_unwrapped_env_with_sparse_reward(env_id):
    _sb3_check(gym.make(env_id, goal_conditioned=True, reward_type="sparse").unwrapped)


@pytest.mark.parametrize("env_id", LAB_IDS + HOUSEHOLD_IDS)
def test_only_goal_conditioned_envs_have_compute_reward(env_id):
    assert not hasattr(gym.make(env_id).unwrapped, "compute_reward")
    goal_env = gym.make(env_id, goal_conditioned=True).unwrapped
    assert callable(goal_env.compute_reward)
    assert type(goal_env).__name__ == type(gym.make(env_id).unwrapped).__name__  # tools read the task's name


def _episode(env_id: str, reward_type: str) -> tuple[list[dict], list[float], list[dict], gym.Env]:
    """(observations after each step, rewards, infos, env) of one goal-conditioned episode, played by the
    task's scripted expert (lab, so that goals are reached) or by random actions (household)."""
    household = env_id in HOUSEHOLD_IDS
    env = gym.make(
        env_id,
        goal_conditioned=True,
        reward_type=reward_type,
        **({"max_episode_steps": HOUSEHOLD_EPISODE_STEPS} if household else {}),
    )
    env.action_space.seed(0)
    env.reset(seed=0)
    expert = None if household else make_expert(env)
    if expert is not None:
        expert.reset()
    observations, rewards, infos = [], [], []
    while True:
        action = env.action_space.sample() if expert is None else expert.act()
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return observations, rewards, infos, env


@pytest.mark.parametrize("reward_type", REWARD_TYPES)
@pytest.mark.parametrize("env_id", LAB_IDS + HOUSEHOLD_IDS)
def test_goal_conditioned_step_reward_is_exactly_compute_reward(env_id, reward_type):
    observations, rewards, infos, env = _episode(env_id, reward_type)
    compute_reward = env.unwrapped.compute_reward
    for obs, reward, info in zip(observations, rewards, infos, strict=True):
        assert type(reward) is float
        assert reward == compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
    # HER relabels a batch at once: the vectorised call gives the same rewards.
    achieved = np.stack([obs["achieved_goal"] for obs in observations])
    desired = np.stack([obs["desired_goal"] for obs in observations])
    assert np.array_equal(compute_reward(achieved, desired, infos), np.array(rewards, dtype=np.float32))


@pytest.mark.parametrize("env_id", [LAB_IDS[0], HOUSEHOLD_IDS[0]])
@pytest.mark.parametrize("batched", ["(1, n)", "(n, 1)"])
def test_batched_looking_action_is_rejected_naming_its_shape(env_id, batched):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    (n,) = env.action_space.shape
    shape = (1, n) if batched == "(1, n)" else (n, 1)
    with pytest.raises(ValueError, match=re.escape(f"action has shape {shape}; expected ({n},)")):
        env.step(np.zeros(shape, dtype=np.float32))


def test_action_of_another_shape_is_reported_with_the_shape_given():
    env = gym.make(LAB_IDS[0]).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=re.escape("action has shape (2, 4)")):
        env.step(np.zeros((2, 4)))
