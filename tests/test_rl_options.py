"""SAC options for learning from demonstrations: LayerNorm critics (`Sac.critic_layer_norm`) and
the |Q|-scaled actor term (`SacDemos.bc_q_alpha`)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minari")

from torch import nn  # noqa: E402

from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from embodylab.policies.config import ALGORITHMS, ConfigError, Her, Sac, SacDemos, TrainConfig, load_config  # noqa: E402
from embodylab.policies.demos import record_demos  # noqa: E402
from embodylab.policies.factory import make_env, make_model  # noqa: E402
from embodylab.policies.rl import train  # noqa: E402


def test_layer_norm_critics_train_and_reload_with_their_norms(tmp_path):
    algo = Sac(net_arch=(16, 16), learning_starts=100, gradient_steps=5, critic_layer_norm=True, her=Her())
    config = TrainConfig(
        env="LabReach",
        algo=algo,
        steps=300,
        eval_every=0,
        video=False,
        progress=False,
        out=str(tmp_path / "ln"),
    )
    run_dir = train(config)
    model = make_model(load_config(run_dir), make_env(config))
    load_checkpoint(model, latest_checkpoint(run_dir))
    for critic in (model.policy.critic, model.policy.critic_target):
        for q_net in critic.q_networks:
            norms = [m for m in q_net if isinstance(m, nn.LayerNorm)]
            assert [n.normalized_shape for n in norms] == [(16,), (16,)]
    # The critic's optimiser updates the norms' gains too; the actor has none.
    optimised = {id(p) for group in model.critic.optimizer.param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in model.policy.critic.qf0[1].parameters())
    assert not any(isinstance(m, nn.LayerNorm) for m in model.policy.actor.modules())
    # Trained: the loaded norms are not at their initial gain of 1.
    assert (model.policy.critic.qf0[1].weight != 1.0).any()


def test_q_scaled_bc_still_clones_the_demonstrations(tmp_path):
    """With `bc_q_alpha` the SAC term is in units of mean |Q|, and the policy still moves towards the
    demonstrated actions."""
    from embodylab.policies.bc import DemoSAC

    base = TrainConfig(
        env="LabReach", algo=Sac(her=Her()), steps=1000, eval_every=0, video=False, progress=False
    )
    with make_env(base) as env:
        dataset = record_demos(env, 3, tmp_path / "demos")

    def train_briefly(bc_weight: float, alpha: float | None) -> float:
        demos = SacDemos(dataset=str(dataset), bc_weight=bc_weight, bc_q_alpha=alpha)
        algo = Sac(
            net_arch=(16, 16), batch_size=32, learning_starts=50, gradient_steps=300, her=Her(), demos=demos
        )
        config = replace(base, out=str(tmp_path / f"{bc_weight}_{alpha}"), algo=algo)
        model = make_model(config, make_env(config))
        model.learn(100)
        assert isinstance(model, DemoSAC) == (bc_weight > 0)
        demos = model.replay_buffer.demos
        n = demos.size()
        actions, _ = model.predict({k: v[:n, 0] for k, v in demos.observations.items()}, deterministic=True)
        return float(np.abs(actions - demos.actions[:n, 0]).mean())

    assert train_briefly(1.0, 2.5) < 0.8 * train_briefly(0.0, None)


def test_non_positive_bc_q_alpha_is_rejected():
    with pytest.raises(ConfigError, match="bc_q_alpha must be positive"):
        TrainConfig(algo=Sac(her=Her(), demos=SacDemos(record=2, bc_q_alpha=0.0))).validate()


# ---- uniformly random exploration ---------------------------------------------------------------------
TINY = dict(net_arch=(16, 16), batch_size=32, learning_starts=100, gradient_steps=5)


def tiny_config(out: Path, algo: str = "sac", steps: int = 300, **fields) -> TrainConfig:
    """A short run of `algo` with HER, tiny networks and the algorithm's `fields`."""
    algorithm = ALGORITHMS[algo](**{**TINY, **fields}, her=Her())
    return TrainConfig(
        env="LabReach", algo=algorithm, steps=steps, eval_every=0, video=False, progress=False, out=str(out)
    )


