"""MPPI on LabPush with the learned reward and a learned terminal value (TD-MPC2's way), over the LabPush
ensembles a run of `benchmarks/world_model.py --parts push` trained.

The benchmark's planner scores predicted states by a shaped cost (`MPPIConfig.cost="shaped"`); with the
models' learned reward read-out alone it solves 47% (`world_model_push_learned_reward.json`): the reward
(minus the cube's distance to the goal) says nothing, within a 12-step horizon, about where the tool should
go before it touches the cube. Here every plan is closed by a state value fitted to the discounted returns
of the same 45k steps of data (`embodylab.world_models.value`), so the score is
sum_{h<H} gamma^h r(s_{h+1}) + gamma^H V(s_H), every term learned from the data: no shaped cost.

Per training seed s: the value is fitted with seed s on `WORK/data/push`; MPPI plans over the ensemble
`WORK/seed{s}/push`, `push_member1`, ... (the benchmark's models, untouched) on the benchmark's episode
seeds 10000 + 100 s. Each run is one variant of the value (`--name`), kept beside the others in
benchmarks/results/world_model_push_learned_value.json (a rerun of a name replaces its entry).

    python benchmarks/world_model.py --parts push --workers 2 --work runs/bench_wm_ens7500   # the models (75 min)
    python benchmarks/world_model_push_value.py --work runs/bench_wm_ens7500 --workers 2      # ~13 min
    python benchmarks/world_model_push_value.py --work runs/bench_wm_ens7500 --workers 2 --name mean \
        --value.no-reward-baseline --value.expectile 0.5
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import tyro
from common import worker_pool, write_json

from embodylab.world_models.config import TrainValueConfig
from embodylab.world_models.planning import MPPIConfig, run_planner
from embodylab.world_models.training import load_world_model
from embodylab.world_models.value import fit_value, save_value

RESULTS = Path(__file__).parent / "results"


@dataclass
class PushValueConfig:
    work: Path = Path("runs/bench_world_model")
    """work directory of a `benchmarks/world_model.py --parts push` run: data/push and seed{s}/push*"""
    seeds: tuple[int, ...] = (0, 1, 2)
    episodes: int = 10
    """MPPI episodes per seed, on episode seeds `episode_seed` + 100 s, + 1, ..."""
    episode_seed: int = 10_000
    """10000: the benchmark's episode seeds; 30000: its held-out ones (`world_model_push_heldout.json`)"""
    value: TrainValueConfig = field(default_factory=TrainValueConfig)
    """the value's fit (its dataset, out and seed are set per training seed)"""
    mppi: MPPIConfig = field(
        default_factory=lambda: MPPIConfig(
            horizon=12, samples=128, iterations=3, elites=16, cost="learned", disagreement_weight=1.0
        )
    )
    workers: int = 1
    """processes, one seed each, one torch thread each"""
    value_per_member: bool = False
    """fit one value per ensemble member (seeds s + 1000 k, as the members'), each closing its member's plans,
    so that the members' disagreement penalty counts the values' disagreement too; else one value (seed s)
    closes every member's plans"""
    name: str = "default"
    """the variant's key in the JSON"""
    out: Path = RESULTS / "world_model_push_learned_value.json"


def members(work: Path, seed: int) -> list[Path]:
    """The run directories of seed `seed`'s ensemble, member 0 first."""
    root = work / f"seed{seed}"
    found = [root / "push", *sorted(root.glob("push_member[0-9]*"), key=lambda p: int(p.name[11:]))]
    found = [p for p in found if (p / "checkpoint").is_dir()]
    if not found:
        raise FileNotFoundError(f"no LabPush models under {root}: run benchmarks/world_model.py --parts push")
    return found


def run_seed(config: PushValueConfig, seed: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    from embodylab.world_models.data import load_dataset

    runs = members(config.work, seed)
    models = [load_world_model(path)[0] for path in runs]
    data = load_dataset(config.work / "data" / "push")
    fits = []
    for k in range(len(runs) if config.value_per_member else 1):
        value_config = replace(
            config.value,
            dataset=config.work / "data" / "push",
            out=config.work / f"seed{seed}" / ("push_value" if k == 0 else f"push_value{k}"),
            seed=seed + 1000 * k,
        )
        fits.append(fit_value(data, value_config, progress=False))
        save_value(value_config.out, fits[-1], value_config, value_config.dataset)
    start = time.perf_counter()
    planning = run_planner(
        models, "embodylab/LabPush-v0", config.episodes, seed=config.episode_seed + 100 * seed, config=config.mppi,
        value=[fit.value for fit in fits], progress=False,
    )  # fmt: skip
    return {
        "models": [str(p) for p in runs],
        "value": fits[0].summary,
        **({"member_values": [fit.summary for fit in fits]} if config.value_per_member else {}),
        "plan_time_s": round(time.perf_counter() - start, 1),
        **planning,
    }


def main(config: PushValueConfig) -> None:
    pool = worker_pool(config.workers)
    with pool or contextlib.nullcontext():
        map_ = pool.map if pool else map
        results = list(map_(run_seed, [config] * len(config.seeds), list(config.seeds)))
    rates = [r["success_rate"] for r in results]
    successes = sum(sum(e["success"] for e in r["episodes"]) for r in results)
    episodes = sum(len(r["episodes"]) for r in results)
    variant = {
        "command": "python benchmarks/world_model_push_value.py "
        + f"--work {config.work} --workers {config.workers} --name {config.name} "
        + f"--episodes {config.episodes} --episode-seed {config.episode_seed} "
        + ("--value-per-member " if config.value_per_member else "")
        + f"--value.{'' if config.value.reward_baseline else 'no-'}reward-baseline "
        + f"--value.expectile {config.value.expectile}",
        "date": time.strftime("%Y-%m-%d"),
        "seeds": list(config.seeds),
        "success_rate": rates,
        "mean_success_rate": float(np.mean(rates)),
        "successes": f"{successes}/{episodes}",
        "mean_final_goal_distance": [r["mean_final_goal_distance"] for r in results],
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "runs": {str(s): r for s, r in zip(config.seeds, results, strict=True)},
    }
    report = json.loads(config.out.read_text()) if config.out.exists() else {}
    report |= {
        "what": "MPPI on LabPush with the models' learned reward and a learned terminal value (no shaped "
        "cost), over the ensembles of a `benchmarks/world_model.py --parts push` run",
        "bar": ">= 0.7 (issue 7: MPPI with the learned model, at most 50k env steps of data)",
    }
    report.setdefault("variants", {})[config.name] = variant
    print(f"{config.name}: success per seed {rates}: {successes}/{episodes} = {successes / episodes:.0%}")
    write_json(config.out, report)


if __name__ == "__main__":
    main(tyro.cli(PushValueConfig))
