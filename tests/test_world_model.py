import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from embodylab.world_models.baselines import MonolithicRSSM, deterministic_config, matched_monolithic_config
from embodylab.world_models.config import TrainWMConfig, training_model_config, upgrade_wm
from embodylab.world_models.data import MAX_OBJECTS, collect, load_dataset
from embodylab.world_models.object_centric import (
    AGENT_DIM,
    DYNAMIC_DIM,
    ObjectCentricConfig,
    ObjectCentricWorldModel,
    _gaussian_nll,
    batch_windows,
    open_loop,
    parameter_count,
    world_model_loss,
)
from embodylab.world_models.planning import MPPIConfig, MPPIPlanner
from embodylab.world_models.training import (
    WorldModelCheckpointError,
    load_world_model,
    read_checkpoint,
    train_world_model,
)

# One thread: the tiny models here gain nothing from more, and lose much when other jobs share the cores.
torch.set_num_threads(1)
TINY = ObjectCentricConfig(d_model=32, n_heads=2, n_layers=1, latent_dim=4, window=8, context=2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two expert LabClutter episodes, of 1 and of 3 objects (smooth pushes a tiny model can fit)."""
    root = tmp_path_factory.mktemp("clutter")
    collect("LabClutter-v0", "expert", 2, root, n_objects=(1, 3), progress=False)
    return root


def _scene(n_real: int, n_slots: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random scene of `n_real` objects padded with junk to `n_slots` slots (batch of 2)."""
    g = torch.Generator().manual_seed(seed)
    objects = torch.randn(2, MAX_OBJECTS, 16, generator=g)
    mask = torch.zeros(2, n_slots, dtype=torch.bool)
    mask[:, :n_real] = True
    return {
        "objects": objects[:, :n_slots],
        "categories": torch.randint(0, 3, (2, MAX_OBJECTS), generator=g)[:, :n_slots],
        "mask": mask,
        "agent": torch.randn(2, AGENT_DIM, generator=g),
        "action": torch.rand(2, 4, generator=g) * 2 - 1,
        "goal": torch.randn(2, 3, generator=g),
    }


def _step(model, scene, state=None, **kwargs):
    n = scene["objects"].shape[1]
    state = model.initial_state(2, n) if state is None else state
    return model.step(
        state,
        scene["objects"],
        scene["categories"],
        scene["mask"],
        scene["agent"],
        scene["action"],
        scene["goal"],
        **kwargs,
    )


@pytest.mark.parametrize("n_objects", range(1, MAX_OBJECTS + 1))
def test_predictions_have_one_change_per_object_slot(n_objects):
    model = ObjectCentricWorldModel(TINY).eval()
    out = _step(model, _scene(n_objects, n_objects), sample=False)
    assert out.objects_mean.shape == (2, n_objects, 13)
    assert out.agent_mean.shape == (2, AGENT_DIM)
    assert out.reward.shape == out.success_logit.shape == (2,)
    assert out.state.shape == (2, 1 + n_objects, TINY.d_model)


@pytest.mark.parametrize("n_real", range(1, MAX_OBJECTS))
def test_padding_slots_do_not_change_the_predictions_for_real_objects(n_real):
    model = ObjectCentricWorldModel(TINY).eval()
    with torch.no_grad():
        bare = _step(model, _scene(n_real, n_real), sample=False)
        padded = _step(model, _scene(n_real, MAX_OBJECTS), sample=False)
        # and a second step from each recurrent state
        bare2 = _step(model, _scene(n_real, n_real, seed=1), state=bare.state, sample=False)
        padded2 = _step(model, _scene(n_real, MAX_OBJECTS, seed=1), state=padded.state, sample=False)
    for a, b in ((bare, padded), (bare2, padded2)):
        torch.testing.assert_close(a.objects_mean, b.objects_mean[:, :n_real], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a.agent_mean, b.agent_mean, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a.reward, b.reward, atol=1e-5, rtol=1e-4)


def test_prior_samples_differ_and_the_deterministic_ablation_has_no_latent():
    stochastic = ObjectCentricWorldModel(TINY).eval()
    deterministic = ObjectCentricWorldModel(deterministic_config(TINY)).eval()
    scene = _scene(3, 3)
    with torch.no_grad():
        a, b = _step(stochastic, scene), _step(stochastic, scene)
        c, d = _step(deterministic, scene), _step(deterministic, scene)
    assert not torch.allclose(a.objects_mean, b.objects_mean)
    torch.testing.assert_close(c.objects_mean, d.objects_mean)
    assert parameter_count(deterministic) < parameter_count(stochastic)


def test_without_an_agent_latent_only_objects_are_sampled_and_the_agents_kl_is_not_counted():
    scene = _scene(2, 3)
    target = {"objects": torch.randn(2, 3, 13), "agent": torch.randn(2, AGENT_DIM)}
    with_agent = ObjectCentricWorldModel(replace(TINY, agent_latent=True)).eval()
    without = ObjectCentricWorldModel(TINY).eval()  # the default
    with torch.no_grad():
        a, b = _step(with_agent, scene), _step(with_agent, scene)
        c, d = _step(without, scene), _step(without, scene)
        posterior = _step(without, scene, target=target)
    assert not torch.allclose(a.agent_mean, b.agent_mean)
    torch.testing.assert_close(c.agent_mean, d.agent_mean)
    assert not torch.allclose(c.objects_mean, d.objects_mean)
    assert not posterior.kl_mask[:, 0].any() and posterior.kl_mask[:, 1:].equal(scene["mask"])
    assert parameter_count(without) == parameter_count(with_agent)  # the same model, the agent's z held at 0
    assert TINY.agent_latent is False


def test_monolithic_rssm_matches_the_parameter_count_and_refuses_extra_objects():
    config = matched_monolithic_config(TINY, max_objects=3)
    monolithic = MonolithicRSSM(config)
    target = parameter_count(ObjectCentricWorldModel(TINY))
    assert abs(parameter_count(monolithic) - target) <= 0.1 * target
    assert _step(monolithic, _scene(2, 2)).objects_mean.shape == (2, 2, 13)
    with pytest.raises(ValueError, match="at most 3 objects"):
        _step(monolithic, _scene(6, 6))


def _fit(config, batch, steps):
    """(loss before, loss after) of `steps` Adam steps of a fresh model of `config` on one batch; the model."""
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(config)
    model.set_normalizer(batch)
    with torch.no_grad():
        first = float(world_model_loss(model, batch)[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss, _ = world_model_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, float(loss.detach()), model.eval()


def _open_loop_error(model, batch) -> float:
    """Metres, mean over the objects and the 6 steps predicted after 2 of context."""
    with torch.no_grad():
        predicted = open_loop(model, batch, context=2, horizon=6, mode=True)["positions"][0]
    return float((predicted - batch["features"][:, 3:, :, :3]).norm(dim=-1).mean())


@pytest.fixture(scope="module")
def tiny_batch(dataset):
    return batch_windows(load_dataset(dataset), [1, 1, 1, 1], [10, 30, 50, 70], TINY.window)  # 3 objects


def test_a_tiny_model_overfits_a_tiny_dataset(tiny_batch):
    untrained = ObjectCentricWorldModel(deterministic_config(TINY)).eval()
    untrained.set_normalizer(tiny_batch)
    first, last, model = _fit(deterministic_config(TINY), tiny_batch, 150)
    assert last < first - 20.0  # nats per step
    assert _open_loop_error(model, tiny_batch) < 0.5 * _open_loop_error(untrained, tiny_batch)


def test_the_stochastic_model_fits_the_elbo_of_a_tiny_dataset(tiny_batch):
    first, last, _ = _fit(TINY, tiny_batch, 100)
    assert last < first - 20.0  # nats per step


def _train(dataset, out, steps, **kwargs):
    """A tiny training run; `kwargs` are fields of `TrainWMConfig` or of its `model_config`."""
    model_fields = {f.name for f in dataclasses.fields(ObjectCentricConfig)}
    model = {"d_model": 32, "window": 8, "context": 2} | {
        k: v for k, v in kwargs.items() if k in model_fields
    }
    settings = dict(batch_size=4, val_every=2, checkpoint_every=2, progress=False)
    settings |= {k: v for k, v in kwargs.items() if k not in model_fields}
    model_config = dataclasses.replace(training_model_config(), **model)
    config = TrainWMConfig(dataset=dataset, out=out, steps=steps, model_config=model_config, **settings)
    return train_world_model(config)


def test_checkpoint_round_trip_and_resume(dataset, tmp_path):
    summary = _train(dataset, tmp_path / "run", 3)
    assert summary["steps"] == 3 and summary["samples_per_s"] > 0
    model, meta = load_world_model(tmp_path / "run")
    assert meta["model_kind"] == "object-centric" and meta["step"] == 3
    config = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert config["model"]["d_model"] == 32
    weights = torch.load(tmp_path / "run" / "checkpoint" / "weights.pt", weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, weights["model"][name])
    resumed = _train(dataset, tmp_path / "run", 5, resume=True)
    assert resumed["steps"] == 5
    assert read_checkpoint(tmp_path / "run")[0]["step"] == 5


def test_init_from_fine_tunes_another_runs_model_with_its_normaliser(dataset, tmp_path):
    _train(dataset, tmp_path / "base", 3, nll_beta=0.5)
    # Zero steps: the fine-tune's checkpoint is exactly the model it started from, normaliser included,
    # although its own config asks for another width (the model config comes from the base run).
    summary = _train(dataset, tmp_path / "tuned", 0, init_from=tmp_path / "base", d_model=16)
    assert summary["steps"] == 0
    base, _ = load_world_model(tmp_path / "base")
    tuned, meta = load_world_model(tmp_path / "tuned")
    assert meta["model"]["d_model"] == 32 and meta["train"]["init_from"] == str(tmp_path / "base")
    for name, value in base.state_dict().items():
        torch.testing.assert_close(tuned.state_dict()[name], value)
    trained = _train(dataset, tmp_path / "tuned2", 2, init_from=tmp_path / "base")
    assert trained["steps"] == 2
    with pytest.raises(ValueError, match="holds a object-centric model"):
        _train(dataset, tmp_path / "wrong", 1, init_from=tmp_path / "base", model="monolithic")


def test_a_corrupt_checkpoint_gives_an_error_naming_its_file(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 1)
    weights = tmp_path / "run" / "checkpoint" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(WorldModelCheckpointError, match="weights.pt"):
        load_world_model(tmp_path / "run")
    with pytest.raises(WorldModelCheckpointError, match="no world-model checkpoint"):
        load_world_model(tmp_path / "nothing")


def test_mppi_returns_valid_actions_and_filters_observed_steps():
    import gymnasium as gym

    from embodylab.world_models.data import object_centric_observation

    env = gym.make("embodylab/LabPush-v0")
    env.reset(seed=0)
    model = ObjectCentricWorldModel(TINY)
    planner = MPPIPlanner(model, MPPIConfig(horizon=3, samples=16, iterations=2, elites=4), seed=0)
    obs = object_centric_observation(env)
    planner.reset(obs)
    for _ in range(3):
        action = planner.act(obs)
        assert action.shape == (4,) and action.dtype == np.float32
        assert np.all(np.abs(action) <= 1.0)
        env.step(action)
        obs = object_centric_observation(env)
    assert planner.state.abs().sum() > 0  # the recurrent state took in the observed transitions


def test_an_ensemble_scores_plans_by_the_members_mean_less_their_disagreement():
    import gymnasium as gym

    from embodylab.world_models.data import object_centric_observation
    from embodylab.world_models.planning import _tensors

    env = gym.make("embodylab/LabPush-v0")
    env.reset(seed=0)
    obs = object_centric_observation(env)
    config = MPPIConfig(horizon=3, samples=16, iterations=2, elites=4, cost="shaped", disagreement_weight=0.5)
    torch.manual_seed(0)
    first, second = ObjectCentricWorldModel(TINY), ObjectCentricWorldModel(TINY)
    ensemble = MPPIPlanner([first, second], config, seed=0)
    ensemble.reset(obs)
    scene = {k: v.expand(16, *v.shape[1:]) for k, v in _tensors(obs).items()}
    states = [state.expand(16, *state.shape[1:]) for state in ensemble.states]
    actions = torch.rand(16, 3, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    each = torch.stack(
        [ensemble._returns(m, s, scene, actions) for m, s in zip([first, second], states, strict=True)]
    )
    assert (each[0] - each[1]).abs().max() > 1e-4  # the members disagree
    torch.testing.assert_close(
        ensemble._ensemble_returns(states, scene, actions), each.mean(0) - 0.5 * each.std(0)
    )
    # Two copies of one model agree everywhere: the ensemble plans exactly as the model alone.
    alone, twice = MPPIPlanner(first, config, seed=3), MPPIPlanner([first, first], config, seed=3)
    alone.reset(obs), twice.reset(obs)
    for _ in range(2):
        np.testing.assert_allclose(alone.act(obs), twice.act(obs), atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        MPPIPlanner([], config)
    with pytest.raises(ValueError, match="actions of different sizes"):
        MPPIPlanner([first, ObjectCentricWorldModel(replace(TINY, action_dim=3))], config)
    with pytest.raises(ValueError, match="disagreement_weight"):
        MPPIConfig(disagreement_weight=-1.0)


@pytest.mark.parametrize("absolute", [False, True])
def test_object_tokens_are_translation_equivariant_unless_absolute_positions(absolute):
    model = ObjectCentricWorldModel(replace(TINY, absolute_positions=absolute))
    scene = _scene(3, 3)
    shift = torch.tensor([0.07, -0.05, 0.0])
    tokens = model.object_tokens(scene["objects"], scene["categories"], scene["agent"], scene["goal"])
    shifted_objects = scene["objects"].clone()
    shifted_objects[..., :3] += shift
    shifted_agent = scene["agent"].clone()
    shifted_agent[..., :3] += shift
    moved = model.object_tokens(shifted_objects, scene["categories"], shifted_agent, scene["goal"] + shift)
    assert torch.allclose(tokens, moved, atol=1e-5) != absolute


def test_checkpoint_keeps_the_absolute_positions_switch(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 2, d_model=16, window=6, absolute_positions=True)
    model, meta = load_world_model(tmp_path / "run")
    assert meta["model"]["absolute_positions"] is True
    assert model.object_inputs.start == 0  # x and y reach the object encoder
    read_checkpoint(tmp_path / "run")  # weights_only=True load


def test_shaped_cost_prefers_the_tcp_behind_the_target_and_the_target_at_the_goal():
    from embodylab.world_models.data import CATEGORIES
    from embodylab.world_models.planning import shaped_reward

    config = MPPIConfig(cost="shaped")
    # Two objects: a distractor (slot 0) and the target (slot 1) at x = 0, half-extent 0.025 m.
    objects = torch.zeros(4, 2, 16)
    objects[:, 0, :3] = torch.tensor([0.2, 0.2, 0.025])
    objects[:, 1, :3] = torch.tensor([0.0, 0.0, 0.025])
    objects[..., 13:16] = 0.025
    categories = torch.tensor([[CATEGORIES.index("cube"), CATEGORIES.index("target_cube")]] * 4)
    goal = torch.tensor([[0.2, 0.0, 0.025]] * 4)  # the goal lies in +x of the target
    agent = torch.zeros(4, 7)
    agent[0, :3] = torch.tensor([-0.04, 0.0, 0.02])  # on the pushing point, behind the target
    agent[1, :3] = torch.tensor([0.04, 0.0, 0.02])  # on the goal side: a push from here drives it away
    agent[2, :3] = torch.tensor([-0.04, 0.0, 0.02])
    objects[2, 1, 0] = -0.05  # the same tcp, the target farther from the goal
    agent[3, :3] = torch.tensor([0.16, 0.2, 0.02])  # behind the distractor, which is not the target
    rewards = shaped_reward(objects, categories, agent, goal, config)
    assert rewards[0] == pytest.approx(-0.2, abs=1e-5)  # only the target's 0.2 m to the goal
    assert rewards[0] > rewards[1] and rewards[0] > rewards[2] and rewards[0] > rewards[3]


def test_coloured_noise_has_unit_variance_and_smoother_sequences_as_beta_grows():
    from embodylab.world_models.planning import coloured_noise

    lag_one = []
    for beta in (0.0, 1.0, 2.0):
        for horizon in (11, 12):
            noise = coloured_noise(4000, horizon, 3, beta, torch.Generator().manual_seed(0))
            assert noise.shape == (4000, horizon, 3) and noise.dtype == torch.float32
            per_step = noise.std(0)  # every step's variance, not just their mean
            assert per_step.mean().item() == pytest.approx(1.0, abs=0.03) and per_step.min().item() > 0.93
        lag_one.append(((noise[:, 1:] * noise[:, :-1]).mean() / noise.var()).item())
    assert abs(lag_one[0]) < 0.05 and lag_one[0] < lag_one[1] < lag_one[2] and lag_one[2] > 0.6
    again = coloured_noise(4000, 12, 3, 2.0, torch.Generator().manual_seed(0))
    assert torch.equal(noise, again)
    with pytest.raises(ValueError, match="noise_beta"):
        MPPIConfig(noise_beta=-1.0)


def test_mppi_with_the_shaped_cost_returns_valid_actions():
    import gymnasium as gym

    from embodylab.world_models.data import object_centric_observation

    env = gym.make("embodylab/LabPush-v0")
    env.reset(seed=0)
    for noise_beta in (0.0, 2.0):
        config = MPPIConfig(
            horizon=3, samples=16, iterations=2, elites=4, cost="shaped", noise_beta=noise_beta
        )
        planner = MPPIPlanner(ObjectCentricWorldModel(TINY), config, seed=0)
        obs = object_centric_observation(env)
        planner.reset(obs)
        action = planner.act(obs)
        assert action.shape == (4,) and np.all(np.abs(action) <= 1.0) and np.isfinite(action).all()


def test_motion_weight_stills_a_flat_score_and_trades_speed_against_progress():
    from embodylab.world_models.planning import refine

    config = MPPIConfig(horizon=4, samples=256, iterations=6, elites=32)
    flat = lambda actions: torch.zeros(actions.shape[0])  # noqa: E731 - nothing the plan does matters
    drift = refine(torch.zeros(4, 4), config, torch.Generator().manual_seed(0), flat)
    still = refine(
        torch.zeros(4, 4), replace(config, motion_weight=1.0), torch.Generator().manual_seed(0), flat
    )
    assert still[:, :3].abs().max() < 0.1 < drift[:, :3].abs().max()
    # Progress along x worth 1 per unit of action against a cost of 1 per unit squared: the best is 0.5.
    progress = lambda actions: actions[..., 0].sum(1)  # noqa: E731
    best = refine(
        torch.zeros(4, 4), replace(config, motion_weight=1.0), torch.Generator().manual_seed(0), progress
    )
    assert best[:, 0].mean() == pytest.approx(0.5, abs=0.1)
    full = refine(torch.zeros(4, 4), config, torch.Generator().manual_seed(0), progress)
    assert full[:, 0].mean() > 0.8  # without the cost: as fast as the action space allows
    with pytest.raises(ValueError, match="motion_weight"):
        MPPIConfig(motion_weight=-0.1)


def test_beta_nll_gives_the_mean_a_squared_error_gradient_whatever_the_std():
    """β = 1: the mean's gradient is that of half the squared error, however wide the predicted std (the
    plain NLL scales it by 1/std², so a wide std mutes a badly predicted change); β = 0 is the plain NLL."""
    from embodylab.world_models.object_centric import _gaussian_nll

    target = torch.tensor([[1.0, -2.0]])
    for std_value in (0.1, 1.0, 5.0):
        mean = torch.zeros(1, 2, requires_grad=True)
        std = torch.full((1, 2), std_value, requires_grad=True)
        _gaussian_nll(target, mean, std, beta=1.0).sum().backward()
        torch.testing.assert_close(mean.grad, -target)
        plain_mean = torch.zeros(1, 2, requires_grad=True)
        _gaussian_nll(target, plain_mean, std.detach()).sum().backward()
        torch.testing.assert_close(plain_mean.grad, -target / std_value**2)


def test_nll_beta_reaches_the_model_and_bad_values_are_refused(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 1, nll_beta=0.5)
    model, _ = load_world_model(tmp_path / "run")
    assert model.config.nll_beta == 0.5
    with pytest.raises(ValueError, match="nll_beta"):
        _train(dataset, tmp_path / "bad", 1, nll_beta=1.5)
    _train(dataset, tmp_path / "mono", 1, nll_beta=0.5, model="monolithic")
    monolithic, _ = load_world_model(tmp_path / "mono")
    assert monolithic.config.nll_beta == 0.5


def test_the_data_prior_starts_plans_from_the_training_data_mean_action(tiny_batch):
    import gymnasium as gym

    from embodylab.world_models.data import object_centric_observation

    model = ObjectCentricWorldModel(TINY)
    model.set_normalizer(tiny_batch)
    data_mean = tiny_batch["actions"].reshape(-1, 4).mean(0)
    torch.testing.assert_close(model.action_mean, data_mean)
    assert data_mean[3] < -0.5  # the expert pushes with closed fingers: far from a zero nominal action
    env = gym.make("embodylab/LabPush-v0")
    env.reset(seed=0)
    obs = object_centric_observation(env)
    for prior, nominal in (("data", data_mean), ("zero", torch.zeros(4))):
        planner = MPPIPlanner(model, MPPIConfig(horizon=3, samples=8, iterations=1, elites=2, prior=prior))
        planner.reset(obs)
        torch.testing.assert_close(planner.mean, nominal.expand(3, -1))
        planner.act(obs)
        torch.testing.assert_close(planner.mean[-1], nominal)  # the new last step of the warm start
    with pytest.raises(ValueError, match="prior"):
        MPPIPlanner(model, MPPIConfig(prior="policy"))


def test_a_checkpoint_from_before_the_action_mean_loads_with_a_zero_one(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 1)
    weights_path = tmp_path / "run" / "checkpoint" / "weights.pt"
    weights = torch.load(weights_path, weights_only=True)
    assert weights["model"]["action_mean"].abs().sum() > 0
    del weights["model"]["action_mean"]
    torch.save(weights, weights_path)
    model, _ = load_world_model(tmp_path / "run")
    assert torch.equal(model.action_mean, torch.zeros(4))
    assert _train(dataset, tmp_path / "run", 2, resume=True)["steps"] == 2


def test_a_checkpoint_from_before_the_agent_latent_switch_loads_with_the_agents_latent(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 1, residual_latent=False)
    config_path = tmp_path / "run" / "checkpoint" / "config.json"
    meta = json.loads(config_path.read_text())
    assert meta["model"]["agent_latent"] is False  # the default since
    assert load_world_model(tmp_path / "run")[0].config.agent_latent is False
    # Written before both switches: neither key.
    del meta["model"]["agent_latent"], meta["model"]["residual_latent"]
    config_path.write_text(json.dumps(meta))
    loaded = load_world_model(tmp_path / "run")[0].config
    assert loaded.agent_latent is True and loaded.residual_latent is False


@pytest.mark.parametrize("kind", ["object-centric", "monolithic"])
def test_the_prior_path_decodes_the_priors_mean_as_an_open_loop_step_does(kind):
    torch.manual_seed(0)
    config = replace(TINY, prior_rollout=True)
    model = (
        ObjectCentricWorldModel(config)
        if kind == "object-centric"
        else MonolithicRSSM(matched_monolithic_config(config, MAX_OBJECTS))
    )
    model.eval()
    scene = _scene(2, 3)
    target = {"objects": torch.randn(2, 3, 13), "agent": torch.randn(2, AGENT_DIM)}
    with torch.no_grad():
        observed = _step(model, scene, target=target, prior_path=True)
        open_loop_step = _step(model, scene, sample=False)
    assert observed.prior_path is not None and _step(model, scene, target=target).prior_path is None
    expected = (
        open_loop_step.objects_mean,
        open_loop_step.objects_std,
        open_loop_step.agent_mean,
        open_loop_step.agent_std,
    )
    for got, want in zip(observed.prior_path, expected, strict=True):
        torch.testing.assert_close(got, want)
    # The posterior's decoding is another prediction: the prior path is not a copy of it.
    assert not torch.allclose(observed.objects_mean, observed.prior_path[0])


def test_prior_rollout_trains_the_open_loop_steps_on_the_priors_mean(tiny_batch, dataset, tmp_path):
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(replace(TINY, prior_rollout=True))
    model.set_normalizer(tiny_batch)
    with_prior, parts = world_model_loss(model, tiny_batch)
    model.config = replace(model.config, prior_rollout=False)
    torch.manual_seed(0)
    _, parts_without = world_model_loss(model, tiny_batch)
    # The prior path adds its NLL on every open-loop step; both losses backpropagate.
    assert parts["objects_nll"] != pytest.approx(parts_without["objects_nll"])
    with_prior.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # The switch reaches the model configs, the monolithic RSSM's included.
    for kind in ("object-centric", "monolithic"):
        _train(dataset, tmp_path / kind, 2, model=kind, prior_rollout=True)
        assert read_checkpoint(tmp_path / kind)[0]["model"]["prior_rollout"] is True


@pytest.mark.parametrize("switch", [False, True])
def test_the_posterior_reads_the_true_change_only_with_true_change_posterior(tiny_batch, switch):
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(replace(TINY, prior_rollout=True, true_change_posterior=switch))
    model.set_normalizer(tiny_batch)
    seen, step = [], model.step

    def recording_step(state, objects, categories, mask, agent, action, goal, target=None, **kwargs):
        seen.append((objects, target))
        return step(state, objects, categories, mask, agent, action, goal, target, **kwargs)

    model.step = recording_step
    world_model_loss(model, tiny_batch)
    features = tiny_batch["features"]
    for t, (objects, target) in enumerate(seen):
        true_change = (
            features[:, t + 1, :, :DYNAMIC_DIM] - features[:, t, :, :DYNAMIC_DIM]
        ) / model.delta_std
        from_input = (features[:, t + 1, :, :DYNAMIC_DIM] - objects[..., :DYNAMIC_DIM]) / model.delta_std
        torch.testing.assert_close(target["objects"], true_change if switch else from_input)
    # After the context the model stands on its own prediction, where the two changes part.
    rolled = seen[TINY.context][0]
    assert not torch.allclose(rolled, features[:, TINY.context])


def test_true_change_posterior_reaches_both_models_saved_configs(dataset, tmp_path):
    for kind in ("object-centric", "monolithic"):
        _train(dataset, tmp_path / kind, 2, model=kind, true_change_posterior=True)
        assert read_checkpoint(tmp_path / kind)[0]["model"]["true_change_posterior"] is True


RESIDUAL_HEAD = ("prior", "posterior", "object_change_encoder", "object_residual_decoder")


def test_residual_latent_trains_its_head_without_gradient_into_the_trunk(tiny_batch):
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(replace(TINY, residual_latent=True))
    model.set_normalizer(tiny_batch)
    scene = _scene(2, 3)
    target = {"objects": torch.randn(2, 3, 13), "agent": torch.randn(2, AGENT_DIM)}
    out = _step(model, scene, target=target)
    # The ELBO's terms (the sampled residual's NLL and the KL) reach the latent's head only.
    elbo = _gaussian_nll(target["objects"], out.objects_mean, out.objects_std).sum() + out.kl.sum()
    elbo.backward()
    for name, parameter in model.named_parameters():
        reached = parameter.grad is not None and bool(parameter.grad.abs().sum() > 0)
        if name.split(".")[0] in ("posterior", "object_change_encoder", "object_residual_decoder"):
            assert reached, name
        elif name.split(".")[0] not in RESIDUAL_HEAD:
            assert not reached, name
    # The whole loss trains the trunk (through the deterministic path) and the head.
    model.zero_grad()
    loss, parts = world_model_loss(model, tiny_batch)
    loss.backward()
    assert parts["kl"] > 0
    for module in ("mixer", "cell", "object_decoder", "object_residual_decoder", "posterior"):
        grads = [p.grad for p in getattr(model, module).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), module
        assert all(torch.isfinite(g).all() for g in grads if g is not None)


def test_residual_latent_decodes_the_deterministic_change_plus_the_latents_residual():
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(replace(TINY, residual_latent=True)).eval()
    scene = _scene(3, 3)
    with torch.no_grad():
        mode = _step(model, scene, sample=False)
        sampled = _step(model, scene)
    deterministic = mode.deterministic_path
    assert deterministic is not None and sampled.deterministic_path is not None
    # One deterministic path under every latent; the samples differ from the prior's mean only by the residual.
    torch.testing.assert_close(sampled.deterministic_path.objects_mean, deterministic.objects_mean)
    torch.testing.assert_close(mode.agent_mean, sampled.agent_mean)
    assert not torch.allclose(mode.objects_mean, sampled.objects_mean)
    assert not torch.allclose(mode.objects_mean, deterministic.objects_mean)


def test_residual_latent_rolls_on_the_deterministic_path_and_reads_the_residual_out(tiny_batch):
    torch.manual_seed(0)
    model = ObjectCentricWorldModel(replace(TINY, residual_latent=True)).eval()
    model.set_normalizer(tiny_batch)
    # A residual of a constant change: rolled on, its offset would grow with every step.
    last = model.object_residual_decoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        without = open_loop(model, tiny_batch, context=2, horizon=5, mode=True)["positions"]
        last.bias[:3] = 1.0
        shifted = open_loop(model, tiny_batch, context=2, horizon=5, mode=True)["positions"]
    offset = shifted - without  # [1, B, H, N, 3]
    expected = model.delta_std[:3].expand_as(offset)
    torch.testing.assert_close(offset, expected)


def test_residual_latent_is_train_wms_default_reaches_the_saved_config_and_needs_an_object_latent(
    dataset, tmp_path
):
    _train(dataset, tmp_path / "oc", 2)
    assert read_checkpoint(tmp_path / "oc")[0]["model"]["residual_latent"] is True
    assert load_world_model(tmp_path / "oc")[0].config.residual_latent is True
    # The agent's latent (the model before) leaves it off rather than failing on the default.
    _train(dataset, tmp_path / "agent", 1, agent_latent=True)
    saved = read_checkpoint(tmp_path / "agent")[0]["model"]
    assert saved["agent_latent"] is True and saved["residual_latent"] is False
    assert deterministic_config(replace(TINY, residual_latent=True)).residual_latent is False
    with pytest.raises(ValueError, match="residual_latent"):
        ObjectCentricWorldModel(replace(TINY, residual_latent=True, agent_latent=True))
    with pytest.raises(ValueError, match="residual_latent"):
        ObjectCentricWorldModel(replace(TINY, residual_latent=True, latent_dim=0))


def test_the_training_config_holds_the_model_config_with_the_training_defaults():
    model = TrainWMConfig().model_config
    assert (model.d_model, model.n_layers, model.latent_dim, model.window, model.context) == (64, 1, 8, 16, 4)
    assert model.prior_rollout and model.residual_latent
    assert not (model.agent_latent or model.true_change_posterior or model.absolute_positions)
    assert model.nll_beta == 0.0
    # the rest are the model's own defaults
    assert dataclasses.replace(model, n_layers=2, window=20, prior_rollout=False, residual_latent=False) == (
        ObjectCentricConfig()
    )


@pytest.mark.parametrize("name", ["default", "monolithic"])
def test_a_world_model_config_of_version_0_loads_as_the_config_it_trained(name):
    """tests/data/wm_config_v0_*.json: checkpoint config.json files of the flat TrainWMConfig (version 0)."""
    flat = json.loads((Path(__file__).parent / "data" / f"wm_config_v0_{name}.json").read_text())["train"]
    config = upgrade_wm(flat)
    assert config.version == 1
    for key, value in flat.items():
        holder = config.model_config if hasattr(config.model_config, key) else config
        actual = getattr(holder, key)
        assert (str(actual) if isinstance(actual, Path) else actual) == value, key
    assert upgrade_wm(config.to_dict()) == config
    with pytest.raises(ValueError, match="d_modl"):
        upgrade_wm({**flat, "d_modl": 3})


def test_a_checkpoint_records_the_nested_config_and_eval_wm_reads_it(dataset, tmp_path):
    _train(dataset, tmp_path / "run", 1, d_model=16)
    meta, _ = read_checkpoint(tmp_path / "run")
    assert meta["train"]["version"] == 1 and meta["train"]["model_config"]["d_model"] == 16
    assert upgrade_wm(meta["train"]).model_config.d_model == 16
