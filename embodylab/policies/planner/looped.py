"""A looped (recurrent-depth) decoder-only language model: its config, loss and greedy decoding.

The architecture is Huginn's (Geiping et al. 2025, arXiv:2502.05171): a prelude P embeds the tokens,
e = P(x); a core block R of k transformer layers is applied r times to a latent state that starts as
noise, s_0 ~ N(0, state_init_std²), with the input re-injected at every loop,
s_i = norm(R(adapter(concat(e, s_{i-1})))); a coda C reads s_r and a head gives the logits. In training r
is drawn per batch from Huginn's log-normal Poisson (mean `loops`) and only the last `backprop_loops`
iterations are differentiated (truncated backprop; the earlier ones run under `no_grad`). At eval the
state starts at zero, so decoding is deterministic.

With `exit_gate` each loop t also gives an exit probability λ_t = sigmoid(g(s_t)) (Ouro, Zhu et al. 2025,
arXiv:2510.25741). The exit distribution is q_t = λ_t ∏_{j<t} (1 − λ_j), the last loop taking the
remaining mass, and the loss is the expected per-loop cross-entropy Σ_t q_t L_t − β H(q) (the entropy
term is β·KL(q ‖ uniform) up to a constant). Under truncation the early loops' L_t are constants and the
gate still learns from every loop. Decoding with `exit="gate"` stops each token at its Q-exit: the first
loop whose exit CDF reaches `exit_threshold`.

The baselines of Saunshi et al. (ICLR 2025) are the same class (`baseline_configs`): k⊗1 is
`loops=1` (the looped model's parameters, one pass), kL⊗1 is `core_layers=k·L, loops=1` (L× the core
parameters, no weight sharing).

Greedy decoding keeps a KV cache per layer and per loop. A token that exits at loop t < r has no keys
at the later loops; it lends them its loop-t keys and values (Huginn's cache sharing), so the later
tokens that run deeper attend to it at its last computed depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from embodylab.policies.planner.config import EXITS, LoopedConfig
from embodylab.policies.planner.tokenizer import EOS, PAD, SPECIAL_TOKENS

PAD_ID = SPECIAL_TOKENS.index(PAD)
EOS_ID = SPECIAL_TOKENS.index(EOS)
IGNORE = -100
"""target of a position that is not scored (context, padding): `F.cross_entropy`'s `ignore_index`."""
LOGNORMAL_SIGMA = 0.5
"""Huginn's spread of the log-normal Poisson loop count."""
MAX_LOOPS_FACTOR = 3
"""a drawn loop count is capped at this many times the mean (the tail beyond costs time, not mean)."""

AllowedFn = Callable[[list[int]], Collection[int] | None]


def baseline_configs(config: LoopedConfig) -> dict[str, LoopedConfig]:
    """The looped model k⊗L and Saunshi et al.'s baselines: k⊗1, the same parameters run once, and
    kL⊗1, the unrolled depth with its own weights in every layer."""
    once = {"loops": 1, "loop_sampling": "fixed", "backprop_loops": 1}
    return {
        "looped": config,
        "k_x_1": replace(config, **once),
        "kL_x_1": replace(config, core_layers=config.core_layers * config.loops, **once),
    }


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters, a tied weight counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def exit_distribution(lambdas: torch.Tensor) -> torch.Tensor:
    """Per-loop exit probabilities λ [..., R] → the exit distribution q [..., R],
    q_t = λ_t ∏_{j<t} (1 − λ_j), the last loop taking the remaining mass."""
    survival = torch.cumprod(1 - lambdas, dim=-1)
    survived_before = torch.cat([torch.ones_like(survival[..., :1]), survival[..., :-1]], dim=-1)
    return torch.cat([(lambdas * survived_before)[..., :-1], survived_before[..., -1:]], dim=-1)


