"""The planner subcommands of `embodylab`: plan, train-planner, eval-planner, serve-planner.

    embodylab plan --env embodylab/HouseholdTidy-v0 --seed 3 --planner oracle --out runs/plan.mp4
    embodylab plan --env HouseholdPickPlace --seed 1 --instruction "put the banana on the cabinet" --planner looped:runs/planner
    embodylab train-planner --out runs/planner --train-examples 2000 --steps 2000   # generates runs/planner/data
    embodylab eval-planner runs/planner --data runs/planner/data --splits deeper longer --loops 8
    embodylab serve-planner --planner looped:runs/planner --port 8000
    embodylab plan --env HouseholdTidy --seed 3 --planner http:http://127.0.0.1:8000

`--planner` takes the forms of `embodylab.policies.planner.planners.PLANNER_FORMS`. torch, the planner's
models and the embedding ranker load only when a command runs; the library's `ValueError`s become
one-line errors in `embodylab.cli.main`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import tyro

from embodylab.cli.common import UsageError
from embodylab.policies.planner.config import DEFAULT_MODEL_ID, TrainPlannerConfig


@dataclass
class PlanInstruction:
    """Plan an instruction in a household env, verify the plan, execute it in physics (re-planning on
    failure) and report each skill's outcome and whether the episode succeeded; --out records a video."""

    env: str = "embodylab/HouseholdTidy-v0"
    """household env id (the embodylab/ namespace is optional)"""
    seed: int = 0
    """seed of the episode's reset"""
    instruction: str | None = None
    """the instruction (default: the env's own, for its goal); `oracle` plans for the env's goal whatever
    it says"""
    planner: str = "looped"
    """looped (the packaged checkpoint), looped:RUN_DIR, oracle, hf:PATH (a directory or .gguf file),
    smollm2, or http:URL (an OpenAI-compatible server; --model names the model)"""
    loops: int | None = None
    """core loops of a looped planner (default: its training mean)"""
    model: str = DEFAULT_MODEL_ID
    """model name asked of an http:URL planner"""
    max_replans: int = 2
    """re-plans after a failed skill, each with the failure appended to the instruction"""
    out: Path | None = None
    """video of the executed episode (.mp4 or .gif); a contact sheet goes beside it"""
    size: int = 256
    """square frame side of the video, pixels"""
    fps: int = 25

    def run(self) -> None:
        from embodylab.envs.registry import make, resolve_env_id
        from embodylab.policies.planner.executor import PlanningPolicy
        from embodylab.policies.planner.planners import make_planner
        from embodylab.policies.planner.retrieval import FactRetriever, default_ranker
        from embodylab.recording import EpisodeRecording, check_video_request
        from embodylab.rollout import play_episode

        env_id = resolve_env_id(self.env)
        if self.out is not None:
            check_video_request(self.out, 1)
        env = make(env_id, **({"render_mode": "rgb_array", "render_size": self.size} if self.out else {}))
        try:
            if not hasattr(env.unwrapped, "goal_atoms"):
                raise UsageError(f"plan runs household tasks (embodylab/Household*-v0); got {env_id}")
            planner = make_planner(self.planner, env, model=self.model, loops=self.loops)
            ranker = default_ranker()
            policy = PlanningPolicy(planner, self.instruction, FactRetriever(ranker), self.max_replans)
            episode = play_episode(env, policy, seed=self.seed, render=self.out is not None)
        finally:
            env.close()
        _print_run(policy.run, env_id, self.seed, self.planner, ranker.name)
        print(
            f"success: {'yes' if episode.success else 'no'} (info['is_success'] after {episode.length} steps)"
        )
        if self.out is None:
            print("wrote nothing (--out VIDEO records the episode)")
            return
        with EpisodeRecording(self.out, self.fps) as recording:
            recording.add_episode(episode.frames)
            sheet = recording.write_contact_sheet()
        print(f"wrote {self.out} ({recording.frames} frames) and {sheet}")


