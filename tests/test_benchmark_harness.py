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
