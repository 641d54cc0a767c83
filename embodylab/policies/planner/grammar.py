"""The grammar of the plan language over one scene: which pieces of text may come next in a plan.

Decoders build a plan left to right and, at every step, mask whatever does not extend the text towards a
piece `PlanGrammar.allowed` returns, so that only grammatical plans naming entities of the scene can come
out. The pieces of a plan:

- at a call boundary (the start, or after `" ; "`): each operator's name with its parenthesis (`"pick("`)
  and `"done"`; at the very start also `"cannot: "`, then free reason text (`REASON`: any characters but a
  newline) up to the end;
- inside a call: the ids of the parameter's type in the scene's `entities` (never an id the scene lacks or
  one of another type), then `", "` before the next parameter or `")"` after the last;
- after `")"`: `" ; "`; after `"done"` (or a non-empty reason): `END`, the text may end there.

`allowed(prefix)` returns what may follow `prefix` to complete the piece it stops in: whole pieces at a
piece boundary, the rest of each piece that begins so in the middle of one (`"navigate(kit"` gives
`"chen_table"` and every other completion), and `[]` when no grammatical plan begins with `prefix`.

Word-level tokenisation (`allowed_token_ids`): ids, operator names, `done` and `cannot` are one token each;
`(`, `,`, `)`, `;` and `:` are tokens of their own; spaces are no tokens (a decoder writes the plan
language's spacing back: `", "`, `" ; "`, `": "`); the reason text is any token sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embodylab.policies.planner.language import CANNOT, END, SEPARATOR, PlanParseError
from embodylab.skills.household.schema import OPERATORS, Operator

REASON = "<reason>"
"""the piece that stands for free reason text after `cannot: ` (any characters but a newline)"""
END_OF_TEXT = ""
"""the piece that says the text may end here (after `done`, or after a non-empty reason)"""
ARGUMENT_SEPARATOR = ", "
CLOSE = ")"
ARTICLES = {"object": "an object", "surface": "a surface", "container": "a container", "part": "a part"}
SPECIAL_TOKENS = ("<pad>", "<bos>", "<sep>", "<eos>")
_HEAD_CACHE_SIZE = 4096
"""prefixes ending at a call boundary remembered as grammatical (decoding extends the same prefix)"""


def type_phrase(entity_type: str) -> str:
    """`"an object"`, `"a place"`, ...: the type as a sentence names it."""
    return ARTICLES.get(entity_type, f"a {entity_type}")


class PlanGrammar:
    """The plan language over the ids of one scene (`entities`: ids by parameter type, `scene.entities`).

    `operators` are the calls a plan may make; `allow_cannot` whether a refusal (`cannot: <reason>`) may be
    written instead of a plan."""

    def __init__(
        self,
        entities: dict[str, list[str]],
        operators: Sequence[Operator] = OPERATORS,
        allow_cannot: bool = True,
    ):
        missing = sorted({t for op in operators for _, t in op.parameters} - set(entities))
        if missing:
            raise ValueError(f"entities lack the parameter types {missing}; they give {sorted(entities)}")
        self.entities = {t: tuple(sorted(ids)) for t, ids in entities.items()}
        self._id_sets = {t: frozenset(ids) for t, ids in self.entities.items()}
        self._type_of: dict[str, str] = {}
        for entity_type, ids in self.entities.items():  # an id of several types is named by its first
            for i in ids:
                self._type_of.setdefault(i, entity_type)
        self.operators = {op.name: op for op in operators}
        self.allow_cannot = allow_cannot
        self._openers = tuple(f"{name}(" for name in self.operators)
        self._boundary = (*self._openers, END)
        self._start = (*self._boundary, CANNOT) if allow_cannot else self._boundary
        self._heads: dict[str, None] = {}

    # ---- pieces ------------------------------------------------------------------------------------
    def allowed(self, prefix: str) -> list[str]:
        """What may follow `prefix` to complete the piece it stops in (see the module docstring); `[]` when
        `prefix` begins no grammatical plan."""
        try:
            return self._scan(prefix)
        except PlanParseError:
            return []

    def check(self, text: str) -> list[str]:
        """`allowed(text)`, raising `PlanParseError` naming the first offending piece instead of `[]`."""
        return self._scan(text)

    def is_complete(self, text: str) -> bool:
        """Whether `text` is a whole plan (ended by `done`) or refusal of this grammar."""
        return END_OF_TEXT in self.allowed(text)

    def _scan(self, text: str) -> list[str]:
        head = text.rfind(SEPARATOR)
        position = 0
        if head >= 0 and text[: head + len(SEPARATOR)] in self._heads:
            position = head + len(SEPARATOR)
        pieces = self._start if position == 0 else self._boundary
        while True:  # one call boundary per turn
            piece, rest = self._take(text, position, pieces)
            if piece is None:
                return rest
            position += len(piece)
            if piece == CANNOT:
                reason = text[position:]
                if "\n" in reason:
                    raise PlanParseError(
                        f"a reason is one line; a newline at character {position + reason.index(chr(10))}"
                    )
                return [REASON, END_OF_TEXT] if reason.strip() else [REASON]
            if piece == END:
                if position < len(text):
                    raise PlanParseError(
                        f"nothing may follow {END!r}; got {text[position : position + 40]!r} at character {position}"
                    )
                return [END_OF_TEXT]
            operator = self.operators[piece[:-1]]
            for index, (_, entity_type) in enumerate(operator.parameters):
                last = index == len(operator.parameters) - 1
                after = CLOSE if last else ARGUMENT_SEPARATOR
                completions, position = self._take_id(text, position, entity_type, after, operator)
                if completions is not None:
                    return completions
                piece, rest = self._take(text, position, (after,))
                if piece is None:
                    return rest
                position += len(piece)
            if not operator.parameters:
                piece, rest = self._take(text, position, (CLOSE,))
                if piece is None:
                    return rest
                position += len(piece)
            piece, rest = self._take(text, position, (SEPARATOR,))
            if piece is None:
                return rest
            position += len(piece)
            self._remember(text[:position])
            pieces = self._boundary

    def _take(self, text: str, position: int, pieces: tuple[str, ...]) -> tuple[str | None, list[str]]:
        """(the piece `text` continues with at `position`, []) or, where `text` ends inside pieces, (None,
        the rest of each). The fixed pieces are prefix-free, so at most one matches."""
        rest = text[position:]
        for piece in pieces:
            if rest.startswith(piece):
                return piece, []
        partial = [piece[len(rest) :] for piece in pieces if piece.startswith(rest)]
        if partial:
            return None, partial
        raise PlanParseError(
            f"at character {position}: {rest[:40]!r} begins none of {', '.join(map(repr, pieces))}"
        )

    def _take_id(
        self, text: str, position: int, entity_type: str, after: str, operator: Operator
    ) -> tuple[list[str] | None, int]:
        """Read an id of `entity_type` at `position`: (None, the position after it) or, where `text` ends in
        it, (the completions: the rest of each longer id and `after` when it is whole already, position)."""
        ids = self._id_sets[entity_type]
        rest = text[position:]
        ends = [i for i in (rest.find(","), rest.find(")"), rest.find(" ")) if i >= 0]
        if not ends:
            completions = [
                i[len(rest) :] for i in self.entities[entity_type] if i.startswith(rest) and i != rest
            ]
            if rest in ids:
                completions.append(after)
            if completions:
                return completions, position
            end = len(rest)
        else:
            end = min(ends)
            if rest[:end] in ids:
                return None, position + end
        name = rest[:end]
        other = self._type_of.get(name)
        where = f" (it is {type_phrase(other)})" if other else ""
        raise PlanParseError(
            f"at character {position}: {name!r} in {operator.name}( is not {type_phrase(entity_type)} in this "
            f"scene{where}; {entity_type} ids: {', '.join(self.entities[entity_type]) or 'none'}"
        )

    def _remember(self, head: str) -> None:
        if len(self._heads) >= _HEAD_CACHE_SIZE:
            self._heads.pop(next(iter(self._heads)))
        self._heads[head] = None

    # ---- tokens ------------------------------------------------------------------------------------
    def allowed_token_ids(self, prefix_text: str, vocab: dict[str, int], eos: str = "<eos>") -> set[int]:
        """The ids of the word-level tokens (module docstring) that may follow `prefix_text`, the plan text
        decoded so far in the plan language's spacing; `eos` where the text may end; empty when nothing may
        follow. Reason text may be any token but the special ones (`SPECIAL_TOKENS`)."""
        allowed: set[int] = set()
        for piece in self.allowed(prefix_text):
            if piece == END_OF_TEXT:
                if eos in vocab:
                    allowed.add(vocab[eos])
            elif piece == REASON:
                allowed |= {i for t, i in vocab.items() if t not in SPECIAL_TOKENS and "\n" not in t}
            elif not piece.strip():  # a space the decoder writes itself: look past it
                allowed |= self.allowed_token_ids(prefix_text + piece, vocab, eos)
            else:
                token = _first_token(piece.lstrip(" "))
                # the rest of a longer id ('table' then '_2') is no word-level token
                if token in vocab and not (_is_word(prefix_text[-1:]) and _is_word(piece)):
                    allowed.add(vocab[token])
        return allowed

    def token_mask(self, prefix_ids: Sequence[int], tokenizer) -> np.ndarray:
        """`allowed_token_ids` as a boolean mask [vocab size] for a word-level tokenizer with `decode(ids)
        -> str` (the plan language's spacing) and `vocab: dict[str, int]`."""
        vocab = tokenizer.vocab
        mask = np.zeros(max(vocab.values()) + 1, dtype=bool)
        mask[list(self.allowed_token_ids(tokenizer.decode(list(prefix_ids)), vocab))] = True
        return mask


def _is_word(piece: str) -> bool:
    """Whether `piece` begins with an identifier character (letters, digits, `_`, `/`)."""
    return bool(piece) and (piece[0].isalnum() or piece[0] in "_/")


def _first_token(piece: str) -> str:
    """The word-level token `piece` begins with: an identifier (letters, digits, `_`, `/`) or one mark."""
    if not _is_word(piece):
        return piece[:1]
    end = next((i for i, c in enumerate(piece) if not (c.isalnum() or c in "_/")), len(piece))
    return piece[:end]
