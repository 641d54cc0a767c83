"""Every lab and household env copies (`copy.deepcopy`) and pickles, wrapped by `gym.make` or not, before
and after `reset`; the copy steps exactly as the original from there on, and drives only its own physics."""

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest

from embodylab.envs.registry import HOUSEHOLD_ENVS, LAB_ENVS

ENV_IDS = [entry.id for entry in LAB_ENVS + HOUSEHOLD_ENVS]
COPIERS = {"deepcopy": copy.deepcopy, "pickle": lambda env: pickle.loads(pickle.dumps(env))}
STEPS = 8


def _actions(env: gym.Env, seed: int, steps: int = STEPS) -> list[np.ndarray]:
    """Full-scale random actions: every step moves the robot."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32) for _ in range(steps)]


def _assert_same(a, b) -> None:
    """Equal bit for bit: transitions, observations, infos (tuples and dicts of arrays, sets, scalars)."""
    if isinstance(a, tuple):
        assert type(b) is tuple and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert type(a) is type(b) and a == b


def _assert_same_steps(env: gym.Env, twin: gym.Env, actions: list[np.ndarray]) -> None:
    for action in actions:
        _assert_same(env.step(action), twin.step(action))


@pytest.fixture(scope="module", params=ENV_IDS)
def env_id(request):
    return request.param


@pytest.mark.parametrize("unwrapped", [False, True], ids=["wrapped", "unwrapped"])
@pytest.mark.parametrize("copier", list(COPIERS))
def test_copy_after_reset_steps_exactly_as_the_original(env_id, copier, unwrapped):
    env = gym.make(env_id)
    env.reset(seed=3)
    for action in _actions(env, seed=0, steps=3):  # mid-episode: velocities, contacts, warm start
        env.step(action)
    env = env.unwrapped if unwrapped else env
    twin = COPIERS[copier](env)
    _assert_same_steps(env, twin, _actions(env, seed=1))


@pytest.mark.parametrize("unwrapped", [False, True], ids=["wrapped", "unwrapped"])
@pytest.mark.parametrize("copier", list(COPIERS))
def test_copy_before_reset_resets_and_steps_exactly_as_the_original(env_id, copier, unwrapped):
    env = gym.make(env_id)
    env = env.unwrapped if unwrapped else env
    twin = COPIERS[copier](env)
    _assert_same(env.reset(seed=5), twin.reset(seed=5))
    _assert_same_steps(env, twin, _actions(env, seed=2))


@pytest.mark.parametrize("copier", list(COPIERS))
def test_copy_carries_the_random_generator_so_unseeded_resets_agree(env_id, copier):
    env = gym.make(env_id)
    env.reset(seed=7)
    twin = COPIERS[copier](env)
    for _ in range(2):  # each reset draws the episode from np_random
        _assert_same(env.reset(), twin.reset())


@pytest.mark.parametrize("copier", list(COPIERS))
def test_copy_drives_its_own_physics_not_the_originals(env_id, copier):
    env = gym.make(env_id)
    env.reset(seed=11)
    original = env.unwrapped.get_state()
    twin = COPIERS[copier](env)
    for action in _actions(env, seed=3):
        twin.step(action)
    moved = twin.unwrapped.get_state()
    assert not np.array_equal(moved, original), "the copy's actions did not move the copy"
    assert np.array_equal(env.unwrapped.get_state(), original), "the copy's actions moved the original"
    # The original, given other actions, moves on its own and leaves the copy where it was.
    for action in _actions(env, seed=4):
        env.step(action)
    assert not np.array_equal(env.unwrapped.get_state(), original)
    assert np.array_equal(twin.unwrapped.get_state(), moved)


@pytest.mark.parametrize("env_id", [LAB_ENVS[1].id, HOUSEHOLD_ENVS[0].id])
@pytest.mark.parametrize("copier", list(COPIERS))
def test_copy_of_an_env_that_has_rendered_renders_and_steps_as_the_original(env_id, copier):
    env = gym.make(env_id, obs_mode="rgbd", image_size=16, render_mode="rgb_array", render_size=16)
    env.reset(seed=2)
    env.render()  # both renderers exist now; the copy makes its own
    twin = COPIERS[copier](env)
    _assert_same_steps(env, twin, _actions(env, seed=5, steps=3))
    assert np.array_equal(env.render(), twin.render())
    twin.close()
    env.step(env.action_space.sample())  # closing the copy leaves the original's renderers working
    env.close()
