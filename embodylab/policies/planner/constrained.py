"""Grammar-constrained decoding for any tokenizer: pieces of the plan language -> allowed token ids.

The grammar (`grammar.PlanGrammar(entities).allowed`) speaks in *pieces*: given a prefix of a plan it lists
the strings that may come next (`pick`, `(`, `red_mug`, `, `, `)`, ` ; `, `done`, `cannot: no such
object`). A tokenizer speaks in tokens whose text need not line up with pieces: ` ;` ends inside the piece
` ; `, `) ; done` spans four pieces. `PieceConstraint` bridges the two: a token is allowed after the
generated text `g` exactly when `g + token` is still a prefix of some grammatical string. It walks the
grammar character by character against the set of every prefix of every token's text, so one step costs
the grammar's branching over the few characters a token can hold, not one grammar call per vocab token.

`GrammarLogitsProcessor` applies it in `transformers`' `generate`; `PieceConstraint.allowed_token_ids` is
the same mask as a plain function for the project's own looped model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import torch
from transformers import LogitsProcessor


class AllowedPieces(Protocol):
    """The grammar's interface (`grammar.PlanGrammar(entities).allowed`): the pieces that may follow a
    prefix of a plan that ends on a piece boundary; no pieces after a complete plan."""

    def __call__(self, prefix: str) -> Sequence[str]: ...


_COMPLETE = re.compile(r"(?:.* ; )?done|cannot: [^\n]*\S", re.DOTALL)


def is_complete_plan(text: str) -> bool:
    """Whether `text` (on a piece boundary) is a whole plan: it ends with `done`, or it is one
    `cannot: <reason>` line."""
    return _COMPLETE.fullmatch(text) is not None


State = tuple[str, str]
"""`(boundary, partial)`: the text read splits into `boundary`, a sequence of whole pieces, and `partial`, a
proper prefix of one piece allowed after `boundary` (`""` on a boundary)."""


@dataclass(frozen=True)
class TokenVocabulary:
    """Every token's text, decoded once. `token_strings[i]` is `None` for special tokens and tokens with no
    text; `eos_ids` are the ids that end generation."""

    token_strings: tuple[str | None, ...]
    eos_ids: frozenset[int]

    def __post_init__(self):
        ids_by_string: dict[str, list[int]] = {}
        prefixes: set[str] = set()
        for token_id, text in enumerate(self.token_strings):
            if text:
                ids_by_string.setdefault(text, []).append(token_id)
                prefixes.update(text[: end + 1] for end in range(len(text)))
        object.__setattr__(self, "ids_by_string", ids_by_string)
        object.__setattr__(self, "prefixes", frozenset(prefixes))

    @classmethod
    def from_tokenizer(cls, tokenizer, eos_ids: Iterable[int] = ()) -> TokenVocabulary:
        """Decode a Hugging Face tokenizer's vocabulary. Each token is decoded after an anchor token and the
        anchor's text cut off, so that SentencePiece's word-initial space (`▁pick` -> ` pick`) survives,
        which decoding a token alone drops. `eos_ids` default to the tokenizer's `eos_token_id`."""
        size = len(tokenizer)
        special = set(tokenizer.all_special_ids)
        anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
        anchor_text = tokenizer.decode([anchor], clean_up_tokenization_spaces=False)
        decoded = tokenizer.batch_decode(
            [[anchor, i] for i in range(size)], clean_up_tokenization_spaces=False
        )
        strings = []
        for token_id, text in enumerate(decoded):
            if token_id in special:
                strings.append(None)
            elif text.startswith(anchor_text):
                strings.append(text[len(anchor_text) :] or None)
            else:
                strings.append(tokenizer.decode([token_id], clean_up_tokenization_spaces=False) or None)
        eos = set(eos_ids) or {tokenizer.eos_token_id}
        return cls(tuple(strings), frozenset(i for i in eos if i is not None))

    def text_of(self, token_ids: Iterable[int]) -> str:
        """The text of generated ids as the constraint reads it: token texts joined, special tokens dropped."""
        strings = self.token_strings
        return "".join(strings[i] or "" for i in token_ids if i < len(strings))


class GrammarViolation(ValueError):
    """Text that leaves the grammar. `position` is where; `token` the offending word; `expected` the pieces
    the grammar allowed there."""

    def __init__(self, message: str, position: int, token: str, expected: Sequence[str]):
        super().__init__(message)
        self.position, self.token, self.expected = position, token, list(expected)


