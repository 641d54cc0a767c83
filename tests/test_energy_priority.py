"""Energy-based prioritisation of hindsight replay (`embodylab.policies.energy_priority`)."""

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from embodylab.policies.config import Her, Sac, SacDemos, TrainConfig  # noqa: E402
from embodylab.policies.energy_priority import (  # noqa: E402
    CONTROL_PERIOD,
    ENERGY_CLIP,
    ENERGY_SHARE,
    EnergyHerReplayBuffer,
    trajectory_energy,
)
from embodylab.policies.factory import make_env, make_model  # noqa: E402


def test_energy_of_resting_pushed_and_lifted_objects():
    rest = np.tile([0.1, 0.0, 0.025], (11, 1))
    assert trajectory_energy(rest[:-1], rest[1:]) == 0.0
    pushed = rest.copy()
    pushed[5:, 0] += 0.004 * np.arange(6)  # 0.1 m/s from step 5 on
    assert trajectory_energy(pushed[:-1], pushed[1:]) == pytest.approx(0.5 * (0.004 / CONTROL_PERIOD) ** 2)
    lifted = rest.copy()
    lifted[3:, 2] += 0.2  # one jump of 20 cm: clipped at one step's ENERGY_CLIP
    assert trajectory_energy(lifted[:-1], lifted[1:]) == pytest.approx(ENERGY_CLIP, rel=1e-6)


@pytest.fixture
def buffer():
    env = make_env(TrainConfig(env="LabPush", algo=Sac(her=Her())))
    buffer = EnergyHerReplayBuffer(400, env.observation_space, env.action_space, env=_VecLike(env))
    return env, buffer


class _VecLike:
    """The VecEnv face SB3's HER buffer uses: env_method("compute_reward", ...)."""

    def __init__(self, env):
        self.env = env

    def env_method(self, name, *args, indices=None, **kwargs):
        return [getattr(self.env.unwrapped, name)(*args, **kwargs)]


def _add_episode(buffer, env, cube_path: np.ndarray) -> None:
    obs, _ = env.reset(seed=0)
    for t in range(len(cube_path) - 1):
        this = {k: v[None].copy() for k, v in obs.items()}
        following = {k: v[None].copy() for k, v in obs.items()}
        this["achieved_goal"][0], following["achieved_goal"][0] = cube_path[t], cube_path[t + 1]
        last = t == len(cube_path) - 2
        buffer.add(
            this,
            following,
            np.zeros((1, 4)),
            np.array([-1.0]),
            np.array([last]),
            [{"TimeLimit.truncated": last}],
        )


def test_replay_draws_the_episodes_in_which_the_object_moved(buffer):
    env, buffer = buffer
    rest = np.tile([0.0, 0.0, 0.025], (51, 1))
    _add_episode(buffer, env, rest)
    np.random.seed(0)
    assert set(buffer._draw(200).tolist()) == set(range(50))  # nothing moved: uniform over the episode
    pushed = rest.copy()
    pushed[20:, 0] += 0.003 * np.arange(31)
    _add_episode(buffer, env, pushed)
    _add_episode(buffer, env, rest)
    drawn = buffer._draw(600)
    pushing = (drawn >= 50) & (drawn < 100)
    # half by energy (the pushing episode only), half uniformly over the three episodes
    assert pushing.mean() == pytest.approx(ENERGY_SHARE + (1 - ENERGY_SHARE) / 3, abs=0.06)
    assert pushing[:300].mean() == pytest.approx(pushing[300:].mean(), abs=0.12)  # shuffled
    assert len(set(drawn[pushing].tolist())) > 40
    samples = buffer.sample(64)  # HER relabels the drawn transitions as usual
    assert samples.observations["desired_goal"].shape == (64, 3)


def test_a_run_with_demonstrations_draws_its_online_half_by_energy(tmp_path):
    from embodylab.policies.demos import record_demos
    from embodylab.policies.energy_priority import DemoEnergyHerReplayBuffer

    base = TrainConfig(env="LabReach", algo=Sac(her=Her()))
    with make_env(base) as env:
        dataset = record_demos(env, 1, tmp_path / "demos")
    her, demos = Her(energy_priority=True), SacDemos(dataset=str(dataset))
    algo = Sac(net_arch=(16, 16), batch_size=32, learning_starts=100, her=her, demos=demos)
    config = TrainConfig(env="LabReach", algo=algo)
    model = make_model(config, make_env(config))
    assert isinstance(model.replay_buffer, DemoEnergyHerReplayBuffer)
    model.learn(150)
    assert model.replay_buffer.sample(32).actions.shape == (32, 4)
