"""TeamCarry-v0 copies: `copy.deepcopy` and a pickle round trip give an env that steps exactly as the
original from there on, and that is independent of it."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from embodylab.envs.team import TeamCarryEnv, make
from embodylab.skills.experts import TeamCarryExpert

COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda env: pickle.loads(pickle.dumps(env))}


def _actions(env: TeamCarryEnv, steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Random actions `steps` x {agent: [5]} with grip mostly on, so that copies grip and lift too."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-1, 1, (steps, env.n_agents, 5)).astype(np.float32)
    raw[..., 4] = np.abs(raw[..., 4])
    return [dict(zip(env.possible_agents, a, strict=True)) for a in raw]


def _assert_same_step(a, b) -> None:
    """Two `step` results (observations, rewards, terminations, truncations, infos) are equal."""
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for agent in x:
            np.testing.assert_array_equal(x[agent], y[agent], err_msg=agent)


def _scripted_steps(env: TeamCarryEnv, steps: int) -> None:
    """Advances `env` by the scripted team until it grips (or `steps` control steps)."""
    expert = TeamCarryExpert(env)
    expert.reset()
    while env.agents and env.steps < steps and not env.gripping.all():
        env.step(expert.act())


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("n_agents", [2, 5])
def test_copy_after_reset_steps_like_the_original(n_agents, how):
    env = make("TeamCarry-v0", n_agents=n_agents, max_episode_steps=200)
    env.reset(seed=1)
    _scripted_steps(env, steps=150)  # mid-episode, hands on the handles
    twin = COPIES[how](env)
    np.testing.assert_array_equal(twin.state(), env.state())
    for actions in _actions(env, 30, seed=n_agents):
        _assert_same_step(twin.step(actions), env.step(actions))
    np.testing.assert_array_equal(twin.state(), env.state())
    assert twin.metrics() == env.metrics()


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("n_agents", [2, 5])
def test_copy_before_reset_resets_and_steps_like_the_original(n_agents, how):
    env = make("TeamCarry-v0", n_agents=n_agents)
    twin = COPIES[how](env)
    assert twin.model is None
    obs, infos = twin.reset(seed=3)
    obs_ref, infos_ref = env.reset(seed=3)
    _assert_same_step((obs, infos), (obs_ref, infos_ref))
    for actions in _actions(env, 20, seed=0):
        _assert_same_step(twin.step(actions), env.step(actions))


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("n_agents", [2, 5])
def test_copy_keeps_its_generator_and_scene_cache(n_agents, how):
    env = make("TeamCarry-v0", n_agents=n_agents)
    for seed in (0, 1):  # two topologies compiled, the second one in use
        env.reset(seed=seed)
    twin = COPIES[how](env)
    assert len(twin._scenes) == len(env._scenes)
    for _ in range(3):  # unseeded resets draw the same layouts from the copied generator
        obs, _ = twin.reset()
        obs_ref, _ = env.reset()
        _assert_same_step((obs,), (obs_ref,))
        for actions in _actions(env, 5, seed=1):
            _assert_same_step(twin.step(actions), env.step(actions))


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("n_agents", [2, 5])
def test_stepping_a_copy_moves_the_copy_and_not_the_original(n_agents, how):
    env = make("TeamCarry-v0", n_agents=n_agents)
    env.reset(seed=0)
    before = env.state()
    twin = COPIES[how](env)
    forward = {a: np.array([1.0, 0.0, 0.0, 0.0, -1.0], np.float32) for a in env.possible_agents}
    for _ in range(5):
        twin.step(forward)
    np.testing.assert_array_equal(env.state(), before)
    assert env.steps == 0
    moved = np.linalg.norm(twin.base_poses()[:, :2] - env.base_poses()[:, :2], axis=1)
    assert (moved > 0.05).all(), f"the copy's agents did not follow their actions: moved {moved} m"
    obs_twin, *_ = twin.step(forward)
    obs_env, *_ = env.step(forward)
    assert not np.array_equal(obs_twin["agent_0"], obs_env["agent_0"])


def test_copy_of_a_rendering_env_renders_its_own_state():
    env = make("TeamCarry-v0", n_agents=2, render_mode="rgb_array", render_size=48)
    env.reset(seed=0)
    frame = env.render()
    twin = copy.deepcopy(env)
    np.testing.assert_array_equal(twin.render(), frame)
    env.close()
    twin.close()
