"""Training, checkpoints, resume, evaluation and demonstrations of `embodylab.policies` (tiny, fast runs)."""

import dataclasses
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("minari")

from embodylab.cli import main  # noqa: E402
from embodylab.policies.checkpoint import (  # noqa: E402
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
)
from embodylab.policies.config import (  # noqa: E402
    ALGORITHMS,
    DEFAULT_PRESET,
    TASK_PRESETS,
    ConfigError,
    Demos,
    Her,
    Ppo,
    Sac,
    SacDemos,
    Td3,
    Tqc,
    TrainConfig,
    load_config,
)
from embodylab.policies.demos import DemoDatasetError, load_demo_episodes, record_demos  # noqa: E402
from embodylab.policies.evaluation import evaluate  # noqa: E402
from embodylab.policies.factory import make_env, make_model  # noqa: E402
from embodylab.policies.rl import train  # noqa: E402

# Networks and batches small enough that a 1,000-step run takes a second or two on 2 cores.
TINY = Sac(net_arch=(16, 16), batch_size=32, learning_starts=100, gradient_steps=5, her=Her())
TINY_PPO = Ppo(net_arch=(16, 16), batch_size=32, n_steps=256)


def tiny_config(out: Path, **overrides) -> TrainConfig:
    defaults = dict(
        env="LabReach",
        algo=TINY,
        steps=1000,
        out=str(out),
        eval_every=0,
        checkpoint_every=500,
        video=False,
        progress=False,
    )
    return TrainConfig(**{**defaults, **overrides})


def with_demos(algo: Sac, dataset: Path, **fields) -> Sac:
    return replace(algo, demos=SacDemos(dataset=str(dataset), **fields))


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory) -> Path:
    """A finished 1,000-step SAC+HER run with two evaluations."""
    out = tmp_path_factory.mktemp("runs") / "sac"
    return train(tiny_config(out, eval_every=500, eval_episodes=2))


def load_latest(run_dir: Path, **kwargs):
    config = load_config(run_dir)
    model = make_model(config, make_env(config))
    state = load_checkpoint(model, latest_checkpoint(run_dir), **kwargs)
    return model, state


# ---- training and checkpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["sac", "td3", "tqc", "ppo"])
def test_a_1000_step_run_of_each_algorithm_writes_a_loadable_checkpoint(tmp_path, algo):
    fields = {"net_arch": (16, 16), "batch_size": 32}
    if algo == "ppo":
        config = TINY_PPO
    else:
        config = ALGORITHMS[algo](**fields, learning_starts=100, gradient_steps=5, her=Her())
    run_dir = train(tiny_config(tmp_path / algo, algo=config))
    model, state = load_latest(run_dir)
    assert state["num_timesteps"] == model.num_timesteps >= 1000
    assert (run_dir / "config.json").is_file()
    assert list(run_dir.glob("tb/events.out.tfevents.*"))
    if algo != "ppo":
        assert model.replay_buffer.size() == 1000


def test_config_json_recreates_the_run_config(sac_run):
    config = load_config(sac_run)
    assert config.env == "embodylab/LabReach-v0"  # the full id, whatever form was given
    assert config.algo == TINY.resolved("embodylab/LabReach-v0")
    assert config.algo.gamma == 0.95  # the task preset's value, recorded
    assert config.version == 1 and json.loads(config.to_json())["algo"]["name"] == "sac"
    assert TrainConfig.from_json(config.to_json()) == config


def test_config_json_with_an_unknown_key_is_rejected_by_name():
    text = json.dumps({"version": 1, "algo": {"name": "sac", "learning_rat": 1e-3}})
    with pytest.raises(ConfigError, match="learning_rat"):
        TrainConfig.from_json(text)
    with pytest.raises(ConfigError, match="learning_rat"):  # version 0: the flat format
        TrainConfig.from_json(json.dumps({"algo": "sac", "algo_config": {"learning_rat": 1e-3}}))


def test_task_presets_fill_only_the_fields_left_unset():
    assert Sac().resolved("embodylab/LabPush-v0").gamma == 0.98
    assert Sac().resolved("embodylab/LabReach-v0").gamma == 0.95
    assert Sac(gamma=0.9).resolved("embodylab/LabPush-v0").gamma == 0.9


