import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import world_model  # noqa: E402

from embodylab.world_models.data import load_dataset  # noqa: E402
from embodylab.world_models.planning import MPPIConfig  # noqa: E402


def test_a_tiny_benchmark_run_with_a_dagger_round_writes_its_json(tmp_path):
    config = world_model.WorldModelBenchConfig(
        seeds=(0,), clutter_episodes=3, test_episodes=1, push_episodes=(2, 1, 0), clutter_steps=2, push_steps=2,
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
