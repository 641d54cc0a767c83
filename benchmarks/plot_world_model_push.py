"""The LabPush planners measured so far, side by side: success per training seed and the mean, against the
70% bar of issue 7 and SAC+HER at the same data budget.

Reads the result files under benchmarks/results (each written by the command the README names beside its
numbers); a file that is missing is left out of the picture. Writes benchmarks/results/world_model_push.png.

    python benchmarks/plot_world_model_push.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

RESULTS = Path(__file__).parent / "results"


@dataclass
class PlotConfig:
    results: Path = RESULTS
    out: Path = RESULTS / "world_model_push.png"


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def planner_variants(results: Path) -> list[tuple[str, list[float]]]:
    """(label, success rate per training seed) of every LabPush planner whose result file exists."""
    variants = []
    main = _read(results / "world_model.json")
    if main and "mppi_push_earlier" in main:
        variants.append(("one model\n2,500 steps", main["mppi_push_earlier"]["success_rate"]))
    small = _read(results / "world_model_push_ensemble3.json")
    if small:
        variants.append(("ensemble of 3\n2,500 steps", small["claims"]["mppi_push"]["success_rate"]))
    if main:
        variants.append(
            ("ensemble of 3\n7,500 steps\n(benchmark)", main["claims"]["mppi_push"]["success_rate"])
        )
    heldout = _read(results / "world_model_push_heldout.json")
    if heldout:
        variants.append(("the same,\n20 more episodes\nper seed", heldout["success_rate"]))
    learned = _read(results / "world_model_push_learned_reward.json")
    if learned:
        variants.append(("the same,\nlearned reward", learned["success_rate"]))
    value = _read(results / "world_model_push_learned_value.json")
    if value and "default" in value.get("variants", {}):
        variants.append(
            ("the same,\nlearned reward\n+ learned value", value["variants"]["default"]["success_rate"])
        )
    simulator = _read(results / "mppi_simulator.json")
    if simulator:
        variants.append(("simulator\nas the model", [simulator["success_rate"]]))
    learning = _read(results / "learning.json")
    if learning and "push_demos" in learning.get("groups", {}):
        variants.append(
            ("SAC+HER\n20 demos, 50k\n(best eval)", learning["groups"]["push_demos"]["best_success"])
        )
    return variants


def plot(variants: list[tuple[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.35 * len(variants) + 1.5, 3.6))
    x = np.arange(len(variants))
    means = [100 * float(np.mean(rates)) for _, rates in variants]
    ax.bar(x, means, width=0.6, color="#8fb3d9", label="mean over training seeds")
    for i, (_, rates) in enumerate(variants):
        ax.scatter(np.full(len(rates), i), 100 * np.asarray(rates), color="#1f4e79", s=14, zorder=3)
        ax.text(i, max(means[i], 100 * max(rates)) + 2, f"{means[i]:.0f}%", ha="center", fontsize=8)
    ax.axhline(70, color="#c0392b", linestyle="--", linewidth=1, label="issue 7 bar (70%)")
    ax.set_xticks(x, [label for label, _ in variants], fontsize=7)
    ax.set_ylim(0, 110)
    ax.set_ylabel("LabPush success (%)")
    ax.set_title("MPPI over learned models, 45k env steps of data (dots: training seeds)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(config: PlotConfig) -> None:
    variants = planner_variants(config.results)
    if not variants:
        raise SystemExit(f"no LabPush planner results under {config.results}")
    plot(variants, config.out)
    for label, rates in variants:
        print(f"{label.replace(chr(10), ' '):45s} {[round(r, 2) for r in rates]} mean {np.mean(rates):.2f}")
    print(f"wrote {config.out}")


if __name__ == "__main__":
    main(tyro.cli(PlotConfig))
