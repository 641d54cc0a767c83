"""SAC options for learning from demonstrations: LayerNorm critics (`AlgoConfig.critic_layer_norm`) and
the |Q|-scaled actor term (`AlgoConfig.bc_q_alpha`)."""

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minari")

from torch import nn  # noqa: E402

from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from embodylab.policies.config import AlgoConfig, ConfigError, TrainConfig  # noqa: E402
from embodylab.policies.demos import record_demos  # noqa: E402
from embodylab.policies.rl import make_env, make_model, train  # noqa: E402


def test_layer_norm_critics_train_and_reload_with_their_norms(tmp_path):
    algo = AlgoConfig(net_arch=(16, 16), learning_starts=100, gradient_steps=5, critic_layer_norm=True)
    config = TrainConfig(
        env="LabReach",
        her=True,
        steps=300,
        eval_every=0,
        video=False,
        progress=False,
        out=str(tmp_path / "ln"),
        algo_config=algo,
    )
    run_dir = train(config)
    model = make_model(TrainConfig.load(run_dir), make_env(config))
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


def test_layer_norm_critics_are_rejected_for_td3():
    config = TrainConfig(algo="td3", algo_config=AlgoConfig(critic_layer_norm=True))
    with pytest.raises(ConfigError, match="critic_layer_norm .* sac only; got algo 'td3'"):
        config.validate()


def test_q_scaled_bc_still_clones_the_demonstrations(tmp_path):
    """With `bc_q_alpha` the SAC term is in units of mean |Q|, and the policy still moves towards the
    demonstrated actions."""
    from embodylab.policies.bc import DemoSAC

    base = TrainConfig(env="LabReach", her=True, steps=1000, eval_every=0, video=False, progress=False)
    with make_env(base) as env:
        dataset = record_demos(env, 3, tmp_path / "demos")

    def train_briefly(bc_weight: float, alpha: float | None) -> float:
        algo = AlgoConfig(
            net_arch=(16, 16),
            batch_size=32,
            learning_starts=50,
            gradient_steps=300,
            bc_weight=bc_weight,
            bc_q_alpha=alpha,
        )
        config = replace(
            base, out=str(tmp_path / f"{bc_weight}_{alpha}"), demo_dataset=str(dataset), algo_config=algo
        )
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
        TrainConfig(demos=2, her=True, algo_config=AlgoConfig(bc_q_alpha=0.0)).validate()
