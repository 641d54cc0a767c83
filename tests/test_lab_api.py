"""Every lab id honours the Gymnasium API, the observation/control-mode contract and the bad-input rules."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import LAB_IDS
from gymnasium.utils.env_checker import check_env

from embodylab.envs.base import OBS_MODES

ALL_OBS_MODES = list(OBS_MODES)


@pytest.mark.parametrize("obs_mode", ALL_OBS_MODES)
@pytest.mark.parametrize("env_id", LAB_IDS)
def test_check_env_passes_for_every_obs_mode(env_id, obs_mode):
    env = gym.make(env_id, obs_mode=obs_mode, image_size=32)
    check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("control_mode", ["ee_delta_pos", "joint_delta_pos"])
@pytest.mark.parametrize("env_id", LAB_IDS)
def test_passive_checker_accepts_every_control_mode(env_id, control_mode):
    env = gym.make(env_id, control_mode=control_mode, disable_env_checker=False)
    env.reset(seed=0)
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(obs).all() and np.isfinite(reward)
        assert isinstance(info["is_success"], bool)
    env.close()


@pytest.mark.parametrize("env_id", LAB_IDS)
def test_goal_conditioned_observation_is_the_goal_dict(env_id):
    env = gym.make(env_id, goal_conditioned=True, reward_type="sparse")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=3)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    batch_achieved = np.repeat(obs["achieved_goal"][None], 7, axis=0)
    batch_desired = np.repeat(obs["desired_goal"][None], 7, axis=0)
    rewards = env.unwrapped.compute_reward(batch_achieved, batch_desired, [{}] * 7)
    assert rewards.shape == (7,)
    single = env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], {})
    assert np.allclose(rewards, single)
    assert set(np.unique(rewards)) <= {0.0, -1.0}


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
@pytest.mark.parametrize("env_id", LAB_IDS)
def test_compute_reward_is_vectorised_over_a_batch(env_id, reward_type):
    env = gym.make(env_id, goal_conditioned=True, reward_type=reward_type)
    obs, _ = env.reset(seed=0)
    desired = np.repeat(obs["desired_goal"][None].astype(np.float64), 32, axis=0)
    achieved = desired.copy()  # rows 0-7: the goal itself, which HER relabelling relies on reaching
    achieved[8:16] -= 0.5  # far from the goal on every axis (the drawer 0.5 m short of its target)
    achieved[16:] += np.random.default_rng(0).normal(0.0, 0.02, size=(16, desired.shape[1]))
    batch = env.unwrapped.compute_reward(achieved, desired, {})
    single = [env.unwrapped.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)]
    assert batch.shape == (32,)
    np.testing.assert_allclose(batch, single)
    np.testing.assert_array_equal(batch[:8], 0.0)
    if reward_type == "sparse":
        np.testing.assert_array_equal(batch[8:16], -1.0)
        assert set(np.unique(batch)) <= {-1.0, 0.0}
    else:
        assert (batch[8:16] < -0.4).all()


@pytest.mark.parametrize("env_id", LAB_IDS)
def test_same_seed_gives_identical_trajectories(env_id):
    def trajectory(seed):
        env = gym.make(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        observations, rewards = [obs], []
        for _ in range(200):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            observations.append(obs)
            rewards.append(reward)
            if terminated or truncated:
                obs, _ = env.reset()
                observations.append(obs)
        return np.array(observations), np.array(rewards)

    obs_a, rew_a = trajectory(11)
    obs_b, rew_b = trajectory(11)
    obs_c, _ = trajectory(12)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert not np.array_equal(obs_a, obs_c)


@pytest.mark.parametrize("env_id", LAB_IDS)
def test_reset_distribution_follows_the_seed(env_id):
    env = gym.make(env_id)

    def layout(seed):
        env.reset(seed=seed)
        return np.concatenate([env.unwrapped.object_states().features[:, :7].ravel(), env.unwrapped.goal])

    np.testing.assert_array_equal(layout(3), layout(3))
    assert not np.allclose(layout(3), layout(4))


@pytest.mark.parametrize("env_id", LAB_IDS)
def test_objects_start_at_rest_without_penetration(env_id):
    env = gym.make(env_id)
    for seed in range(3):
        env.reset(seed=seed)
        data = env.unwrapped.data
        assert all(data.contact[i].dist > -1e-3 for i in range(data.ncon))
        start = env.unwrapped.object_states().features[:, :3]
        hold = np.zeros(env.action_space.shape)
        hold[-1] = 1.0  # gripper stays open
        env.step(hold)
        moved = np.linalg.norm(env.unwrapped.object_states().features[:, :3] - start, axis=1)
        assert (moved < 1e-3).all()


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_action_raises_value_error_naming_entries(bad_value):
    env = gym.make("embodylab/LabPickPlace-v0")
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape)
    action[2] = bad_value
    with pytest.raises(ValueError, match=r"\[2\]"):
        env.step(action)
    # Nothing was lost: the env still steps after the rejected action.
    env.step(np.zeros(env.action_space.shape))


def test_huge_action_is_clipped_to_the_action_bounds():
    clipped, huge = gym.make("embodylab/LabReach-v0"), gym.make("embodylab/LabReach-v0")
    clipped.reset(seed=5)
    huge.reset(seed=5)
    obs_clipped, *_ = clipped.step(np.array([1.0, -1.0, 1.0, 1.0]))
    obs_huge, *_ = huge.step(np.array([1e6, -1e6, 1e6, 1e6]))
    np.testing.assert_array_equal(obs_clipped, obs_huge)


def test_wrong_action_shape_is_rejected():
    env = gym.make("embodylab/LabReach-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(7))


@pytest.mark.parametrize(
    "kwargs, valid",
    [
        ({"obs_mode": "lidar"}, "pointcloud"),
        ({"control_mode": "torque"}, "joint_delta_pos"),
        ({"reward_type": "shaped"}, "sparse"),
        ({"camera": "top"}, "wrist"),
    ],
)
def test_unknown_option_lists_the_valid_ones(kwargs, valid):
    with pytest.raises(ValueError, match=valid):
        gym.make("embodylab/LabReach-v0", **kwargs)


def test_unknown_env_id_lists_the_valid_ids():
    import embodylab

    with pytest.raises(ValueError, match="LabPickPlace-v0"):
        embodylab.make("embodylab/LabPickPlease-v0")


def test_physics_divergence_truncates_with_a_finite_observation():
    env = gym.make("embodylab/LabReach-v0")
    obs, _ = env.reset(seed=0)
    env.unwrapped.data.qvel[:] = 1e30
    obs, reward, terminated, truncated, info = env.step(np.zeros(4))
    assert truncated and not terminated
    assert "diverged" in info["physics_error"]
    assert np.isfinite(obs).all() and np.isfinite(reward)
    env.reset(seed=1)
    obs, *_ = env.step(np.zeros(4))
    assert np.isfinite(obs).all()


def test_physics_divergence_mid_episode_is_caught_too():
    env = gym.make("embodylab/LabPickPlace-v0")
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.zeros(4))
    env.unwrapped.data.qacc_warmstart[:] = np.nan
    env.unwrapped.data.qvel[:] = 1e30
    obs, reward, terminated, truncated, info = env.step(np.zeros(4))
    assert truncated and "diverged" in info["physics_error"]
    assert np.isfinite(obs).all()


def test_human_render_mode_fails_clearly_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="display"):
        gym.make("embodylab/LabReach-v0", render_mode="human")


@pytest.mark.parametrize("camera", ["front", "side", "wrist"])
def test_named_cameras_render_images(camera):
    env = gym.make("embodylab/LabReach-v0", obs_mode="rgb", camera=camera, image_size=32)
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].std() > 1.0


def test_segmentation_marks_objects_and_pointcloud_is_in_world_frame():
    env = gym.make("embodylab/LabPickPlace-v0", obs_mode="pointcloud", image_size=64)
    obs, _ = env.reset(seed=0)
    states = env.unwrapped.object_states()
    cube = obs["xyz"][obs["point_ids"] == 1]
    assert len(cube) > 0
    # Points labelled as the cube lie within its bounding sphere (world frame, metres).
    centre, half = states.features[0, :3], states.features[0, 13:16]
    assert np.linalg.norm(cube - centre, axis=1).max() < np.linalg.norm(half) + 0.01


def test_multi_input_policy_accepts_image_observations():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import SAC

    # SB3's NatureCNN needs images of at least 36 pixels.
    env = gym.make("embodylab/LabReach-v0", obs_mode="rgb", image_size=64)
    SAC("MultiInputPolicy", env, buffer_size=100, learning_starts=10, batch_size=8, seed=0).learn(20)


def test_her_replay_buffer_trains_on_goal_conditioned_env():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import SAC, HerReplayBuffer

    env = gym.make("embodylab/LabPush-v0", goal_conditioned=True, reward_type="sparse")
    model = SAC(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        learning_starts=120,
        batch_size=16,
        buffer_size=1000,
        seed=0,
    )
    model.learn(150)