def _print_run(run, env_id: str, seed: int, planner: str, ranker: str) -> None:
    """What `plan_and_execute` did, step by step (`PlanningRun`)."""
    retrieved = run.retrieval
    print(f"{env_id} seed {seed}: {run.instruction}")
    print(
        f"retrieved {len(retrieved.facts)} facts, {retrieved.context_tokens} context tokens ({ranker} ranker):"
    )
    for fact in retrieved.facts:
        print(f"  {fact}")
    if run.output is None:
        print(f"{planner} gave no plan: {run.error}")
        print("nothing executed")
        return
    output = run.output
    loops = f", {output.loops_used:.1f} loops per token" if output.loops_used is not None else ""
    print(
        f"plan ({planner}, {output.latency_s:.2f} s, {output.prompt_tokens} prompt tokens, "
        f"{output.completion_tokens} plan tokens{loops}):"
    )
    print(f"  {output.text}")
    print(f"verdict: {'ok' if run.verdict.ok else 'rejected'} ({run.verdict.message})")
    if run.execution is None:
        print(f"nothing executed: {run.error}" if run.error else f"nothing executed: {output.text}")
        return
    report = run.execution
    for index, (call, outcome) in enumerate(zip(report.executed, report.outcomes, strict=True)):
        print(f"  skill {index + 1} {call}: {'ok' if not outcome else 'failed: ' + outcome}")
    for feedback, answer in zip(report.feedback, [*run.replans, None], strict=False):
        print(f"  re-plan on: {feedback}")
        if answer is not None:
            print(f"    {answer.text}")
    print(
        f"executed {report.steps_run} skills, {report.env_steps} env steps, {report.replans} re-plans; "
        f"GCR {report.gcr:.2f}"
    )


@dataclass
class TrainPlanner(TrainPlannerConfig):
    """Train the looped planner on context -> plan pairs: those of --data, or a data set generated into
    OUT/data (--train-examples, --seed); writes config.json, tokenizer/, checkpoint.pt and tb/ to --out."""

    data: str | None = None
    """a directory of pairs (`train.pairs.jsonl`, with `heldout_apartments.pairs.jsonl` as the eval data
    when present) or one pairs file; default: generate a data set into OUT/data"""
    out: str = "runs/planner"
    """the run directory (`embodylab/assets/planner` is the packaged `--planner looped`)"""
    train_examples: int = 2000
    """examples of the generated train split (the held-out splits get a sixth each, at least 8)"""
    train_apartments: int = 200
    heldout_apartments: int = 50

    def run(self) -> None:
        from embodylab.policies.planner.data import generate_dataset
        from embodylab.policies.planner.training import train_planner

        if self.data is None:
            data = Path(self.out) / "data"
            held_out = max(8, self.train_examples // 6)
            start = time.perf_counter()
            generate_dataset(
                data,
                n_train=self.train_examples,
                n_heldout=held_out,
                n_deeper=held_out,
                n_longer=held_out,
                n_train_apartments=self.train_apartments,
                n_heldout_apartments=self.heldout_apartments,
                seed=self.seed,
            )
            print(
                f"generated {self.train_examples} training examples into {data}/ in {time.perf_counter() - start:.1f} s"
            )
        else:
            data = Path(self.data)
        train_file = data / "train.pairs.jsonl" if data.is_dir() else data
        if not train_file.is_file():
            raise UsageError(f"--data {data}: no pairs file {train_file} (write one with data.write_pairs)")
        eval_file = data / "heldout_apartments.pairs.jsonl" if data.is_dir() else None
        eval_data = self.eval_data or (str(eval_file) if eval_file and eval_file.is_file() else None)
        values = {f.name: getattr(self, f.name) for f in fields(TrainPlannerConfig)}
        config = TrainPlannerConfig(**{**values, "data": str(train_file), "eval_data": eval_data})
        result = train_planner(config)
        final = result["final"].get("loss", float("nan"))
        shown = ", ".join(f"{k} {v:.3f}" for k, v in result["eval"].items())
        print(f"trained steps {result['start_step']}..{config.steps}: final loss {final:.3f}; {shown}")
        print(f"wrote config.json, tokenizer/, checkpoint.pt and tb/ to {config.out}/")
        print(f"use it with --planner looped:{config.out}")


@dataclass
class EvalPlanner:
    """Score a trained looped planner symbolically on data-set splits: SR, Exec, GCR (ProgPrompt's),
    hallucinated-entity rate, 'cannot' accuracy, latency, loops; prints a table, writes RUN/eval_planner.json."""

    run_dir: tyro.conf.Positional[Path]
    """run directory written by `embodylab train-planner`"""
    data: Path | None = None
    """directory of the split files `<split>.jsonl` (default: RUN/data, where train-planner generates)"""
    splits: tuple[str, ...] = ()
    """splits to score (default: every split file in --data)"""
    loops: int | None = None
    """core loops (default: the model's training mean); with --exit gate the most a token may take"""
    exit: Literal["fixed", "gate"] = "fixed"
    grounded: bool = True
    """decode under the plan grammar over each scene's ids"""
    limit: int | None = None
    """score at most this many examples of each split"""

    def run(self) -> None:
        import torch

        from embodylab.policies.planner.data import SPLITS, StartStates, read_examples
        from embodylab.policies.planner.evaluation import evaluate_examples
        from embodylab.policies.planner.planners import LoopedPlanner
        from embodylab.recording import print_table

        torch.set_num_threads(1)
        data = self.data or self.run_dir / "data"
        unknown = [s for s in self.splits if s not in SPLITS]
        if unknown:
            raise UsageError(f"unknown splits {unknown}; splits: {', '.join(SPLITS)}")
        splits = self.splits or tuple(s for s in SPLITS if (data / f"{s}.jsonl").is_file())
        if not splits:
            raise UsageError(f"--data {data}: no split files ({', '.join(f'{s}.jsonl' for s in SPLITS)})")
        planner = LoopedPlanner(self.run_dir, loops=self.loops, exit=self.exit, grounded=self.grounded)
        apartments = StartStates()
        report = {
            "run_dir": str(self.run_dir),
            "data": str(data),
            "loops": self.loops,
            "exit": self.exit,
            "grounded": self.grounded,
            "splits": {},
        }
        for split in splits:
            examples = read_examples(data / f"{split}.jsonl")[: self.limit]
            report["splits"][split] = evaluate_examples(planner, examples, apartments)

        def cell(value, scale: float = 1.0) -> str:
            return "-" if value is None else f"{value * scale:.2f}"

        columns = ["split", "n", "SR", "Exec", "GCR", "halluc.", "cannot acc.", "p50 ms", "p95 ms", "loops"]
        rows = [
            [
                split,
                str(m["examples"]),
                *(cell(m[k]) for k in ("sr", "exec", "gcr", "hallucination_rate", "cannot_accuracy")),
                cell(m["latency_p50_s"], 1000),
                cell(m["latency_p95_s"], 1000),
                cell(m["mean_loops"]),
            ]
            for split, m in report["splits"].items()
        ]
        grounding = "grounded" if self.grounded else "ungrounded"
        print_table(f"{self.run_dir} ({grounding}, loops {self.loops or 'default'})", columns, rows)
        path = self.run_dir / "eval_planner.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")