def _buffer_actions(run_dir: Path) -> np.ndarray:
    with np.load(latest_checkpoint(run_dir) / "buffer.npz") as data:
        return data["actions"][:, 0]


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_random_actions_are_executed_and_stored_and_repeat_with_the_seed(tmp_path, algo):
    config = lambda name, p: tiny_config(  # noqa: E731
        tmp_path / name,
        algo=algo,
        steps=400,
        learning_starts=0,
        random_action_prob=p,
    )
    # p = 1: every stored action is uniform on [-1, 1] (the policy's own are tanh-squashed or noised)
    uniform = _buffer_actions(train(config("all", 1.0)))[:400]
    assert abs(uniform.mean()) < 0.06 and abs(uniform.var() - 1 / 3) < 0.04
    assert (np.abs(uniform) > 0.9).mean() == pytest.approx(0.1, abs=0.03)
    # p = 0.5: the run repeats with its seed and differs from the run without random actions
    first, again = (_buffer_actions(train(config(name, 0.5)))[:400] for name in ("half", "half_again"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, _buffer_actions(train(config("none", 0.0)))[:400])


def test_stored_actions_are_the_executed_ones(tmp_path):
    config = tiny_config(tmp_path / "run", learning_starts=0, random_action_prob=0.5)
    executed = []
    env = make_env(config)
    step = env.step
    env.step = lambda action: (executed.append(np.array(action, dtype=np.float32)), step(action))[1]
    model = make_model(config, env)
    model.learn(200)
    np.testing.assert_allclose(model.replay_buffer.actions[:200, 0], np.array(executed), atol=1e-6)


@pytest.mark.parametrize(("algo", "p"), [("td3", 1.5), ("sac", -0.1)])
def test_bad_random_action_settings_are_rejected(algo, p):
    config = TrainConfig(algo=ALGORITHMS[algo](random_action_prob=p))
    with pytest.raises(ConfigError, match="random_action_prob"):
        config.validate()


# ---- action penalty -----------------------------------------------------------------------------------
def test_the_action_penalty_shrinks_the_policy_actions(tmp_path):
    sizes = {}
    for weight in (0.0, 20.0):
        config = tiny_config(
            tmp_path / f"l2_{weight}",
            steps=600,
            gradient_steps=50,
            action_l2=weight,
        )
        run_dir = train(config)
        env = make_env(config)
        model = make_model(load_config(run_dir), env)
        load_checkpoint(model, latest_checkpoint(run_dir), restore_buffer=False)
        obs, _ = env.reset(seed=0)
        actions = []
        for _ in range(50):
            action, _ = model.predict(obs, deterministic=True)
            actions.append(action)
            obs, *_ = env.step(action)
        sizes[weight] = float(np.abs(np.array(actions)).mean())
    assert sizes[20.0] < 0.6 * sizes[0.0], sizes


def test_a_negative_action_penalty_is_rejected():
    with pytest.raises(ConfigError, match="action_l2"):
        TrainConfig(algo=Sac(action_l2=-1.0)).validate()


# ---- entropy coefficient ------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["sac", "tqc"])
def test_a_fixed_entropy_coefficient_reaches_the_algorithm_and_stays(tmp_path, algo):
    config = tiny_config(tmp_path / algo, algo=algo, learning_starts=0, ent_coef=0.05)
    model = make_model(config, make_env(config))
    model.learn(100)
    assert model.ent_coef_optimizer is None
    assert float(model.ent_coef_tensor) == pytest.approx(0.05)


@pytest.mark.parametrize(("algo", "value"), [("tqc", 0.0), ("sac", 0.0), ("sac", -1.0)])
def test_bad_entropy_coefficients_are_rejected(algo, value):
    config = TrainConfig(algo=ALGORITHMS[algo](ent_coef=value))
    with pytest.raises(ConfigError, match="ent_coef"):
        config.validate()


def test_make_model_refuses_a_value_out_of_range(tmp_path):
    """A non-positive entropy coefficient raises instead of reaching SB3, also without train()."""
    config = tiny_config(tmp_path, ent_coef=0.0)
    with pytest.raises(ConfigError, match="ent_coef"):
        make_model(config, make_env(config))
