"""SAC with LayerNorm critics (`AlgoConfig.critic_layer_norm`)."""

import pytest

pytest.importorskip("stable_baselines3")

from torch import nn  # noqa: E402

from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from embodylab.policies.config import AlgoConfig, ConfigError, TrainConfig  # noqa: E402
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
