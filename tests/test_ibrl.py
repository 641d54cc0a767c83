"""Imitation-bootstrapped RL (`AlgoConfig.ibrl`, `embodylab.policies.ibrl`): the cloned proposal, the
critic's choice between it and the actor, and a run that trains, resumes and evaluates with it."""

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minari")

import gymnasium as gym  # noqa: E402
import torch as th  # noqa: E402

from embodylab.policies.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from embodylab.policies.config import ConfigError, Her, Sac, SacDemos, TrainConfig, load_config  # noqa: E402
from embodylab.policies.demos import load_demo_episodes, record_demos  # noqa: E402
from embodylab.policies.evaluation import evaluate  # noqa: E402
from embodylab.policies.factory import make_env, make_model  # noqa: E402
from embodylab.policies.ibrl import BCProposal, better_action, fit_proposal  # noqa: E402
from embodylab.policies.rl import train  # noqa: E402

BASE = TrainConfig(env="LabReach", algo=Sac(her=Her()), steps=400, eval_every=0, video=False, progress=False)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    with make_env(BASE) as env:
        path = record_demos(env, 3, tmp_path_factory.mktemp("ibrl") / "demos")
        return path, load_demo_episodes(path, env.observation_space, env.action_space), env.observation_space


def test_the_proposal_clones_the_demonstrations_and_then_stays_frozen(demos):
    _, episodes, space = demos
    proposal = BCProposal(space, 4, hidden=32)
    actions = np.concatenate([e["actions"] for e in episodes])
    observations = {
        k: th.as_tensor(np.concatenate([e["observations"][k][:-1] for e in episodes])) for k in space
    }
    with th.no_grad():
        untrained = float((proposal(observations) - th.as_tensor(actions)).square().sum(1).mean())
    loss = fit_proposal(proposal, episodes, updates=300, seed=0)
    assert bool(proposal.fitted)
    assert loss < 0.5 * untrained
    # A parent switched to training mode (SB3 does, for every update) leaves the normaliser alone.
    proposal.train(True)
    assert not proposal.training
    count = proposal.normalizer.running_count.clone()
    proposal(observations)
    assert proposal.normalizer.running_count == count


def test_fitting_repeats_with_the_seed(demos):
    _, episodes, space = demos
    weights = []
    for _ in range(2):
        th.manual_seed(0)
        proposal = BCProposal(space, 4, hidden=16)
        fit_proposal(proposal, episodes, updates=50, seed=3)
        weights.append(proposal.net[0].weight.detach().clone())
    assert th.equal(*weights)


def test_fitting_needs_updates_and_steps(demos):
    _, episodes, space = demos
    with pytest.raises(ValueError, match="updates must be at least 1"):
        fit_proposal(BCProposal(space, 4), episodes, updates=0)
    empty = [{**episodes[0], "actions": episodes[0]["actions"][:0]}]
    empty[0]["observations"] = {k: v[:1] for k, v in episodes[0]["observations"].items()}
    with pytest.raises(ValueError, match="no demonstrated step"):
        fit_proposal(BCProposal(space, 4), empty, updates=1)


class _LinearTwinCritic(th.nn.Module):
    """Q(s, a) = sum(a * w) for two networks, the second one lower by `gap`."""

    def __init__(self, w, gap=0.1):
        super().__init__()
        self.w, self.gap = th.as_tensor(w), gap

    def forward(self, obs, actions):
        q = (actions * self.w).sum(1, keepdim=True)
        return q, q - self.gap


def test_the_critic_picks_the_better_action_per_row():
    critic = _LinearTwinCritic([1.0, 0.0])
    first = th.tensor([[0.5, 0.0], [-0.5, 0.0], [0.2, 0.0]])
    second = th.tensor([[0.1, 9.0], [0.3, -9.0], [0.2, 1.0]])
    chosen = better_action(critic, None, first, second)
    # Row 0: first is rated higher; row 1: second; row 2: a tie keeps first.
    assert th.equal(chosen, th.stack([first[0], second[1], first[2]]))


def test_ibrl_needs_at_least_one_cloning_update():
    demos = SacDemos(record=2, ibrl=True, ibrl_bc_updates=0)
    with pytest.raises(ConfigError, match="ibrl_bc_updates must be at least 1"):
        replace(BASE, algo=Sac(her=Her(), demos=demos)).validate()


def test_an_ibrl_run_trains_resumes_and_evaluates_with_its_proposal(demos, tmp_path):
    dataset, _, _ = demos
    demos = SacDemos(dataset=str(dataset), ibrl=True, ibrl_bc_updates=100, ibrl_bc_hidden=32)
    algo = Sac(
        net_arch=(16, 16), batch_size=32, learning_starts=100, gradient_steps=5, her=Her(), demos=demos
    )
    config = replace(BASE, out=str(tmp_path / "run"), checkpoint_every=200, algo=algo)
    run_dir = train(replace(config, steps=200))
    model = make_model(load_config(run_dir), make_env(config), with_demos=False)
    assert not bool(model.policy.bc_proposal.fitted)  # fitted weights come only from the checkpoint
    load_checkpoint(model, latest_checkpoint(run_dir), restore_buffer=False)
    assert bool(model.policy.bc_proposal.fitted)
    fitted = model.policy.bc_proposal.net[0].weight.detach().clone()

    # Acting: each action is the actor's or the proposal's, whichever the critic rates higher.
    env = make_env(config)
    obs, _ = env.reset(seed=5)
    batch, _ = model.policy.obs_to_tensor(obs)
    with th.no_grad():
        actor = model.policy.actor(batch, deterministic=True)
        cloned = model.policy.bc_proposal(batch)
        expected = better_action(model.policy.critic, batch, actor, cloned)
    action, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(action, expected[0].numpy(), atol=1e-6)
    assert any(np.allclose(action, a[0].numpy(), atol=1e-6) for a in (actor, cloned))

    # Resuming continues with the proposal the run fitted (not a refit) up to the configured steps.
    (run_dir / "config.json").write_text(replace(load_config(run_dir), steps=400).to_json())
    train(TrainConfig(resume=str(run_dir), progress=False))
    resumed = make_model(load_config(run_dir), make_env(config), with_demos=False)
    state = load_checkpoint(resumed, latest_checkpoint(run_dir), restore_buffer=False)
    assert state["num_timesteps"] == 400
    assert th.equal(resumed.policy.bc_proposal.net[0].weight, fitted)

    report = evaluate(run_dir, episodes=2)
    assert report["episodes"] == 2 and np.isfinite(report["mean_return"])
    assert isinstance(env.observation_space, gym.spaces.Dict)
    env.close()


def test_the_td_target_bootstraps_from_the_proposal_where_the_critic_prefers_it(demos, tmp_path):
    from embodylab.policies.rl import _fit_proposal

    dataset, _, _ = demos
    demos = SacDemos(dataset=str(dataset), ibrl=True, ibrl_bc_updates=20)
    algo = Sac(net_arch=(16, 16), learning_starts=50, gradient_steps=1, her=Her(), demos=demos)
    config = replace(BASE, out=str(tmp_path / "t"), algo=algo)
    model = make_model(config, make_env(config))
    model.learn(60)
    model.train(gradient_steps=3, batch_size=32)
    assert "train/ibrl_target_proposal_share" not in model.logger.name_to_value  # not fitted: plain SAC
    _fit_proposal(model, config)
    model.train(gradient_steps=3, batch_size=32)
    assert 0.0 <= model.logger.name_to_value["train/ibrl_target_proposal_share"] <= 1.0
