import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from test_cli import run_cli

from embodylab.world_models.config import TrainValueConfig
from embodylab.world_models.data import collect, load_dataset
from embodylab.world_models.object_centric import AGENT_DIM, ObjectCentricConfig, ObjectCentricWorldModel
from embodylab.world_models.planning import MPPIConfig, MPPIPlanner
from embodylab.world_models.value import (
    StateValue,
    ValueCheckpointError,
    default_discount,
    discounted_returns,
    fit_value,
    load_value,
    save_value,
    train_value,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def push_data(tmp_path_factory):
    """Four noisy-expert LabPush episodes (the cube moves in them, so returns differ along an episode)."""
    root = tmp_path_factory.mktemp("push")
    collect("LabPush-v0", "noisy-expert", 4, root, progress=False)
    return root


def test_returns_are_discounted_sums_completed_by_the_last_reward_for_ever():
    rewards = np.array([[-1.0, -0.5, -0.25, 0.0], [-2.0, -1.0, 9.0, 9.0]], np.float32)
    lengths = np.array([3, 2])
    gamma = 0.5
    returns = discounted_returns(rewards, lengths, gamma)
    tail = -0.25 / (1 - gamma)  # the first episode's last reward, for ever after its 3 steps
    expected_first = [-1 + gamma * (-0.5) + gamma**2 * (-0.25) + gamma**3 * tail]
    assert np.isclose(returns[0, 0], expected_first[0])
    assert np.isclose(returns[0, 2], -0.25 / (1 - gamma))  # the last step: its reward for ever
    assert np.isclose(returns[1, 0], -2 + gamma * (-1.0 / (1 - gamma)))  # padding (9.0) never counts
    assert returns[0, 3] == 0 and returns[1, 2] == 0


def test_td_mpc2_discount_heuristic():
    assert default_discount(100) == pytest.approx(0.95)
    assert default_discount(500) == pytest.approx(0.99)
    assert default_discount(10) == pytest.approx(0.95)  # clipped below
    assert default_discount(10_000) == pytest.approx(0.995)  # clipped above


def test_the_value_pools_objects_so_order_and_padding_do_not_matter():
    value = StateValue(hidden=16, category_dim=4).eval()
    g = torch.Generator().manual_seed(0)
    objects = torch.randn(2, 5, 16, generator=g)
    categories = torch.randint(0, 3, (2, 5), generator=g)
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    agent, goal = torch.randn(2, AGENT_DIM, generator=g), torch.randn(2, 3, generator=g)
    with torch.no_grad():
        base = value(objects, categories, mask, agent, goal)
        order = torch.tensor([2, 0, 1, 3, 4])
        permuted = value(objects[:, order], categories[:, order], mask[:, order], agent, goal)
        junk = objects.clone()
        junk[:, 3:] = 1e3  # padding slots may hold anything
        padded = value(junk, categories, mask, agent, goal)
        trimmed = value(objects[:, :3], categories[:, :3], mask[:, :3], agent, goal)
    assert torch.allclose(base, permuted, atol=1e-5)
    assert torch.allclose(base, padded, atol=1e-5)
    assert torch.allclose(base, trimmed, atol=1e-5)


def test_the_fitted_value_explains_the_returns_better_than_their_mean(push_data):
    data = load_dataset(push_data)
    config = TrainValueConfig(
        steps=300, batch_size=128, hidden=32, val_every=100, reward_baseline=False, expectile=0.5
    )  # nothing held out; the plain regression on the returns
    fit = fit_value(data, config, progress=False)
    assert fit.summary["discount"] == pytest.approx(0.95)
    # The loss is the MSE in units of the returns' variance: predicting their mean scores 1.
    assert fit.summary["train_loss"] < 0.5


def test_the_reward_baseline_leaves_out_the_first_step_and_learns_the_remainder(push_data):
    data = load_dataset(push_data)
    config = TrainValueConfig(
        steps=300, batch_size=128, hidden=32, val_every=100, reward_baseline=True, expectile=0.5
    )
    fit = fit_value(data, config, progress=False)
    assert fit.value.reward_baseline
    assert fit.summary["train_steps"] == int(data.lengths.sum()) - len(data)  # no step-0 states
    assert fit.summary["train_loss"] < 0.5


def test_a_high_expectile_values_states_above_the_mean_return(push_data):
    from embodylab.world_models.value import _step_tensors, discounted_returns

    data = load_dataset(push_data)
    values = []
    for expectile in (0.5, 0.9):
        config = TrainValueConfig(
            steps=300, batch_size=128, hidden=32, val_every=100, reward_baseline=False, expectile=expectile
        )
        values.append(fit_value(data, config, progress=False).value)
    batch = _step_tensors(data, discounted_returns(data.rewards, data.lengths, 0.95))
    inputs = [batch[k] for k in ("objects", "categories", "mask", "agent", "goal")]
    with torch.no_grad():
        mean, optimistic = (value(*inputs) for value in values)
    assert (optimistic > mean).float().mean() > 0.8


def test_value_round_trip_and_a_corrupt_file_names_itself(push_data, tmp_path):
    config = TrainValueConfig(
        dataset=push_data, out=tmp_path / "value", steps=20, batch_size=64, hidden=16, val_every=2
    )
    summary = train_value(config)
    assert "val_rmse" in summary and summary["steps"] == 20
    value = load_value(tmp_path / "value")
    assert value.reward_baseline  # the default, kept by the checkpoint
    meta = json.loads((tmp_path / "value" / "value.json").read_text())
    assert meta["summary"]["discount"] == value.discount == pytest.approx(0.95)
    fit = fit_value(load_dataset(push_data), config, progress=False)
    save_value(tmp_path / "again", fit, config)
    again = load_value(tmp_path / "again")
    for name, tensor in fit.value.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    (tmp_path / "again" / "value.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueCheckpointError, match="value.pt"):
        load_value(tmp_path / "again")
    with pytest.raises(ValueCheckpointError, match="no value at"):
        load_value(tmp_path / "missing")


def test_bad_value_configs_are_refused():
    with pytest.raises(ValueError, match="discount"):
        TrainValueConfig(discount=1.0)
    with pytest.raises(ValueError, match="steps"):
        TrainValueConfig(steps=0)
    with pytest.raises(ValueError, match="expectile"):
        TrainValueConfig(expectile=1.0)


def test_mppi_closes_plans_with_the_value_and_only_with_the_learned_reward():
    import gymnasium as gym

    from embodylab.world_models.data import object_centric_observation

    env = gym.make("embodylab/LabPush-v0")
    env.reset(seed=0)
    tiny = ObjectCentricConfig(d_model=32, n_heads=2, n_layers=1, latent_dim=4, window=8, context=2)
    model = ObjectCentricWorldModel(tiny)
    value = StateValue(hidden=16, category_dim=4, discount=0.9)
    config = MPPIConfig(horizon=3, samples=16, iterations=2, elites=4, cost="learned")
    planner = MPPIPlanner(model, config, seed=0, value=value)
    obs = object_centric_observation(env)
    planner.reset(obs)
    action = planner.act(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)

    # The score is sum_h gamma^h r_{h+1} + gamma^H V(s_H): a value that adds a constant c to every state
    # adds gamma^H c to every plan's score.
    from embodylab.world_models.planning import _tensors

    scene = {k: v.expand(5, *v.shape[1:]) for k, v in _tensors(obs).items()}
    state = planner.states[0].expand(5, *planner.states[0].shape[1:])
    actions = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    before = planner._ensemble_returns([state], scene, actions)
    value.return_mean += 2.0
    after = planner._ensemble_returns([state], scene, actions)
    assert torch.allclose(after - before, torch.full((5,), 0.9**3 * 2.0), atol=1e-5)

    # With the reward baseline the value is the return less the last state's reward for ever: the planner
    # adds gamma^H r(s_H) / (1 - gamma) back, r(s_H) being the model's read-out (what the terminal weight
    # of the value-free score multiplies).
    plain = [
        MPPIPlanner(model, MPPIConfig(horizon=3, samples=16, iterations=2, elites=4, terminal_weight=w))
        for w in (1.0, 2.0)
    ]
    last_reward = plain[1]._returns(model, state, scene, actions) - plain[0]._returns(
        model, state, scene, actions
    )
    value.reward_baseline = True
    with_baseline = planner._ensemble_returns([state], scene, actions)
    assert torch.allclose(with_baseline - after, 0.9**3 * last_reward / (1 - 0.9), atol=1e-4)

    with pytest.raises(ValueError, match="learned reward"):
        MPPIPlanner(
            model, MPPIConfig(horizon=3, samples=16, iterations=2, elites=4, cost="shaped"), value=value
        )

    # An ensemble: one value for every member, or one each (member k's plans closed by value k).
    other = copy.deepcopy(value)
    other.return_mean += 5.0
    both = MPPIPlanner([model, model], config, value=[value, other])
    each = [both._returns(model, state, scene, actions, v) for v in (value, other)]
    assert torch.allclose(each[1] - each[0], torch.full((5,), 0.9**3 * 5.0), atol=1e-4)
    assert torch.allclose(
        both._ensemble_returns([state, state], scene, actions), torch.stack(each).mean(0), atol=1e-5
    )  # disagreement weight 0: the members' mean
    with pytest.raises(ValueError, match="one per model"):
        MPPIPlanner([model, model], config, value=[value, other, value])
    env.close()


def test_train_value_and_plan_wm_with_it_from_the_command_line(capsys, push_data, tmp_path):
    from embodylab.world_models.config import TrainWMConfig, training_model_config
    from embodylab.world_models.training import train_world_model

    run = tmp_path / "wm"
    model_config = replace(training_model_config(), d_model=16)
    train_world_model(
        TrainWMConfig(
            dataset=push_data,
            out=run,
            steps=2,
            batch_size=4,
            model_config=model_config,
            val_every=2,
            progress=False,
        )
    )
    value = tmp_path / "value"
    code, out, err = run_cli(
        capsys,
        "train-value",
        "--dataset",
        str(push_data),
        "--out",
        str(value),
        "--steps",
        "5",
        "--hidden",
        "8",
        "--val-every",
        "2",
    )
    assert code == 0, err
    assert "held-out RMSE" in out and (value / "value.pt").exists()
    code, out, err = run_cli(
        capsys, "plan-wm", str(run), "--cost", "learned", "--value", str(value), "--episodes", "1",
        "--samples", "8", "--iterations", "1", "--elites", "4", "--horizon", "2",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads((run / "plan_wm.json").read_text())
    assert report["value"] == str(value) and report["mppi"]["cost"] == "learned"
    # The value needs the learned reward; and a missing value is a one-line error.
    code, out, err = run_cli(capsys, "plan-wm", str(run), "--value", str(value), "--episodes", "1")
    assert code == 2 and "learned reward" in err and "Traceback" not in out + err
    code, out, err = run_cli(
        capsys, "plan-wm", str(run), "--cost", "learned", "--value", str(tmp_path / "none"), "--episodes", "1"
    )
    assert code == 2 and "no value at" in err
    code, out, err = run_cli(
        capsys, "train-value", "--dataset", str(tmp_path / "nothing"), "--out", str(value)
    )
    assert code == 2 and "Traceback" not in out + err
