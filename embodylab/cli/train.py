"""`embodylab train` and `embodylab eval`: SB3 agents on the single-agent tasks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro

from embodylab.policies.config import TrainConfig


@tyro.conf.configure(tyro.conf.CascadeSubcommandArgs, tyro.conf.OmitSubcommandPrefixes)
@dataclass
class Train(TrainConfig):
    """Train an SB3 agent; --resume continues a run. The algorithm and its options are subcommands, their
    flags given after them: `train sac her --env LabReach --steps 20000 --out runs/reach`; `train sac her
    demos --record 20 --env LabPush`; `train td3 her`; `train ppo --n-steps 512`; `... curriculum --bandit
    ucb --variants hand_start` (see `embodylab.policies.config`)."""

    def run(self) -> None:
        from embodylab.policies.rl import train

        start = time.perf_counter()
        run_dir = train(self)
        print(f"trained in {time.perf_counter() - start:.0f} s; {_summary(run_dir)}")
        print(
            f"wrote config.json, checkpoints/, tb/ (tensorboard --logdir {run_dir / 'tb'}), evaluations.csv"
        )
        print(f"and learning_curve.png to {run_dir}/")


@dataclass
class Eval:
    """Evaluate the last checkpoint of a run: success rate, return, episode length; writes eval.json."""

    run_dir: tyro.conf.Positional[Path]
    """run directory written by `embodylab train`"""
    episodes: int = 20
    """deterministic episodes on fixed evaluation seeds"""
    video: bool = False
    """record the first episode to <run_dir>/eval.mp4"""

    def run(self) -> None:
        from embodylab.policies.evaluation import evaluate

        report = evaluate(self.run_dir, self.episodes, self.video)
        print(f"{report['env']} {report['algo']} at step {report['step']}, {report['episodes']} episodes:")
        print(f"success rate  {report['success_rate']:.2f}")
        print(f"mean return   {report['mean_return']:.2f}")
        print(f"mean length   {report['mean_length']:.1f}")
        written = f"{self.run_dir / 'eval.json'}" + (f" and {report['video']}" if report["video"] else "")
        print(f"wrote {written}")


def _summary(run_dir: Path) -> str:
    """The last evaluation of a run, in words."""
    from embodylab.policies.evaluation import read_evaluations

    rows = read_evaluations(run_dir)
    if not rows:
        return "no evaluation ran"
    last = rows[-1]
    return f"last evaluation at step {last['step']:.0f}: success rate {last['success_rate']:.2f}"
