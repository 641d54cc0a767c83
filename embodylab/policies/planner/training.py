"""Training the looped planner on context → plan pairs: a plain AdamW loop.

A run directory holds

- `config.json`     the `TrainPlannerConfig`, the model's `vocab_size` filled in from the tokenizer;
- `tokenizer/`      the `PlannerTokenizer` trained on the training pairs' contexts and plans;
- `checkpoint.pt`   plain state read with `torch.load(weights_only=True)`: the model's and the optimizer's
                    state dicts, the step, and the RNG states (the run's `torch.Generator`, which draws
                    the batches, the loop counts and the initial states, and torch's global RNG, which
                    dropout draws from), so that a resumed run continues with the losses of an
                    uninterrupted one;
- `tb/`             TensorBoard scalars: loss, cross-entropy, learning rate, loops r, exit-gate entropy,
                    eval loss and exact-match rate.

The learning rate warms up linearly for `warmup` steps, then follows a cosine to zero at `steps`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from embodylab.policies.planner.config import LoopedConfig, TrainPlannerConfig
from embodylab.policies.planner.looped import LoopedLM, make_batch
from embodylab.policies.planner.tokenizer import PlannerTokenizer

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
TOKENIZER_DIR = "tokenizer"


class PlannerCheckpointError(ValueError):
    """A planner run whose checkpoint, config or tokenizer is missing or corrupt; the message names the file."""


def load_pairs(path: str | Path) -> list[tuple[str, str]]:
    """The `(context, plan)` pairs of a JSONL file; a row without both strings is a `ValueError` naming
    the file and the line."""
    pairs = []
    with open(path) as rows:
        for line_number, line in enumerate(rows, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                context, plan = row["context"], row["plan"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"{path}:{line_number}: expected {{'context': str, 'plan': str}}: {error}"
                ) from error
            if not isinstance(context, str) or not isinstance(plan, str):
                raise ValueError(f"{path}:{line_number}: context and plan must be strings")
            pairs.append((context, plan))
    if not pairs:
        raise ValueError(f"{path}: no context/plan pairs")
    return pairs


def learning_rate(config: TrainPlannerConfig, step: int) -> float:
    """Linear warmup over `warmup` steps, then cosine decay to zero at `steps`."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(config.steps - config.warmup, 1)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _save_checkpoint(
    path: Path, model: LoopedLM, optimizer: torch.optim.Optimizer, step: int, generator
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    partial = path.with_suffix(".pt.partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a run killed mid-write keeps the previous checkpoint


def _load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise PlannerCheckpointError(f"no planner checkpoint at {path}")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:  # torch raises several kinds on a truncated or foreign file
        raise PlannerCheckpointError(f"corrupt planner checkpoint {path}: {error}") from error
    expected = {"model", "optimizer", "step", "generator", "torch_rng"}
    if not isinstance(state, dict) or not expected <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise PlannerCheckpointError(f"planner checkpoint {path} holds {found}, expected {sorted(expected)}")
    return state


def _load_config(run_dir: Path) -> TrainPlannerConfig:
    path = run_dir / CONFIG
    try:
        raw = json.loads(path.read_text())
        return TrainPlannerConfig(**{**raw, "model": LoopedConfig(**raw["model"])})
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise PlannerCheckpointError(f"cannot read the planner config {path}: {error}") from error


def _load_tokenizer(run_dir: Path) -> PlannerTokenizer:
    try:
        return PlannerTokenizer.load(run_dir / TOKENIZER_DIR)
    except ValueError as error:
        raise PlannerCheckpointError(str(error)) from error


def load_planner(run_dir: str | Path) -> tuple[LoopedLM, PlannerTokenizer, TrainPlannerConfig]:
    """The trained model (in eval mode), its tokenizer and its run's config."""
    run_dir = Path(run_dir)
    config = _load_config(run_dir)
    tokenizer = _load_tokenizer(run_dir)
    state = _load_checkpoint(run_dir / CHECKPOINT)
    model = LoopedLM(config.model, seed=config.seed)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise PlannerCheckpointError(
            f"planner checkpoint {run_dir / CHECKPOINT} does not fit {CONFIG}: {error}"
        ) from error
    return model.eval(), tokenizer, config


@torch.no_grad()
def evaluate(
    model: LoopedLM, tokenizer: PlannerTokenizer, pairs: list[tuple[str, str]], batch_size: int
) -> dict[str, float]:
    """Teacher-forced loss at `config.loops` and the exact-match rate of greedy plans, over `pairs`."""
    model.eval()
    encoded = [tokenizer.encode_example(context, plan) for context, plan in pairs]
    losses = [
        model.loss(make_batch(encoded[i : i + batch_size]))[1]["ce"]
        for i in range(0, len(encoded), batch_size)
    ]
    exact = 0
    for ids, plan_start in encoded:
        generated = model.generate(ids[:plan_start], max_new_tokens=len(ids) - plan_start + 8)
        exact += generated.ids == ids[plan_start:-1]
    model.train()
    return {"eval_ce": sum(losses) / len(losses), "exact_match": exact / len(pairs)}


def train_planner(config: TrainPlannerConfig) -> dict:
    """Trains (or with `resume` continues) a run; returns `start_step`, the `losses` of the steps run
    here, the `final` stats and the last evaluation."""
    torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = load_pairs(config.data)
    eval_pairs = (load_pairs(config.eval_data) if config.eval_data else pairs)[: config.eval_examples]
    resuming = config.resume and (out / CHECKPOINT).exists()
    if resuming:
        tokenizer = _load_tokenizer(out)
    else:
        tokenizer = PlannerTokenizer.train([text for pair in pairs for text in pair])
        tokenizer.save(out / TOKENIZER_DIR)
    config = replace(config, model=replace(config.model, vocab_size=tokenizer.vocab_size))
    (out / CONFIG).write_text(json.dumps(asdict(config), indent=2))

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = LoopedLM(config.model, seed=config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start_step = 0
    if resuming:
        state = _load_checkpoint(out / CHECKPOINT)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_step = state["step"]
    encoded = [tokenizer.encode_example(context, plan) for context, plan in pairs]

    writer = SummaryWriter(out / "tb")
    losses: list[float] = []
    stats: dict[str, float] = {}
    evaluation: dict[str, float] = {}
    model.train()
    for step in tqdm(
        range(start_step, config.steps), initial=start_step, total=config.steps, desc="planner", disable=None
    ):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        rows = torch.randint(len(encoded), (config.batch_size,), generator=generator).tolist()
        loss, stats = model.loss(make_batch([encoded[row] for row in rows]), generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(stats["loss"])
        for name, value in {**stats, "lr": optimizer.param_groups[0]["lr"]}.items():
            writer.add_scalar(f"train/{name}", value, step)
        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            evaluation = evaluate(model, tokenizer, eval_pairs, config.batch_size)
            for name, value in evaluation.items():
                writer.add_scalar(f"eval/{name}", value, done)
        if done % config.checkpoint_every == 0 or done == config.steps:
            _save_checkpoint(out / CHECKPOINT, model, optimizer, done, generator)
    writer.close()
    return {"start_step": start_step, "losses": losses, "final": stats, "eval": evaluation}
