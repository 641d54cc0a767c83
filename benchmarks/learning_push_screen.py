"""Screening what makes SAC+HER learn LabPush from 20 demonstrations (slow; not part of `make test`).

Short runs (default 20k env steps, one seed, 20 evaluation episodes every 2.5k steps) of named settings
that differ from the library defaults in a few fields of `Sac`, its `SacDemos` or the `TrainConfig`; the full 50k-step claim is
`benchmarks/learning.py --groups push_demos`. Runs go to `runs/screen/NAME_sSEED/` one after the other
(one torch thread); results are written after each run to benchmarks/results/learning_push_screen.json.

    python benchmarks/learning_push_screen.py --settings reset_0 reset_0.5
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import tyro
from common import machine_info, write_json

RESULTS = Path(__file__).parent / "results"

SETTINGS: dict[str, dict[str, object]] = {
    "reset_0": {"reset_prob": 0.0},
    "reset_0.25": {"reset_prob": 0.25},
    "reset_0.5": {"reset_prob": 0.5},
    "reset_0.8": {"reset_prob": 0.8},
    "reset_0.5_bc_0": {"reset_prob": 0.5, "bc_weight": 0.0},
    "reset_0.5_net256": {"reset_prob": 0.5, "net_arch": (256, 256)},
    "reset_0.5_utd2": {"reset_prob": 0.5, "gradient_steps": 100},
    "reset_0.5_ln": {"reset_prob": 0.5, "critic_layer_norm": True},
    "reset_0.5_ln_utd2": {"reset_prob": 0.5, "critic_layer_norm": True, "gradient_steps": 100},
    "reset_0.5_dense": {"reset_prob": 0.5, "reward_type": "dense"},
    "reset_0.5_qbc": {"reset_prob": 0.5, "bc_q_alpha": 2.5},
    "reset_0.5_qbc_ln_dense": {
        "reset_prob": 0.5,
        "bc_q_alpha": 2.5,
        "critic_layer_norm": True,
        "reward_type": "dense",
    },
    "reset_0.8_ln_utd2": {"reset_prob": 0.8, "critic_layer_norm": True, "gradient_steps": 100},
}
"""name -> fields that differ from the defaults: of `SacDemos` (reset_prob, bc_*), of `Sac`, or of
`TrainConfig` (reward_type). Before the configs were nested `reset_prob` was `demo_reset_prob`."""


@dataclass
class ScreenConfig:
    settings: list[str] = field(default_factory=lambda: ["reset_0.5"])
    steps: int = 20_000
    seed: int = 0
    demos: int = 20
    eval_every: int = 2500
    eval_episodes: int = 20
    env: str = "embodylab/LabPush-v0"
    out: Path = RESULTS / "learning_push_screen.json"
    runs: Path = Path("runs/screen")


def run_setting(name: str, config: ScreenConfig) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from embodylab.policies.config import Her, Sac, SacDemos, TrainConfig
    from embodylab.policies.rl import train

    def overrides(cls: type) -> dict:
        return {k: v for k, v in SETTINGS[name].items() if k in {f.name for f in fields(cls)}}

    run_dir = config.runs / f"{name}_s{config.seed}"
    demos = SacDemos(record=config.demos, **overrides(SacDemos))
    train_config = TrainConfig(
        env=config.env,
        algo=Sac(her=Her(), demos=demos, **overrides(Sac)),
        steps=config.steps,
        seed=config.seed,
        out=str(run_dir),
        eval_every=config.eval_every,
        eval_episodes=config.eval_episodes,
        video=False,
        **overrides(TrainConfig),
    )
    if (run_dir / "config.json").exists():  # an interrupted earlier invocation: continue it
        train_config = TrainConfig(resume=str(run_dir))
    start = time.perf_counter()
    train(train_config)
    wall = time.perf_counter() - start
    with (run_dir / "evaluations.csv").open() as f:
        curve = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return {
        "setting": name,
        "overrides": SETTINGS[name],
        "seed": config.seed,
        "success_by_step": {int(row["step"]): row["success_rate"] for row in curve},
        "best_success": max((row["success_rate"] for row in curve), default=None),
        "wall_time_s": round(wall, 1),
        "command": f"python benchmarks/learning_push_screen.py --settings {name} --steps {config.steps} "
        f"--seed {config.seed}",
    }


def main(config: ScreenConfig) -> None:
    unknown = sorted(set(config.settings) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; valid settings: {', '.join(SETTINGS)}")
    previous = {}
    if config.out.exists():  # keep settings screened by earlier invocations
        import json

        previous = json.loads(config.out.read_text()).get("settings", {})
    for name in config.settings:
        result = run_setting(name, config)
        previous[name] = result
        steps = "  ".join(f"{s / 1000:g}k {v:.2f}" for s, v in result["success_by_step"].items())
        print(f"{name:16s} {steps}  ({result['wall_time_s']:.0f} s)", flush=True)
        write_json(
            config.out,
            {
                "machine": machine_info(),
                "command": "OMP_NUM_THREADS=1 nice -n 10 taskset -c 1 python benchmarks/learning_push_screen.py "
                "--settings NAME (each setting's own command is in its entry)",
                "env": config.env,
                "demos": config.demos,
                "steps": config.steps,
                "eval_episodes": config.eval_episodes,
                "note": "1 seed per setting; wall times are approximate (shared 2-core machine, one core used, "
                "processes paused at times by other jobs): env steps are the axis",
                "settings": previous,
            },
        )


if __name__ == "__main__":
    main(tyro.cli(ScreenConfig))
