"""Smoke test of benchmarks/throughput.py with tiny counts (the real run is `make bench`)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import throughput  # noqa: E402


def test_env_rate_and_raw_limit_are_measured_on_the_same_trajectories():
    result = throughput.time_env("embodylab/LabReach-v0", steps=60, seed=0)
    assert result["substeps"] == 20 and result["timestep"] == 0.002
    assert result["env_steps_per_s"] > 0 and result["raw_limit_env_steps_per_s"] > 0
    # Timings themselves are not asserted (machine load moves them); the ratio must be their quotient.
    assert result["ratio_to_limit"] == result["env_steps_per_s"] / result["raw_limit_env_steps_per_s"]


def test_harness_writes_json_markdown_and_chart(tmp_path):
    config = throughput.ThroughputConfig(
        env_ids=["embodylab/LabReach-v0"],
        steps=20,
        resets=2,
        render_frames=2,
        render_sizes=(16,),
        vec_envs=2,
        vec_steps=3,
        repeats=1,
        team_sizes=(2,),
        team_steps=5,
        peers=False,
        out=tmp_path / "throughput.json",
    )
    throughput.main(config)
    results = json.loads((tmp_path / "throughput.json").read_text())
    assert set(results["embodylab"]) == {"embodylab/LabReach-v0"}
    assert results["team"]["2"]["env_steps_per_s"] > 0 and results["team"]["2"]["dof"] > 0
    assert results["acceptance"]["max_lab_reset_ms"]["met"] in (True, False)
    assert results["acceptance"]["pickplace_over_fetch"]["met"] is None  # peers not measured
    assert (tmp_path / "throughput.md").read_text().startswith("| env |")
    assert (tmp_path / "throughput.png").stat().st_size > 1000


def test_a_seed_added_to_a_group_joins_the_seeds_already_in_the_results(tmp_path):
    import learning

    def run(seed: int, success: float) -> dict:
        curve = [{"step": 2000.0, "success_rate": success, "wall_time_s": 1.0}]
        return {
            "group": "reach",
            "seed": seed,
            "curve": curve,
            "steps_to_bar": 2000.0 if success >= 0.95 else None,
            "final_success": success,
            "best_success": success,
            "wall_time_s": 1.0,
            "env_steps": 2000.0,
            "unfinished": False,
        }

    out = tmp_path / "learning.json"
    out.write_text(json.dumps({"groups": {"other": {"kept": True}}, "earlier": 1}))
    learning._merge_into(out, {"reach": [run(0, 1.0), run(1, 0.5)]})
    learning._merge_into(out, {"reach": [run(2, 1.0), run(1, 1.0)]})  # seed 1 rerun, seed 2 added
    document = json.loads(out.read_text())
    reach = document["groups"]["reach"]
    assert [r["seed"] for r in reach["runs"]] == [0, 1, 2]
    assert reach["best_success"] == [1.0, 1.0, 1.0] and reach["seeds_run"] == 3 and reach["met"]
    assert document["groups"]["other"] == {"kept": True} and document["earlier"] == 1
    assert (tmp_path / "learning_reach.png").exists()


def test_every_learning_group_trains_the_config_it_trained_as_a_flat_train_config():
    """tests/data/learning_groups_v0.json: each group's run of seed 0 as the flat (version 0) TrainConfig
    that benchmarks/learning.py built before the configs were nested."""
    from dataclasses import replace

    import learning

    from embodylab.policies.config import upgrade

    flat = json.loads((Path(__file__).parent / "data" / "learning_groups_v0.json").read_text())
    assert set(flat) == set(learning.GROUPS)
    for name, group in learning.GROUPS.items():
        run = replace(
            group.config,
            seed=0,
            out=f"runs/bench/{name}_s0",
            video=False,
            progress=False,
            stop_success=group.bar,
            stop_patience=3,
        )
        assert upgrade(flat[name]) == run, name
