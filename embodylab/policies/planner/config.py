"""The planner's configs, apart from the code they configure and free of torch: the looped model
(`LoopedConfig`, `looped.py`) and its training (`TrainPlannerConfig`, `training.py`), which the command
line (`embodylab train-planner`) reads without loading torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from embodylab.policies.planner.tokenizer import SPECIAL_TOKENS

DEFAULT_MODEL_ID = "embodylab-planner"
"""the model name `embodylab serve-planner` serves under and `--planner http:URL` asks for"""
LOOP_SAMPLING = ("fixed", "lognormal_poisson")
EXITS = ("fixed", "gate")


@dataclass
class LoopedConfig:
    vocab_size: int
    """the tokenizer's `vocab_size`."""
    d_model: int = 128
    heads: int = 4
    prelude_layers: int = 1
    core_layers: int = 2
    """k: the layers of the block that is looped."""
    coda_layers: int = 1
    loops: int = 4
    """L: the mean loop count in training, the loop count at eval."""
    backprop_loops: int = 2
    """truncated backprop: gradients flow through the last this many loops of a training forward."""
    loop_sampling: Literal["fixed", "lognormal_poisson"] = "lognormal_poisson"
    state_init_std: float = 1.0
    """std of the initial latent state in training (zero at eval)."""
    exit_gate: bool = True
    exit_entropy: float = 0.05
    """β of the Ouro loss's entropy regulariser."""
    exit_threshold: float = 0.5
    """Q-exit: a token stops at the first loop whose exit CDF reaches this."""
    max_len: int = 512
    """tokens of a sequence (learned positions)."""
    dropout: float = 0.0

    def validate(self) -> None:
        checks = {
            "vocab_size": self.vocab_size >= len(SPECIAL_TOKENS),
            "d_model": self.d_model >= 1 and self.heads >= 1 and self.d_model % self.heads == 0,
            "prelude_layers": self.prelude_layers >= 0,
            "core_layers": self.core_layers >= 1,
            "coda_layers": self.coda_layers >= 0,
            "loops": self.loops >= 1,
            "backprop_loops": self.backprop_loops >= 1,
            "loop_sampling": self.loop_sampling in LOOP_SAMPLING,
            "state_init_std": self.state_init_std >= 0,
            "exit_entropy": self.exit_entropy >= 0,
            "exit_threshold": 0 < self.exit_threshold <= 1,
            "max_len": self.max_len >= 1,
            "dropout": 0 <= self.dropout < 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"LoopedConfig: invalid {', '.join(f'{name}={getattr(self, name)!r}' for name in bad)}"
                f" (vocab_size >= {len(SPECIAL_TOKENS)}, d_model a multiple of heads={self.heads},"
                f" core_layers, loops, backprop_loops >= 1, loop_sampling in {LOOP_SAMPLING},"
                " 0 < exit_threshold <= 1, 0 <= dropout < 1, the rest >= 0)"
            )


@dataclass
class TrainPlannerConfig:
    data: str
    """JSONL of `{"context": str, "plan": str}` rows to train on."""
    out: str
    """the run directory."""
    model: LoopedConfig = field(default_factory=lambda: LoopedConfig(vocab_size=len(SPECIAL_TOKENS)))
    """the model; its `vocab_size` is replaced by the tokenizer's."""
    eval_data: str | None = None
    """JSONL of held-out pairs (default: the training pairs)."""
    eval_examples: int = 32
    """pairs of `eval_data` greedily decoded at each evaluation."""
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    threads: int = 1
    resume: bool = False
    """continue from `out/checkpoint.pt` (with its tokenizer) when there is one, instead of starting over."""