def q_exit(exit_probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """The Q-exit loop (1-based) of each exit distribution [..., R]: the first loop whose CDF reaches
    `threshold`, the last loop if none does."""
    reached = exit_probs.cumsum(dim=-1) >= threshold
    reached[..., -1] = True
    return reached.to(torch.int64).argmax(dim=-1) + 1


class PlannerBatch(NamedTuple):
    ids: torch.Tensor
    """[B, T] input token ids."""
    targets: torch.Tensor
    """[B, T] the next token at each position, `IGNORE` on the context and the padding."""
    pad_mask: torch.Tensor
    """[B, T] True at padding."""


def make_batch(examples: Sequence[tuple[list[int], int]]) -> PlannerBatch:
    """Right-padded inputs and targets of `(ids, plan_start)` pairs (`PlannerTokenizer.encode_example`):
    only the plan's tokens and `<eos>` are scored."""
    length = max(len(ids) for ids, _ in examples) - 1
    inputs = torch.full((len(examples), length), PAD_ID, dtype=torch.int64)
    targets = torch.full((len(examples), length), IGNORE, dtype=torch.int64)
    for row, (ids, plan_start) in enumerate(examples):
        sequence = torch.tensor(ids, dtype=torch.int64)
        inputs[row, : len(ids) - 1] = sequence[:-1]
        # the target at input position i is token i + 1: scored from the first plan token on
        targets[row, plan_start - 1 : len(ids) - 1] = sequence[plan_start:]
    return PlannerBatch(inputs, targets, inputs.eq(PAD_ID))


class LoopedOutput(NamedTuple):
    logits: torch.Tensor
    """[B, T, V] of the last loop."""
    loop_logits: list[torch.Tensor] | None
    """[B, T, V] of every loop through the shared coda (with the exit gate)."""
    exit_probs: torch.Tensor | None
    """[B, T, R] the exit distribution q (with the exit gate)."""


class Generation(NamedTuple):
    ids: list[int]
    """the generated tokens, without `<eos>`."""
    mean_loops: float
    """loops per decoded token (the step that produced `<eos>` included)."""


class KVCache:
    """The keys and values [B, heads, max_len, d_head] of one layer call site, filled up to `length`
    (preallocated: appending by concatenation was half of the decoding time)."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.length = 0

    def extend(
        self, keys: torch.Tensor, values: torch.Tensor, capacity: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Appends keys, values [B, heads, T, d_head]; returns all of them so far."""
        if self.keys is None:
            shape = (keys.shape[0], keys.shape[1], capacity, keys.shape[3])
            self.keys, self.values = keys.new_empty(shape), values.new_empty(shape)
        end = self.length + keys.shape[2]
        self.keys[:, :, self.length : end] = keys
        self.values[:, :, self.length : end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def last(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.keys[:, :, self.length - 1 : self.length], self.values[
            :, :, self.length - 1 : self.length
        ]


Cache = dict[tuple, KVCache]
"""per layer call site: `("prelude", layer)`, `("core", loop, layer)`, `("coda", layer)`."""


class Block(nn.Module):
    """A pre-norm causal transformer layer with an optional KV cache."""

    def __init__(self, config: LoopedConfig):
        super().__init__()
        d = config.d_model
        self.heads = config.heads
        self.max_len = config.max_len
        self.dropout = config.dropout
        self.attention_norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.attention_out = nn.Linear(d, d)
        self.mlp_norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None = None
    ) -> torch.Tensor:
        """x [B, T, d]; mask [B, 1, T, T] True where attention is allowed, None for plain causal; with a
        `cache`, either a prefill (empty cache) or one new token."""
        batch, length, d = x.shape
        q, k, v = (
            self.qkv(self.attention_norm(x)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        )
        if cache is not None:
            assert cache.length == 0 or length == 1, (
                "a cached layer takes one token at a time after its prefill"
            )
            k, v = cache.extend(k, v, self.max_len)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=mask is None and length > 1
        )
        attended = attended.transpose(1, 2).reshape(batch, length, d)
        x = x + F.dropout(self.attention_out(attended), dropout, self.training)
        return x + F.dropout(self.mlp(self.mlp_norm(x)), dropout, self.training)


def _attention_mask(pad_mask: torch.Tensor | None) -> torch.Tensor | None:
    """[B, 1, T, T] causal and not to padding (a position always sees itself, so that no row is empty);
    None when nothing is padded."""
    if pad_mask is None or not bool(pad_mask.any()):
        return None
    length = pad_mask.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=pad_mask.device).tril()
    allowed = causal & ~pad_mask[:, None, None, :]
    return allowed | torch.eye(length, dtype=torch.bool, device=pad_mask.device)


class LoopedLM(nn.Module):
    """Prelude → core looped r times with the input re-injected → coda → head (tied to the embedding)."""

    def __init__(self, config: LoopedConfig, seed: int = 0):
        super().__init__()
        config.validate()
        self.config = config
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.prelude = nn.ModuleList(Block(config) for _ in range(config.prelude_layers))
        self.input_norm = nn.LayerNorm(d)
        self.adapter = nn.Linear(2 * d, d)
        self.core = nn.ModuleList(Block(config) for _ in range(config.core_layers))
        self.state_norm = nn.LayerNorm(d)
        self.exit_gate = nn.Linear(d, 1) if config.exit_gate else None
        self.coda = nn.ModuleList(Block(config) for _ in range(config.coda_layers))
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        self.head.weight = self.token_embedding.weight
        self.generator = torch.Generator().manual_seed(seed)
        """draws the loop counts and initial states when no generator is passed."""

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # ---- the loop count ------------------------------------------------------------------------------
    def sample_loops(self, generator: torch.Generator | None = None) -> int:
        """A training loop count: `loops` when fixed, else Huginn's 1 + Poisson(λ), log λ ~
        N(log(L − 1) − σ²/2, σ²), whose mean is L (capped at `MAX_LOOPS_FACTOR`·L)."""
        mean = self.config.loops
        if self.config.loop_sampling == "fixed" or mean == 1:
            return mean
        generator = self.generator if generator is None else generator
        mu = math.log(mean - 1) - LOGNORMAL_SIGMA**2 / 2
        rate = torch.exp(mu + LOGNORMAL_SIGMA * torch.randn(1, generator=generator))
        drawn = int(torch.poisson(rate, generator=generator).item()) + 1
        return min(drawn, MAX_LOOPS_FACTOR * mean)

    # ---- the parts -----------------------------------------------------------------------------------
    def _embed_input(
        self, ids: torch.Tensor, mask: torch.Tensor | None, cache: Cache | None, start: int = 0
    ) -> torch.Tensor:
        """e = P(x) [B, T, d] of ids [B, T] at positions start, start + 1, ...; normalised, so that the
        input is as loud as the unit-scale state it is concatenated with."""
        if start + ids.shape[1] > self.config.max_len:
            raise ValueError(
                f"a sequence of {start + ids.shape[1]} tokens exceeds max_len={self.config.max_len}"
            )
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        x = self.token_embedding(ids) + self.position_embedding(positions)
        for index, block in enumerate(self.prelude):
            x = block(x, mask, None if cache is None else cache.setdefault(("prelude", index), KVCache()))
        return self.input_norm(x)

    def _initial_state(self, e: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not self.training:
            return torch.zeros_like(e)
        generator = self.generator if generator is None else generator
        noise = torch.randn(e.shape, generator=generator, dtype=e.dtype)
        return noise.to(e.device) * self.config.state_init_std

    def _loop(
        self, e: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None, loop: int, cache: Cache | None
    ) -> torch.Tensor:
        """One application of the core: s_i = norm(R(adapter(concat(e, s_{i-1}))))."""
        state = self.adapter(torch.cat([e, state], dim=-1))
        for index, block in enumerate(self.core):
            state = block(
                state, mask, None if cache is None else cache.setdefault(("core", loop, index), KVCache())
            )
        return self.state_norm(state)

    def _exit_lambda(self, state: torch.Tensor) -> torch.Tensor:
        """λ_t [B, T] of a loop's state [B, T, d]."""
        return torch.sigmoid(self.exit_gate(state)).squeeze(-1)

    def _coda_hidden(
        self, state: torch.Tensor, mask: torch.Tensor | None, cache: Cache | None
    ) -> torch.Tensor:
        for index, block in enumerate(self.coda):
            state = block(
                state, mask, None if cache is None else cache.setdefault(("coda", index), KVCache())
            )
        return self.final_norm(state)

    def _states(
        self,
        ids: torch.Tensor,
        loops: int | None,
        pad_mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[list[torch.Tensor], torch.Tensor | None, int]:
        """The state after every loop, the attention mask, and the first loop that carries gradients."""
        if loops is None:
            loops = self.sample_loops(generator) if self.training else self.config.loops
        if loops < 1:
            raise ValueError(f"loops={loops}: a forward needs at least one loop")
        mask = _attention_mask(pad_mask)
        e = self._embed_input(ids, mask, None)
        state = self._initial_state(e, generator)
        first_with_grad = loops - min(loops, self.config.backprop_loops) if self.training else 0
        states = []
        for loop in range(loops):
            with torch.set_grad_enabled(torch.is_grad_enabled() and loop >= first_with_grad):
                state = self._loop(e, state, mask, loop, None)
            states.append(state)
        return states, mask, first_with_grad

    # ---- training --------------------------------------------------------------------------------------
    def forward(
        self,
        ids: torch.Tensor,
        loops: int | None = None,
        pad_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> LoopedOutput:
        """Logits of ids [B, T]; `loops=None` draws the loop count in training and is `config.loops` at
        eval; `pad_mask` [B, T] is True at padding."""
        states, mask, _ = self._states(ids, loops, pad_mask, generator)
        if self.exit_gate is None:
            return LoopedOutput(self.head(self._coda_hidden(states[-1], mask, None)), None, None)
        loop_logits = [self.head(self._coda_hidden(state, mask, None)) for state in states]
        exit_probs = exit_distribution(torch.stack([self._exit_lambda(s) for s in states], dim=-1))
        return LoopedOutput(loop_logits[-1], loop_logits, exit_probs)

    def loss(
        self, batch: PlannerBatch, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Next-token cross-entropy on the plan tokens (the Ouro objective with the exit gate) and its
        stats: `ce` (the last loop's), `loops` (r), with the gate `exit_entropy` and `expected_exit`.
        The head runs on the scored positions only, one loop at a time."""
        states, mask, first_with_grad = self._states(batch.ids, None, batch.pad_mask, generator)
        scored = batch.targets.ne(IGNORE)
        targets = batch.targets[scored]

        def cross_entropy(state: torch.Tensor) -> torch.Tensor:  # [N] per scored token
            return F.cross_entropy(
                self.head(self._coda_hidden(state, mask, None)[scored]), targets, reduction="none"
            )

        if self.exit_gate is None:
            ce = cross_entropy(states[-1]).mean()
            return ce, {"loss": ce.item(), "ce": ce.item(), "loops": float(len(states))}
        per_loop = []
        for loop, state in enumerate(states):
            with torch.set_grad_enabled(torch.is_grad_enabled() and loop >= first_with_grad):
                per_loop.append(cross_entropy(state))
        per_loop_ce = torch.stack(per_loop, dim=-1)  # [N, R]
        q = exit_distribution(torch.stack([self._exit_lambda(s)[scored] for s in states], dim=-1))
        entropy = -(q * q.clamp_min(1e-12).log()).sum(dim=-1).mean()
        loss = (q * per_loop_ce).sum(dim=-1).mean() - self.config.exit_entropy * entropy
        expected_exit = (q * torch.arange(1, len(states) + 1, dtype=q.dtype)).sum(dim=-1).mean()
        return loss, {
            "loss": loss.item(),
            "ce": per_loop_ce[:, -1].mean().item(),
            "loops": float(len(states)),
            "exit_entropy": entropy.item(),
            "expected_exit": expected_exit.item(),
        }

    # ---- decoding --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        context_ids: Sequence[int],
        max_new_tokens: int,
        loops: int | None = None,
        exit: Literal["fixed", "gate"] = "fixed",
        allowed_fn: AllowedFn | None = None,
        use_cache: bool = True,
    ) -> Generation:
        """Greedy continuation of `context_ids` (`<bos> context <sep>`) until `<eos>`, `max_new_tokens`
        or `max_len`. `loops` (default `config.loops`) is the depth, or with `exit="gate"` the most loops a
        token may take. `allowed_fn(generated_ids)` gives the token ids that may come next (None: any).
        `use_cache=False` recomputes the whole sequence per token (the reference for the cache)."""
        if exit not in EXITS:
            raise ValueError(f"exit={exit!r}; choose one of {EXITS}")
        if exit == "gate" and self.exit_gate is None:
            raise ValueError("exit='gate' needs a model built with exit_gate=True")
        if not 1 <= len(context_ids) < self.config.max_len:
            raise ValueError(
                f"a context of {len(context_ids)} tokens; it needs 1 to {self.config.max_len - 1}"
            )
        loops = self.config.loops if loops is None else loops
        if loops < 1:
            raise ValueError(f"loops={loops}: decoding needs at least one loop")
        was_training = self.training
        self.eval()
        try:
            step = (
                self._cached_steps(context_ids, loops, exit)
                if use_cache
                else self._full_steps(context_ids, loops, exit)
            )
            generated: list[int] = []
            loops_used: list[int] = []
            logits, used = next(step)
            while max_new_tokens > 0:
                token = self._pick(logits, generated, allowed_fn)
                loops_used.append(used)
                if token == EOS_ID:
                    break
                generated.append(token)
                if (
                    len(generated) == max_new_tokens
                    or len(context_ids) + len(generated) == self.config.max_len
                ):
                    break
                logits, used = step.send(token)
        finally:
            self.train(was_training)
        return Generation(generated, sum(loops_used) / max(len(loops_used), 1))

    @staticmethod
    def _pick(logits: torch.Tensor, generated: list[int], allowed_fn: AllowedFn | None) -> int:
        allowed = None if allowed_fn is None else allowed_fn(generated)
        if allowed is None:
            return int(logits.argmax())
        if not allowed:
            raise ValueError(f"allowed_fn allows no token after {generated}")
        allowed_ids = torch.tensor(sorted(allowed), dtype=torch.int64)
        return int(allowed_ids[logits[allowed_ids].argmax()])

    def _full_steps(self, context_ids: Sequence[int], loops: int, exit: str):
        """Yields (next-token logits [V], loops used) and receives the chosen token, recomputing all."""
        sequence = list(context_ids)
        while True:
            output = self(torch.tensor([sequence]), loops=loops)
            if exit == "gate":
                used = int(q_exit(output.exit_probs[0, -1], self.config.exit_threshold))
                token = yield output.loop_logits[used - 1][0, -1], used
            else:
                token = yield output.logits[0, -1], loops
            sequence.append(token)

    def _cached_steps(self, context_ids: Sequence[int], loops: int, exit: str):
        """As `_full_steps`, one new token per step: the context but its last token is prefilled at full
        depth, then each token runs until its Q-exit (or all `loops`) and lends its last keys onwards."""
        cache: Cache = {}
        prefix = torch.tensor([list(context_ids[:-1])])
        if prefix.shape[1]:
            e = self._embed_input(prefix, None, cache)
            state = torch.zeros_like(e)
            for loop in range(loops):
                state = self._loop(e, state, None, loop, cache)
            self._coda_hidden(state, None, cache)
        token, position = context_ids[-1], len(context_ids) - 1
        while True:
            e = self._embed_input(torch.tensor([[token]]), None, cache, start=position)
            state, survival = torch.zeros_like(e), 1.0
            for loop in range(loops):
                state = self._loop(e, state, None, loop, cache)
                if exit == "gate" and loop < loops - 1:
                    survival *= 1.0 - float(self._exit_lambda(state))
                    if 1.0 - survival >= self.config.exit_threshold:
                        break
            for later in range(loop + 1, loops):
                for layer in range(self.config.core_layers):
                    lent = cache[("core", loop, layer)].last()
                    cache.setdefault(("core", later, layer), KVCache()).extend(*lent, self.config.max_len)
            logits = self.head(self._coda_hidden(state, None, cache))[0, -1]
            token = yield logits, loop + 1
            position += 1
