"""The `embodylab` command: tyro over one dataclass config per subcommand.

    embodylab envs                                   table of the registered env ids
    embodylab info LabReach-v0                       one task: docstring, spaces, objects, cameras, rates
    embodylab render LabReach-v0 --out runs/r.mp4    play episodes, write a video and a contact sheet
    embodylab render team --agents 4 --policy scripted --out runs/team.mp4   a TeamCarry episode
    embodylab demo                                   the expert on every lab task, then SAC+HER on LabReach
    embodylab train sac her --env LabReach --steps 20000 --out runs/reach   SAC+HER (td3, tqc, ppo; demos)
    embodylab eval runs/reach --episodes 50 --video  success rate, return, length; runs/reach/eval.json
    embodylab plan --env HouseholdTidy --seed 3 --planner oracle   plan, verify and execute an instruction
    embodylab train-planner --out runs/planner       the looped planner (eval-planner, serve-planner)

This is the top layer: it may import every other one, and nothing in the library imports it. Every
subcommand is a dataclass with a `run()` method over a library entry point (torch and SB3 load only for
the commands that need them). The library raises `ValueError` (its own errors, `ConfigError`,
`CheckpointError`, ..., derive from it) or `FileNotFoundError` on bad input, and `ConnectionError` or
`TimeoutError` when a planner server cannot be reached; `main` prints it as one line
and exits with status 2 (`EMBODYLAB_TRACEBACK=1` shows the traceback instead).
"""

from __future__ import annotations

import os
import sys

import tyro

from embodylab.cli.common import UsageError
from embodylab.cli.envs import Envs, Info
from embodylab.cli.planner import COMMANDS as PLANNER_COMMANDS
from embodylab.cli.render import Demo, Render
from embodylab.cli.train import Eval, Train
from embodylab.cli.world_models import COMMANDS as WORLD_MODEL_COMMANDS

COMMANDS = {"envs": Envs, "info": Info, "render": Render, "demo": Demo, "train": Train, "eval": Eval}
COMMANDS |= WORLD_MODEL_COMMANDS  # collect, train-wm, eval-wm, train-value, plan-wm
COMMANDS |= PLANNER_COMMANDS  # plan, train-planner, eval-planner, serve-planner


def main(args: list[str] | None = None) -> None:
    """Entry point of the `embodylab` command; `args` defaults to `sys.argv[1:]`."""
    command = tyro.extras.subcommand_cli_from_dict(
        COMMANDS, prog="embodylab", description="embodylab: MuJoCo-first Gymnasium robotics tasks.", args=args
    )
    try:
        command.run()
    except (ValueError, FileNotFoundError, NotImplementedError, ConnectionError, TimeoutError) as err:
        if os.environ.get("EMBODYLAB_TRACEBACK"):
            raise
        print(f"embodylab: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


__all__ = ["COMMANDS", "UsageError", "main"]
