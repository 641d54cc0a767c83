"""State snapshots of the envs and training episodes that start from demonstration states."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minari")

from embodylab.envs.registry import make  # noqa: E402
from embodylab.policies import demo_resets  # noqa: E402
from embodylab.policies.config import (  # noqa: E402
    DEFAULT_DEMO_RESET_PROB,
    ConfigError,
    Her,
    Sac,
    SacDemos,
    TrainConfig,
    load_config,
)
from embodylab.policies.demo_resets import DemoStateResets, demonstration_states  # noqa: E402
from embodylab.policies.demos import DemoDatasetError, load_demo_episodes, record_demos  # noqa: E402
from embodylab.policies.rl import train  # noqa: E402

PUSH = "embodylab/LabPush-v0"


def push_env():
    return make(PUSH, goal_conditioned=True, reward_type="sparse")


@pytest.fixture(scope="module")
def push_demos(tmp_path_factory) -> Path:
    with push_env() as env:
        return record_demos(env, 2, tmp_path_factory.mktemp("push_demos"), seed=5)


def test_set_state_restores_a_snapshot_taken_in_another_episode():
    env = push_env()
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(15):
        obs, *_ = env.step(rng.uniform(-1, 1, 4))
    base = env.unwrapped
    snapshot, qpos, goal = base.get_state(), base.data.qpos.copy(), base.goal.copy()
    env.reset(seed=2)
    assert not np.allclose(base.goal, goal)

    restored, info = base.set_state(snapshot)

    np.testing.assert_array_equal(base.data.qpos, qpos)
    np.testing.assert_array_equal(restored["desired_goal"], goal.astype(np.float32))
    np.testing.assert_array_equal(restored["achieved_goal"], obs["achieved_goal"])
    assert info["goal_distance"] == pytest.approx(np.linalg.norm(obs["achieved_goal"] - goal), abs=1e-6)
    # Positions are exact; velocities derived by MuJoCo are recomputed, so they agree only roughly.
    np.testing.assert_allclose(restored["observation"], obs["observation"], atol=0.05)


def test_set_state_rejects_a_snapshot_of_the_wrong_size_or_with_nan():
    base = push_env().unwrapped
    state = base.get_state()
    with pytest.raises(ValueError, match=rf"\({len(state)},\)"):
        base.set_state(state[:-1])
    state[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        base.set_state(state)


def test_demonstration_states_replay_every_recorded_step(push_demos):
    env = push_env()
    episodes = load_demo_episodes(push_demos, env.observation_space, env.action_space)
    states = demonstration_states(env, push_demos)

    assert len(states) == sum(len(e["actions"]) for e in episodes)
    second = len(episodes[0]["actions"]) + 10  # step 10 of the second episode
    obs, _ = env.unwrapped.set_state(states[second])
    np.testing.assert_allclose(
        obs["achieved_goal"], episodes[1]["observations"]["achieved_goal"][10], atol=1e-6
    )
    np.testing.assert_allclose(obs["desired_goal"], episodes[1]["observations"]["desired_goal"][10])


def test_states_before_success_leave_out_the_holds_at_the_goal(push_demos):
    env = push_env()
    every, before = demonstration_states(env, push_demos), demonstration_states(env, push_demos, True)
    successes = [env.unwrapped.set_state(state)[1]["is_success"] for state in before]
    assert 0 < len(before) < len(every) and not any(successes)
    assert any(env.unwrapped.set_state(state)[1]["is_success"] for state in every)


def test_a_dataset_whose_replay_departs_from_its_recording_is_rejected(push_demos, monkeypatch):
    monkeypatch.setattr(demo_resets, "_episode_seeds", lambda path: [105, 106])  # not the recorded seeds
    with pytest.raises(DemoDatasetError, match="episode 0 .seed 105. departs"):
        demonstration_states(push_env(), push_demos)


def test_demo_state_resets_start_the_chosen_fraction_of_episodes_from_demonstrations(push_demos):
    env = push_env()
    states = demonstration_states(env, push_demos)
    cube_positions = {tuple(np.round(env.unwrapped.set_state(s)[0]["achieved_goal"], 5)) for s in states}
    wrapper = DemoStateResets(env, states, probability=0.5, seed=0)

    starts = [wrapper.reset() for _ in range(200)]

    from_demo = [info["demo_state_reset"] for _, info in starts]
    assert 0.4 < np.mean(from_demo) < 0.6
    for (obs, _), demo in zip(starts, from_demo, strict=True):
        assert (tuple(np.round(obs["achieved_goal"], 5)) in cube_positions) == demo
    # An episode started from a demonstration state runs on under the time limit as any other.
    obs, _ = next((o, i) for o, i in (wrapper.reset() for _ in range(20)) if i["demo_state_reset"])
    _, _, terminated, truncated, _ = wrapper.step(np.zeros(4))
    assert not (terminated or truncated)
    with pytest.raises(ValueError, match="probability"):
        DemoStateResets(env, states, probability=1.5)


def test_training_starts_episodes_from_demonstration_states_as_configured(push_demos, tmp_path):
    """A run's online episodes (3 of 100 steps) start from demonstration states with probability 1, and
    from the task's own start with 0."""
    from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint
    from embodylab.policies.factory import make_env, make_model

    with push_env() as env:
        demo_cubes = [
            env.unwrapped.set_state(s)[0]["achieved_goal"]
            for s in demonstration_states(env, push_demos, True)
        ]

    def episode_starts(reset_prob: float) -> tuple[TrainConfig, list[bool]]:
        # learning_starts beyond one 100-step episode: HER samples from whole episodes only.
        algo = Sac(
            net_arch=(16, 16),
            batch_size=32,
            learning_starts=150,
            gradient_steps=5,
            her=Her(),
            demos=SacDemos(dataset=str(push_demos), reset_prob=reset_prob),
        )
        run_dir = train(
            TrainConfig(
                env=PUSH,
                algo=algo,
                steps=300,
                eval_every=0,
                video=False,
                progress=False,
                out=str(tmp_path / str(reset_prob)),
            )
        )
        config = load_config(run_dir)
        model = make_model(config, make_env(config))
        load_checkpoint(model, latest_checkpoint(run_dir))
        starts = model.replay_buffer.observations["achieved_goal"][[0, 100, 200], 0]
        return config, [any(np.allclose(start, cube, atol=1e-6) for cube in demo_cubes) for start in starts]

    always, from_demos = episode_starts(1.0)
    assert from_demos == [True] * 3 and always.demos.reset_prob == 1.0
    assert episode_starts(0.0)[1] == [False] * 3
    # Unset, a run records the default.
    assert Sac(demos=SacDemos(record=2)).resolved(PUSH).demos.reset_prob == DEFAULT_DEMO_RESET_PROB


def test_bad_demo_reset_probabilities_are_rejected():
    with pytest.raises(ConfigError, match="reset_prob must lie in"):
        TrainConfig(env=PUSH, algo=Sac(her=Her(), demos=SacDemos(record=2, reset_prob=1.5))).validate()