def test_an_env_of_another_library_trains_with_the_default_preset():
    # make_model takes any goal env (benchmarks/learning_fetch.py hands it Fetch's); an id embodylab does
    # not know takes the default preset instead of failing the id lookup.
    sac_her = Sac(her=Her())
    env = make_env(TrainConfig(env="LabReach", algo=sac_her))
    foreign = make_model(TrainConfig(env="OtherLib/Reach-v1", algo=sac_her, steps=1000), env)
    assert foreign.gamma == DEFAULT_PRESET["gamma"] != TASK_PRESETS["embodylab/LabReach-v0"]["gamma"]
    assert make_model(TrainConfig(env="LabReach", algo=sac_her, steps=1000), env).gamma == 0.95
    # the relative goal features read the gripper where that library's observation holds it
    moved = make_model(TrainConfig(env="OtherLib/Reach-v1", algo=sac_her, steps=1000), env, tcp_slice=(0, 3))
    assert moved.actor.features_extractor.tcp_slice == slice(0, 3)
    assert foreign.actor.features_extractor.tcp_slice == slice(14, 17)


def test_options_exist_only_on_the_algorithms_that_implement_them():
    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    assert not names(Ppo) & {"her", "demos", "random_action_prob", "n_step_return", "learning_starts"}
    assert {"her", "demos", "random_action_prob", "n_step_return"} <= names(Td3) & names(Tqc) & names(Sac)
    assert "ent_coef" in names(Sac) & names(Tqc) and "ent_coef" not in names(Td3)
    assert not names(Td3) & {"critic_layer_norm", "action_l2"} and not names(Tqc) & {"action_l2"}
    sac_only = {"bc_weight", "bc_q_alpha", "ibrl", "ibrl_bc_updates", "ibrl_bc_hidden"}
    assert sac_only <= names(SacDemos) and not sac_only & names(Demos)
    assert "energy_priority" in names(Her) and "reset_prob" in names(Demos)


def test_demonstrations_need_exactly_one_source():
    for demos in (Demos(), Demos(record=2, dataset="runs/x/demos")):
        with pytest.raises(ConfigError, match="--record N .* or --dataset PATH"):
            TrainConfig(algo=Td3(her=Her(), demos=demos)).validate()


@pytest.mark.parametrize("name", ["sac_her", "sac_her_demos", "ppo", "td3_unresolved"])
def test_a_config_json_of_version_0_loads_as_the_config_it_ran(name):
    """tests/data/config_v0_*.json: config.json files written by the flat TrainConfig (version 0)."""
    path = Path(__file__).parent / "data" / f"config_v0_{name}.json"
    flat = json.loads(path.read_text())
    config = load_config(path)
    config.validate()
    assert (config.version, config.algo.name, config.env, config.steps) == (
        1,
        flat["algo"],
        flat["env"],
        flat["steps"],
    )
    assert (config.her is not None) == flat["her"]
    assert (config.demos is not None) == bool(flat["demos"] or flat["demo_dataset"])
    options = flat["algo_config"]
    own = {f.name for f in dataclasses.fields(config.algo)} - {"her", "demos"}
    for key in own:
        expected = tuple(options[key]) if key == "net_arch" else options[key]
        assert getattr(config.algo, key) == expected, key
    if config.her:
        assert dataclasses.asdict(config.her) == {k: options[k] for k in dataclasses.asdict(config.her)}
    if config.demos:
        assert (
            config.demos.dataset == flat["demo_dataset"]
            and config.demos.reset_prob == options["demo_reset_prob"]
        )
        assert (config.demos.ibrl, config.demos.bc_weight) == (options["ibrl"], options["bc_weight"])
    curriculum = config.curriculum
    assert (curriculum.bandit if curriculum else "none") == flat["curriculum"]
    assert TrainConfig.from_json(config.to_json()) == config


def test_only_the_last_two_checkpoints_are_kept(sac_run):
    assert [p.name for p in list_checkpoints(sac_run)] == ["step_500", "step_1000"]


def test_an_unfinished_checkpoint_write_is_ignored(sac_run, tmp_path):
    run_dir = shutil.copytree(sac_run, tmp_path / "run")
    (run_dir / "checkpoints" / ".step_1500.tmp").mkdir()  # a kill during the write leaves this behind
    assert latest_checkpoint(run_dir).name == "step_1000"


