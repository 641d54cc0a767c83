"""make_vec: Gymnasium vector semantics, and threaded or multi-process stepping that reproduces separate envs
exactly."""

import gymnasium as gym
import numpy as np
import pytest

import embodylab


def _sequential_rollout(env_id, n, seed, actions):
    """n separate envs stepped one after another with NEXT_STEP auto-reset, as the vector API defines."""
    envs = [gym.make(env_id) for _ in range(n)]
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    done = np.zeros(n, dtype=bool)
    history = [obs]
    rewards = []
    for batch in actions:
        step_obs, step_rewards = [], []
        for i, env in enumerate(envs):
            if done[i]:
                o, _ = env.reset()
                r, d = 0.0, False
            else:
                o, r, terminated, truncated, _ = env.step(batch[i])
                d = terminated or truncated
            done[i] = d
            step_obs.append(o)
            step_rewards.append(r)
        history.append(np.stack(step_obs))
        rewards.append(step_rewards)
    return np.array(history), np.array(rewards)


@pytest.mark.parametrize("mode", ["threads", "processes", "sync"])
def test_vector_env_reproduces_separately_seeded_envs(mode):
    env_id, n, seed = "embodylab/LabReach-v0", 8, 3
    actions = np.random.default_rng(0).uniform(-1, 1, size=(120, n, 4))  # 50-step episodes: resets happen
    vec = embodylab.make_vec(env_id, n, mode=mode)
    obs, _ = vec.reset(seed=seed)
    history, rewards = [obs], []
    for batch in actions:
        obs, reward, _, _, _ = vec.step(batch)
        history.append(obs)
        rewards.append(reward)
    vec.close()
    expected_history, expected_rewards = _sequential_rollout(env_id, n, seed, actions)
    np.testing.assert_array_equal(np.array(history), expected_history)
    np.testing.assert_array_equal(np.array(rewards), expected_rewards)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_vector_env_reports_success_per_env_and_autoresets(mode):
    vec = embodylab.make_vec("embodylab/LabReach-v0", 3, mode=mode, num_workers=2)
    vec.reset(seed=0)
    for _ in range(50):
        _, _, terminated, truncated, info = vec.step(np.zeros((3, 4)))
    assert truncated.all() and not terminated.any()
    assert info["is_success"].shape == (3,) and info["_is_success"].all()
    _, reward, _, truncated, _ = vec.step(np.zeros((3, 4)))  # the auto-reset step
    assert not truncated.any() and (reward == 0).all()
    vec.close()


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_non_finite_actions_are_refused_before_any_env_moves(mode):
    zeros = np.zeros((4, 4))
    reference = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="sync")
    reference.reset(seed=0)
    expected = reference.step(zeros)[0]
    reference.close()

    vec = embodylab.make_vec("embodylab/LabReach-v0", 4, mode=mode, num_workers=2)
    vec.reset(seed=0)
    bad = zeros.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite entries at \(env, entry\) \[\(3, 0\)\]"):
        vec.step(bad)
    np.testing.assert_array_equal(vec.step(zeros)[0], expected)  # nothing moved; still serving
    vec.close()


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_vector_env_errors_propagate_from_workers(mode):
    vec = embodylab.make_vec("embodylab/LabReach-v0", 4, mode=mode, num_workers=2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="unknown reset option"):
        vec.reset(seed=0, options={"no_such_option": 1})
    assert vec.step(np.zeros((4, 4)))[0].shape == (4, vec.single_observation_space.shape[0])  # still serving
    vec.close()


@pytest.mark.parametrize("num_workers", [1, 3])
def test_process_vector_env_with_dict_observations_matches_threads(num_workers):
    kwargs = {"goal_conditioned": True, "reward_type": "sparse"}
    actions = np.random.default_rng(1).uniform(-1, 1, size=(60, 5, 4))
    results = {}
    for mode, workers in (("threads", 2), ("processes", num_workers)):
        vec = embodylab.make_vec("embodylab/LabPush-v0", 5, mode=mode, num_workers=workers, **kwargs)
        obs, _ = vec.reset(seed=7)
        trace = [obs["observation"]]
        for batch in actions:
            obs, reward, _, truncated, info = vec.step(batch)
            trace += [obs["observation"], obs["desired_goal"], reward[:, None], info["is_success"][:, None]]
        vec.close()
        results[mode] = trace
    for got, want in zip(results["processes"], results["threads"], strict=True):
        np.testing.assert_array_equal(got, want)


def test_process_vector_env_partial_reset_resets_only_masked_envs():
    vec = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="processes", num_workers=2)
    first, _ = vec.reset(seed=0)
    moved, *_ = vec.step(np.ones((4, 4)))
    mask = np.array([False, False, True, False])
    obs, info = vec.reset(seed=0, options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[2], first[2])
    np.testing.assert_array_equal(obs[[0, 1, 3]], moved[[0, 1, 3]])
    assert info["_is_success"].tolist() == mask.tolist()
    vec.close()


def test_unknown_vector_mode_lists_the_valid_ones():
    with pytest.raises(ValueError, match="threads"):
        embodylab.make_vec("embodylab/LabReach-v0", 2, mode="gpu")


def test_process_vector_env_wakes_a_sleeping_worker_and_reports_a_dead_one():
    import time

    vec = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="processes", num_workers=2)
    reference = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="sync")
    for env in (vec, reference):
        env.reset(seed=5)
    for _ in range(3):
        time.sleep(0.05)  # long enough for the worker to stop spinning and sleep on its pipe
        np.testing.assert_array_equal(
            vec.step(np.full((4, 4), 0.5))[0], reference.step(np.full((4, 4), 0.5))[0]
        )
    reference.close()
    vec._processes[0].kill()
    vec._processes[0].join()
    with pytest.raises(RuntimeError, match="died"):
        vec.step(np.zeros((4, 4)))
    vec.close()


def test_process_vector_env_without_shared_memory_steps_through_the_pipe(monkeypatch):
    from embodylab.vector import shared_memory

    monkeypatch.setattr(shared_memory, "STORES_STAY_ORDERED", False)  # what a non-x86 machine does
    actions = np.random.default_rng(2).uniform(-1, 1, size=(55, 3, 4))
    traces = []
    for mode in ("processes", "sync"):
        vec = embodylab.make_vec("embodylab/LabReach-v0", 3, mode=mode, num_workers=2)
        assert mode == "sync" or vec._shared is None
        observations, rewards = [vec.reset(seed=11)[0]], []
        for batch in actions:
            obs, reward, *_ = vec.step(batch)
            observations.append(obs)
            rewards.append(reward)
        vec.close()
        traces.append((np.array(observations), np.array(rewards)))
    for got, want in zip(*traces, strict=True):
        np.testing.assert_array_equal(got, want)


def test_process_vector_env_sends_infos_too_large_for_shared_memory_through_the_pipe(monkeypatch):
    from embodylab.vector import shared_memory

    monkeypatch.setattr(shared_memory, "INFO_CAPACITY", 1)  # no step's infos fit: every reply takes the pipe
    vec = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="processes", num_workers=2)
    reference = embodylab.make_vec("embodylab/LabReach-v0", 4, mode="sync")
    for env in (vec, reference):
        env.reset(seed=3)
    for action in np.random.default_rng(3).uniform(-1, 1, size=(5, 4, 4)):
        got, want = vec.step(action)[4], reference.step(action)[4]
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    for env in (vec, reference):
        env.close()