@dataclass
class ServePlanner:
    """Serve a planner over OpenAI-compatible HTTP (`GET /v1/models`, `POST /v1/chat/completions`) until
    Ctrl-C; `--planner http:URL` (and any OpenAI client) plans through it."""

    planner: str = "looped"
    """looped, looped:RUN_DIR, hf:PATH, smollm2 or http:URL (oracle needs an env: it is not served)"""
    host: str = "127.0.0.1"
    port: int = 8000
    """0 takes a free port"""
    allow_remote: bool = False
    """bind a non-loopback host: the server has no rate limits and no authentication"""
    model_id: str = DEFAULT_MODEL_ID
    """the model name the server answers to"""
    loops: int | None = None
    """core loops of a looped planner"""

    def run(self) -> None:
        from embodylab.policies.planner.planners import make_planner
        from embodylab.policies.planner.server import PlannerServer, is_loopback

        if not self.allow_remote and not is_loopback(self.host):
            raise UsageError(
                f"--host {self.host} is not a loopback address; pass --allow-remote to serve beyond this "
                "machine (the server has no rate limits and no authentication)"
            )
        planner = make_planner(self.planner, loops=self.loops)
        server = PlannerServer(
            planner, self.host, self.port, model_id=self.model_id, allow_remote=self.allow_remote
        )
        with server:
            print(f"serving {self.planner} as model {self.model_id!r} at {server.url}/v1 (Ctrl-C stops)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopped")


COMMANDS = {
    "plan": PlanInstruction,
    "train-planner": TrainPlanner,
    "eval-planner": EvalPlanner,
    "serve-planner": ServePlanner,
}