def test_same_seed_gives_the_same_replay_buffer(tmp_path):
    buffers = []
    for name in ("a", "b"):
        run_dir = train(tiny_config(tmp_path / name, steps=300))
        with np.load(latest_checkpoint(run_dir) / "buffer.npz") as data:
            buffers.append({key: data[key] for key in data.files})
    assert buffers[0].keys() == buffers[1].keys()
    for key in buffers[0]:
        np.testing.assert_array_equal(buffers[0][key], buffers[1][key], err_msg=key)


def test_resume_after_a_kill_continues_the_step_count_and_the_replay_buffer(tmp_path):
    run_dir = tmp_path / "killed"
    config = tiny_config(run_dir, checkpoint_every=300)
    # A real SIGKILL of a training process, right after its checkpoint at step 600 is written.
    script = textwrap.dedent(
        f"""
        import os, signal
        import embodylab.policies.rl as rl
        from embodylab.policies.config import TrainConfig

        def save_then_die(model, run_dir):
            path = save(model, run_dir)
            if model.num_timesteps >= 600:
                os.kill(os.getpid(), signal.SIGKILL)
            return path

        save, rl.save_checkpoint = rl.save_checkpoint, save_then_die
        rl.train(TrainConfig.from_json({config.to_json()!r}))
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint.name == "step_600"
    saved = json.loads((checkpoint / "state.json").read_text())
    model, _ = load_latest(run_dir)
    assert model.num_timesteps == 600
    assert model.replay_buffer.size() == saved["buffer"]["size"] == 600

    train(TrainConfig(resume=str(run_dir)))
    model, state = load_latest(run_dir)
    assert state["num_timesteps"] == 1000
    # 600 transitions from before the kill plus 400 after it: the buffer was carried over, not refilled.
    assert model.replay_buffer.size() == 1000


def test_a_truncated_model_zip_gives_a_checkpoint_error_naming_it(sac_run, tmp_path):
    run_dir = shutil.copytree(sac_run, tmp_path / "run")
    model_zip = latest_checkpoint(run_dir) / "model.zip"
    model_zip.write_bytes(model_zip.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="model.zip"):
        load_latest(run_dir)


def test_a_scribbled_buffer_npz_gives_a_checkpoint_error_naming_it(sac_run, tmp_path):
    run_dir = shutil.copytree(sac_run, tmp_path / "run")
    buffer = latest_checkpoint(run_dir) / "buffer.npz"
    data = bytearray(buffer.read_bytes())
    data[100:400] = b"\xff" * 300
    buffer.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="buffer.npz"):
        load_latest(run_dir)


def test_a_buffer_with_a_wrong_shape_gives_a_checkpoint_error(sac_run, tmp_path):
    run_dir = shutil.copytree(sac_run, tmp_path / "run")
    buffer = latest_checkpoint(run_dir) / "buffer.npz"
    with np.load(buffer) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["actions"] = arrays["actions"][:, :, :2]
    np.savez(buffer, **arrays)
    with pytest.raises(CheckpointError, match="'actions' has shape"):
        load_latest(run_dir)


# ---- evaluation ---------------------------------------------------------------------------------------
def test_training_writes_the_learning_curve(sac_run):
    rows = (sac_run / "evaluations.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 3  # header, steps 500 and 1000
    assert (sac_run / "learning_curve.png").stat().st_size > 0


def test_eval_reports_success_return_and_length_and_writes_json(sac_run, tmp_path):
    run_dir = shutil.copytree(sac_run, tmp_path / "run")
    report = evaluate(run_dir, episodes=3, video=True)
    assert 0.0 <= report["success_rate"] <= 1.0
    assert report["mean_length"] == 50.0  # LabReach's time limit
    assert np.isfinite(report["mean_return"])
    assert report["step"] == 1000
    assert json.loads((run_dir / "eval.json").read_text())["episodes"] == 3
    assert (run_dir / "eval.mp4").stat().st_size > 0


def test_cli_train_then_eval(capsys, tmp_path):
    out = tmp_path / "cli"
    args = ["train", "td3", "her", "--steps", "300", "--out", str(out), "--eval-every", "0"]
    args += ["--no-progress", "--net-arch", "16", "16", "--learning-starts", "100"]
    main(args)
    assert f"to {out}/" in capsys.readouterr().out
    main(["eval", str(out), "--episodes", "2"])
    printed = capsys.readouterr().out
    assert "success rate" in printed and "mean return" in printed and str(out / "eval.json") in printed


def test_cli_eval_of_a_directory_without_a_run_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", str(tmp_path)])
    assert exit_.value.code == 2
    assert "config.json" in capsys.readouterr().err


# ---- demonstrations -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory) -> Path:
    config = TrainConfig(env="embodylab/LabReach-v0", algo=Sac(her=Her()))
    with make_env(config) as env:
        return record_demos(env, 3, tmp_path_factory.mktemp("demos"))


def test_recorded_demos_are_a_minari_dataset_of_whole_episodes(demo_dataset):
    from minari import MinariDataset

    assert MinariDataset(demo_dataset).total_episodes == 3
    with make_env(TrainConfig(algo=Sac(her=Her()))) as env:
        episodes = load_demo_episodes(demo_dataset, env.observation_space, env.action_space)
    assert [len(e["actions"]) for e in episodes] == [50, 50, 50]
    assert episodes[0]["observations"]["desired_goal"].shape == (51, 3)


def test_demo_buffer_samples_half_online_half_demonstrations(demo_dataset, tmp_path):
    config = tiny_config(tmp_path / "demo", algo=with_demos(TINY, demo_dataset))
    env = make_env(config)
    model = make_model(config, env)
    model.learning_starts = 10_000  # collect random online experience only
    model.learn(150)
    buffer = model.replay_buffer
    online_actions = buffer.actions[: buffer.size(), 0]
    demo_actions = buffer.demos.actions[: buffer.demos.size(), 0]

    batch = buffer.sample(64).actions.numpy()

    def rows_in(rows, table):
        return [bool((np.abs(table - row).max(axis=1) < 1e-7).any()) for row in rows]

    assert all(rows_in(batch[:32], online_actions)) and not any(rows_in(batch[:32], demo_actions))
    assert all(rows_in(batch[32:], demo_actions)) and not any(rows_in(batch[32:], online_actions))


@pytest.mark.parametrize("n_demos", [1, 3])
def test_every_demonstration_episode_is_sampled(tmp_path, n_demos):
    """Filled exactly, SB3's HER buffer measured a single demonstration as empty: nothing to sample."""
    config = TrainConfig(env="embodylab/LabReach-v0", algo=Sac(her=Her()))
    with make_env(config) as env:
        dataset = record_demos(env, n_demos, tmp_path / "demos")
    model = make_model(tiny_config(tmp_path / "run", algo=with_demos(TINY, dataset)), make_env(config))
    demos = model.replay_buffer.demos
    rows = demos.ep_start[: demos.size(), 0][demos.ep_length[: demos.size(), 0] > 0]
    assert sorted(set(rows.tolist())) == [50 * k for k in range(n_demos)]
    assert demos.sample(16).actions.shape == (16, 4)


def test_training_with_demos_records_them_into_the_run(tmp_path):
    run_dir = train(tiny_config(tmp_path / "demos", algo=replace(TINY, demos=SacDemos(record=2)), steps=300))
    config = load_config(run_dir)
    assert Path(config.demos.dataset).is_relative_to(run_dir.resolve() / "demos")
    assert latest_checkpoint(run_dir).name == "step_300"


def test_a_dataset_without_the_goal_fields_is_rejected_by_name(tmp_path):
    with make_env(TrainConfig(algo=Sac())) as env:
        dataset = record_demos(env, 1, tmp_path)  # vector observations: no achieved/desired goal
    with (
        make_env(TrainConfig(algo=Sac(her=Her()))) as env,
        pytest.raises(DemoDatasetError, match="observation"),
    ):
        load_demo_episodes(dataset, env.observation_space, env.action_space)


def test_a_missing_dataset_is_rejected_with_its_path(tmp_path):
    config = tiny_config(tmp_path / "run", algo=with_demos(TINY, tmp_path / "nowhere"))
    with pytest.raises(DemoDatasetError, match="nowhere"):
        make_model(config, make_env(config))


# ---- observation normalisation and behaviour cloning ----------------------------------------------------
def test_the_running_normaliser_learns_the_statistics_of_training_batches_only():
    import torch as th
    from gymnasium import spaces

    from embodylab.policies.normalization import RunningNormExtractor

    space = spaces.Dict({"b": spaces.Box(-np.inf, np.inf, (2,)), "a": spaces.Box(-np.inf, np.inf, (1,))})
    extractor = RunningNormExtractor(space)
    rng = np.random.default_rng(0)
    batches = [
        {"a": th.tensor(rng.normal(3.0, 0.5, (64, 1))), "b": th.tensor(rng.normal([-1.0, 7.0], 2.0, (64, 2)))}
        for _ in range(20)
    ]
    extractor.eval()
    extractor(batches[0])  # acting and evaluating never move the statistics
    assert extractor.running_count.item() == 0
    extractor.train()
    for batch in batches:
        extractor(batch)
    everything = np.concatenate([np.concatenate([b["a"], b["b"]], axis=1) for b in batches])
    np.testing.assert_allclose(extractor.running_mean.numpy(), everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(extractor.running_var.numpy(), everything.var(0), rtol=1e-5)
    extractor.eval()
    out = extractor({"a": th.tensor([[3.0], [100.0]]), "b": th.tensor([[-1.0, 7.0], [-1.0, 7.0]])})
    assert out.shape == (2, 3) and abs(out[0, 0]) < 0.1 and out[1, 0] == 5.0  # keys sorted, clipped at 5


def test_normalised_runs_save_the_statistics_with_the_weights(tmp_path):
    algo = replace(TINY, normalize_obs=True)
    run_dir = train(tiny_config(tmp_path / "norm", steps=300, algo=algo))
    model, _ = load_latest(run_dir)
    stats = model.policy.actor.features_extractor.running_count
    assert stats.item() > 0
    assert model.policy.critic_target.features_extractor.running_count.item() > 0


def test_sac_with_demos_clones_the_demonstrated_actions(demo_dataset, tmp_path):
    """With the Q-filtered BC loss (and no other learning signal to speak of in 300 updates), the
    policy's actions move towards the expert's on the demonstrated states."""
    from embodylab.policies.bc import DemoSAC

    def demo_error(bc_weight: float) -> float:
        algo = with_demos(
            replace(TINY, learning_starts=50, gradient_steps=300), demo_dataset, bc_weight=bc_weight
        )
        config = tiny_config(tmp_path / f"bc{bc_weight}", algo=algo)
        model = make_model(config, make_env(config))
        assert isinstance(model, DemoSAC) == (bc_weight > 0)
        model.learn(100)
        demos = model.replay_buffer.demos
        n = demos.size()
        obs = {key: value[:n, 0] for key, value in demos.observations.items()}
        actions, _ = model.predict(obs, deterministic=True)
        return float(np.abs(actions - demos.actions[:n, 0]).mean())

    assert demo_error(10.0) < 0.6 * demo_error(0.0)


def test_relative_goal_features_follow_the_relabelled_goals():
    import torch as th
    from gymnasium import spaces

    from embodylab.policies.normalization import RunningNormExtractor

    box = lambda n: spaces.Box(-np.inf, np.inf, (n,))  # noqa: E731
    space = spaces.Dict({"observation": box(21), "achieved_goal": box(3), "desired_goal": box(3)})
    extractor = RunningNormExtractor(space, relative_goals=True).eval()
    observation = th.zeros(1, 21)
    observation[0, 14:17] = th.tensor([0.1, 0.2, 0.3])  # the tcp
    obs = {"observation": observation, "achieved_goal": th.tensor([[0.5, 0.0, 0.0]])}
    features = extractor({**obs, "desired_goal": th.tensor([[0.5, 0.4, 0.0]])})
    assert features.shape == (1, 21 + 3 + 3 + 9)
    np.testing.assert_allclose(
        features[0, -9:].numpy(), [0, 0.4, 0, 0.4, -0.2, -0.3, 0.4, 0.2, -0.3], atol=1e-6
    )
    # Not a goal-conditioned position task: no relative features, no error.
    assert RunningNormExtractor(box(5), relative_goals=True).features_dim == 5