class PieceConstraint:
    """The grammar `allowed` as a constraint on text and, given a `vocabulary`, on tokens."""

    def __init__(
        self,
        allowed: AllowedPieces,
        vocabulary: TokenVocabulary | None = None,
        complete: Callable[[str], bool] = is_complete_plan,
    ):
        self._allowed = lru_cache(maxsize=4096)(lambda prefix: tuple(p for p in allowed(prefix) if p))
        self.vocabulary = vocabulary
        self._complete = complete
        self._last: tuple[str, frozenset[State]] = ("", frozenset({("", "")}))

    def _advance(self, state: State, text: str) -> Iterable[State]:
        boundary, partial = state
        if not text:
            yield state
            return
        for piece in self._allowed(boundary):
            if not piece.startswith(partial):
                continue
            rest = piece[len(partial) :]
            if text.startswith(rest):
                yield from self._advance((boundary + piece, ""), text[len(rest) :])
            elif rest.startswith(text):
                yield boundary, partial + text

    def states(self, text: str) -> frozenset[State]:
        """Every way `text` splits into whole pieces and a partial piece; empty when `text` is no prefix of
        a grammatical string. Continues from the last text asked about when `text` extends it (decoding
        asks once per token)."""
        last_text, last_states = self._last
        if text.startswith(last_text):
            start, rest = last_states, text[len(last_text) :]
        else:
            start, rest = frozenset({("", "")}), text
        states = frozenset(s for state in start for s in self._advance(state, rest))
        self._last = (text, states)
        return states

    def is_complete(self, text: str) -> bool:
        """Whether `text` is a whole grammatical plan."""
        return any(partial == "" and self._complete(boundary) for boundary, partial in self.states(text))

    def check(self, text: str) -> None:
        """Raise `GrammarViolation` naming the first word of `text` the grammar does not allow, or saying
        that `text` stops before the plan is complete."""
        good, states = 0, frozenset({("", "")})
        for end in range(1, len(text) + 1):
            longer = self.states(text[:end])
            if not longer:
                break
            good, states = end, longer
        if good == len(text) and self.is_complete(text):
            return
        boundary = max((b for b, _ in states), key=len)
        expected = self._allowed(boundary)
        shown = ", ".join(repr(p) for p in expected[:12]) + (", ..." if len(expected) > 12 else "")
        if good == len(text):
            raise GrammarViolation(
                f"the plan {text!r} stops before it is complete; next allowed: {shown or 'nothing'}",
                len(text),
                "",
                expected,
            )
        word = re.match(r"[\w/]+|\s*\S", text[len(boundary) :])
        token = word.group() if word else text[len(boundary) :]
        raise GrammarViolation(
            f"{token!r} at character {len(boundary)} of {text[:200]!r} is not allowed by the grammar; "
            f"allowed there: {shown or 'nothing'}",
            len(boundary),
            token,
            expected,
        )

    def _collect(self, state: State, token_text: str, found: set[int], seen: set[tuple[State, str]]) -> None:
        """Add to `found` the ids of tokens whose text starts with `token_text` and goes on along the grammar
        from `state`."""
        if (state, token_text) in seen:
            return
        seen.add((state, token_text))
        vocabulary = self.vocabulary
        boundary, partial = state
        for piece in self._allowed(boundary):
            if not piece.startswith(partial):
                continue
            rest = piece[len(partial) :]
            for end in range(1, len(rest) + 1):
                candidate = token_text + rest[:end]
                if candidate not in vocabulary.prefixes:
                    break
                found.update(vocabulary.ids_by_string.get(candidate, ()))
                if end == len(rest):
                    self._collect((boundary + piece, ""), candidate, found, seen)

    def allowed_token_ids(self, generated_text: str) -> set[int]:
        """The ids of the tokens that keep `generated_text` a prefix of a grammatical string, and the EOS ids
        when `generated_text` is already a whole plan. When nothing is allowed (text already off the
        grammar, or a grammar with no way on) only EOS is: decoding stops and the parser names the fault."""
        if self.vocabulary is None:
            raise ValueError("allowed_token_ids needs a vocabulary: PieceConstraint(allowed, vocabulary=...)")
        states = self.states(generated_text)
        found: set[int] = set()
        seen: set[tuple[State, str]] = set()
        for state in states:
            self._collect(state, "", found, seen)
        if not found or any(partial == "" and self._complete(boundary) for boundary, partial in states):
            found |= self.vocabulary.eos_ids
        return found


class GrammarLogitsProcessor(LogitsProcessor):
    """Masks every token but those `PieceConstraint.allowed_token_ids` allows after the text generated so
    far (`input_ids[:, prompt_length:]`). Pass `vocabulary` to reuse a decoded vocabulary across calls;
    `eos_ids` should be the ids `generate` stops on."""

    def __init__(
        self,
        tokenizer,
        allowed: AllowedPieces,
        prompt_length: int,
        vocabulary: TokenVocabulary | None = None,
        eos_ids: Iterable[int] = (),
        complete: Callable[[str], bool] = is_complete_plan,
    ):
        self.vocabulary = vocabulary or TokenVocabulary.from_tokenizer(tokenizer, eos_ids)
        self.allowed = allowed
        self.prompt_length = prompt_length
        self.complete = complete
        self._rows: list[PieceConstraint] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """`input_ids` [batch, prompt_length + generated], `scores` [batch, vocab] -> masked scores."""
        while len(self._rows) < input_ids.shape[0]:
            self._rows.append(PieceConstraint(self.allowed, self.vocabulary, self.complete))
        mask = torch.full_like(scores, float("-inf"))
        for row, constraint in enumerate(self._rows[: input_ids.shape[0]]):
            text = self.vocabulary.text_of(input_ids[row, self.prompt_length :].tolist())
            ids = [i for i in constraint.allowed_token_ids(text) if i < scores.shape[-1]]
            mask[row, ids] = 0.0
        return scores + mask
