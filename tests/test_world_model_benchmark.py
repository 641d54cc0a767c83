import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import world_model  # noqa: E402
import world_model_push_value  # noqa: E402

from embodylab.world_models.config import TrainValueConfig  # noqa: E402
from embodylab.world_models.data import load_dataset  # noqa: E402
from embodylab.world_models.planning import MPPIConfig  # noqa: E402


def test_a_tiny_benchmark_run_with_a_dagger_round_writes_its_json(tmp_path):
    config = world_model.WorldModelBenchConfig(
        seeds=(0,), clutter_episodes=3, test_episodes=1, push_episodes=(2, 1, 0), clutter_steps=2, push_steps=2, push_ensemble=1,
        batch_size=4, window=8, d_model=16, samples=2, mppi_episodes=1, dagger_episodes=1, dagger_steps=2,
        mppi=MPPIConfig(horizon=2, samples=4, iterations=1, elites=2, cost="shaped"),
        work=tmp_path / "work", out=tmp_path / "world_model.json",
    )  # fmt: skip
    world_model.main(config)
    result = json.loads((tmp_path / "world_model.json").read_text())
    push = result["runs"][0]["push"]
    assert push["dagger"]["episodes"] == 1 and push["dagger"]["fine_tune_steps"] == 2
    # The data budget counts the planner's own episodes.
    assert result["claims"]["mppi_push"]["data_env_steps"] == 100 * (2 + 1 + 1)
    assert len(load_dataset(tmp_path / "work" / "seed0" / "push_dagger_data")) == 4
    assert (tmp_path / "world_model_rmse.png").exists()
    for claim in result["claims"].values():
        assert isinstance(claim["met"], bool)

    # Only the planner again, over a 2-model ensemble trained in 2 processes: the LabClutter results stay.
    clutter = result["runs"][0]["clutter"]
    rerun = replace(
        config, parts="push", push_ensemble=2, workers=2, dagger_episodes=0,
        mppi=replace(config.mppi, disagreement_weight=1.0),
    )  # fmt: skip
    world_model.main(rerun)
    merged = json.loads((tmp_path / "world_model.json").read_text())
    assert merged["runs"][0]["clutter"] == clutter
    push = merged["runs"][0]["push"]
    assert push["ensemble"] == 2 and push["member_seeds"] == [0, 1000] and push["dagger"] is None
    assert (tmp_path / "work" / "seed0" / "push_member1" / "checkpoint" / "weights.pt").exists()
    assert merged["mppi_push_earlier"]["data_env_steps"] == 400
    assert merged["claims"]["mppi_push"]["data_env_steps"] == 300
    assert "ensemble of 2" in merged["claims"]["mppi_push"]["model"]
    assert merged["push_rerun"]["config"]["parts"] == "push"

    # The learned reward closed by a learned value, over the same work directory's ensemble: a named variant.
    value_config = world_model_push_value.PushValueConfig(
        work=tmp_path / "work", seeds=(0,), episodes=1, value=TrainValueConfig(steps=3, batch_size=8, hidden=8),
        mppi=MPPIConfig(horizon=2, samples=4, iterations=1, elites=2, cost="learned"), name="tiny",
        out=tmp_path / "value.json",
    )  # fmt: skip
    world_model_push_value.main(value_config)
    world_model_push_value.main(replace(value_config, name="again", value_per_member=True))
    variants = json.loads((tmp_path / "value.json").read_text())["variants"]
    assert set(variants) == {"tiny", "again"}
    assert variants["tiny"]["runs"]["0"]["models"][1].endswith("push_member1")
    assert (tmp_path / "work" / "seed0" / "push_value" / "value.pt").exists()
    assert len(variants["again"]["runs"]["0"]["member_values"]) == 2  # one value per ensemble member
    assert (tmp_path / "work" / "seed0" / "push_value1" / "value.pt").exists()

    # Only the LabClutter models again (without the agent's latent): the LabPush results stay.
    world_model.main(replace(rerun, parts="clutter", agent_latent=False, workers=1))
    again = json.loads((tmp_path / "world_model.json").read_text())
    assert again["runs"][0]["push"] == merged["runs"][0]["push"]
    assert again["claims"]["mppi_push"] == merged["claims"]["mppi_push"]
    assert again["push_rerun"] == merged["push_rerun"] and again["config"] == merged["config"]
    assert again["clutter_rerun"]["config"]["agent_latent"] is False
    assert again["runs"][0]["clutter"].keys() == clutter.keys()
    assert again["runs"][0]["clutter"] != clutter  # trained again, differently
    with pytest.raises(SystemExit, match="holds seeds"):
        world_model.main(replace(rerun, parts="clutter", seeds=(0, 1), workers=1))


def test_the_planner_comparison_plot_takes_the_result_files_there_are(tmp_path):
    import plot_world_model_push

    claim = {"success_rate": [0.9, 0.7]}
    (tmp_path / "world_model.json").write_text(
        json.dumps({"claims": {"mppi_push": claim}, "mppi_push_earlier": {"success_rate": [0.5, 0.2]}})
    )
    (tmp_path / "world_model_push_learned_reward.json").write_text(json.dumps({"success_rate": [0.6, 0.2]}))
    (tmp_path / "world_model_push_learned_value.json").write_text(
        json.dumps({"variants": {"mean": {"success_rate": [0.1]}, "default": {"success_rate": [0.5, 0.6]}}})
    )
    variants = plot_world_model_push.planner_variants(tmp_path)
    assert [rates for _, rates in variants] == [[0.5, 0.2], [0.9, 0.7], [0.6, 0.2], [0.5, 0.6]]
    out = tmp_path / "push.png"
    plot_world_model_push.main(plot_world_model_push.PlotConfig(results=tmp_path, out=out))
    assert out.stat().st_size > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no LabPush planner results"):
        plot_world_model_push.main(plot_world_model_push.PlotConfig(results=empty, out=out))
