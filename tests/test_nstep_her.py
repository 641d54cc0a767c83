"""Hindsight replay with n-step returns (`embodylab.policies.nstep_her`)."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3.her import HerReplayBuffer  # noqa: E402

from embodylab.policies.config import ConfigError, Her, Sac, SacDemos, TrainConfig  # noqa: E402
from embodylab.policies.factory import make_env, make_model  # noqa: E402
from embodylab.policies.nstep_her import DemoNStepHerReplayBuffer, NStepHerReplayBuffer  # noqa: E402

GAMMA = 0.9
SUCCESS = 0.04  # LabPush's success threshold, m


class _VecLike:
    """The VecEnv face SB3's HER buffer uses: env_method("compute_reward", ...)."""

    def __init__(self, env):
        self.env = env

    def env_method(self, name, *args, indices=None, **kwargs):
        return [getattr(self.env.unwrapped, name)(*args, **kwargs)]


@pytest.fixture(scope="module")
def env():
    env = make_env(TrainConfig(env="LabPush", algo=Sac(her=Her())))
    yield env
    env.close()


def _fill(buffer, env, episodes: int = 2, length: int = 8) -> np.ndarray:
    """Episodes whose cube steps 1 cm along x per transition, goal 5.5 cm ahead of its start: the stored
    reward is 0 from the transition that brings the cube within 4 cm of the goal on. Returns the goal."""
    obs, _ = env.reset(seed=0)
    start = np.array([0.0, 0.0, 0.025])
    goal = start + [0.055, 0.0, 0.0]
    for _ in range(episodes):
        for t in range(length):
            this = {k: v[None].copy() for k, v in obs.items()}
            following = {k: v[None].copy() for k, v in obs.items()}
            this["achieved_goal"][0] = start + [0.01 * t, 0, 0]
            following["achieved_goal"][0] = start + [0.01 * (t + 1), 0, 0]
            this["desired_goal"][0] = following["desired_goal"][0] = goal
            this["observation"][0, 0], following["observation"][0, 0] = t, t + 1  # marks the step
            reward = -float(np.linalg.norm(following["achieved_goal"][0] - goal) >= SUCCESS)
            last = t == length - 1
            buffer.add(
                this, following, np.full((1, 4), t / 10), np.array([reward]), np.array([last]),
                [{"TimeLimit.truncated": last}],
            )  # fmt: skip
    return goal


def _buffer(env, cls=NStepHerReplayBuffer, **kwargs):
    return cls(64, env.observation_space, env.action_space, env=_VecLike(env), **kwargs)


def test_one_step_is_sb3_hindsight_replay(env):
    ours, theirs = _buffer(env, n_step=1, gamma=GAMMA), _buffer(env, HerReplayBuffer)
    _fill(ours, env), _fill(theirs, env)
    np.random.seed(3)
    a = ours.sample(48)
    np.random.seed(3)
    b = theirs.sample(48)
    for key in a.observations:
        np.testing.assert_array_equal(a.observations[key].numpy(), b.observations[key].numpy())
        np.testing.assert_array_equal(a.next_observations[key].numpy(), b.next_observations[key].numpy())
    np.testing.assert_array_equal(a.rewards.numpy(), b.rewards.numpy())
    np.testing.assert_array_equal(a.dones.numpy(), b.dones.numpy())
    np.testing.assert_allclose(a.discounts.numpy(), GAMMA)


def test_returns_sum_n_rewards_and_stop_at_the_episode_end(env):
    buffer = _buffer(env, n_step=3, gamma=GAMMA, n_sampled_goal=4)
    goal = _fill(buffer, env)
    np.random.seed(0)
    samples = buffer.sample(256)
    steps = samples.observations["observation"][:, 0].numpy().round().astype(int)
    after = samples.next_observations["observation"][:, 0].numpy().round().astype(int)
    goals = samples.observations["desired_goal"].numpy()
    relabelled = ~np.isclose(goals, goal).all(axis=1)
    assert relabelled.any() and (~relabelled).any()
    np.testing.assert_array_equal(after, np.minimum(steps + 3, 8))  # bootstraps n steps on, or at the end
    np.testing.assert_allclose(samples.discounts.numpy()[:, 0], GAMMA ** (after - steps), rtol=1e-6)
    np.testing.assert_array_equal(samples.next_observations["desired_goal"].numpy(), goals)
    assert not samples.dones.numpy().any()  # time limits, not terminations
    for t, t_next, g, ret in zip(steps, after, goals, samples.rewards.numpy()[:, 0], strict=True):
        cube = np.array([0.0, 0.0, 0.025]) + [[0.01 * (k + 1), 0, 0] for k in range(t, t_next)]
        rewards = -(np.linalg.norm(cube - g, axis=1) >= SUCCESS).astype(float)
        assert ret == pytest.approx(float((rewards * GAMMA ** np.arange(len(rewards))).sum()), abs=1e-6)


def test_bad_n_step_raises(env):
    with pytest.raises(ValueError, match="n_step"):
        _buffer(env, n_step=0)
    for bad in (
        TrainConfig(algo=Sac(her=Her(), n_step_return=0)),
        TrainConfig(algo=Sac(her=Her(energy_priority=True), n_step_return=3)),
        TrainConfig(algo=Sac(demos=SacDemos(record=2), n_step_return=3)),
    ):
        with pytest.raises(ConfigError, match="n_step_return"):
            bad.validate()


def test_a_run_with_demonstrations_trains_on_n_step_targets(tmp_path):
    from embodylab.policies.demos import record_demos

    with make_env(TrainConfig(env="LabReach", algo=Sac(her=Her()))) as env:
        dataset = record_demos(env, 1, tmp_path / "demos")
    demos = SacDemos(dataset=str(dataset))
    algo = Sac(net_arch=(16, 16), batch_size=32, learning_starts=100, n_step_return=3, her=Her(), demos=demos)
    config = TrainConfig(env="LabReach", algo=algo)
    model = make_model(config, make_env(config))
    assert isinstance(model.replay_buffer, DemoNStepHerReplayBuffer)
    assert isinstance(model.replay_buffer.demos, NStepHerReplayBuffer)
    model.learn(150)
    samples = model.replay_buffer.sample(32)
    assert samples.discounts.shape == (32, 1)
    assert (samples.discounts.numpy() <= model.gamma + 1e-6).all()
    assert np.isclose(samples.discounts.numpy(), model.gamma**3).any()


def test_plain_replay_uses_sb3s_n_step_buffer():
    from stable_baselines3.common.buffers import NStepReplayBuffer

    config = TrainConfig(env="LabReach", algo=Sac(net_arch=(16, 16), n_step_return=3))
    assert isinstance(make_model(config, make_env(config)).replay_buffer, NStepReplayBuffer)
