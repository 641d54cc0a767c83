"""Word-level tokens over scene facts, instructions and the plan language.

Entity ids (`kitchen_counter`, `chest/top_drawer`) and operator names are single words, and the
punctuation of the plan language and the facts (`( ) , ; :`) are tokens of their own, so a plan is a
short sequence (`navigate ( kitchen_counter ) ; done` is 6 tokens) and the grammar can mask whole ids.
The vocabulary is `tokenizers.models.WordLevel` trained on the texts of a data set; a word never seen in
training is `<unk>`.

`decode` is the plan language's detokeniser: it writes no space before `(`, `,`, `)` and `:`, none after
`(`, one after `,` and `:`, and spaces around every other word (so ` ; `). Plans round-trip exactly;
facts, which put a space before `(` (`chest/top_drawer (drawer, ...)`), decode without it.

A sequence of the model is `<bos> context <sep> plan <eos>` (`encode_prompt`, `encode_example`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

PAD, BOS, SEP, EOS, UNK = "<pad>", "<bos>", "<sep>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, SEP, EOS, UNK)
"""in id order: `<pad>` is 0."""
FILENAME = "tokenizer.json"
_NO_SPACE_BEFORE = frozenset({"(", ",", ")", ":"})
_NO_SPACE_AFTER = frozenset({"("})


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"[(),;:]"), behavior="isolated")]
    )


class PlannerTokenizer:
    """A word-level vocabulary; build one with `train` or `load`."""

    def __init__(self, tokenizer: Tokenizer):
        for expected_id, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != expected_id:
                raise ValueError(
                    f"tokenizer has {token!r} at id {tokenizer.token_to_id(token)}, expected {expected_id}"
                    f" (special tokens in order: {SPECIAL_TOKENS})"
                )
        self._tokenizer = tokenizer
        self.pad_id, self.bos_id, self.sep_id, self.eos_id, self.unk_id = range(len(SPECIAL_TOKENS))

    @classmethod
    def train(cls, texts: Iterable[str], min_frequency: int = 1) -> PlannerTokenizer:
        """A vocabulary of every word occurring at least `min_frequency` times in `texts`."""
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.pre_tokenizer = _pre_tokenizer()
        trainer = trainers.WordLevelTrainer(
            min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS), show_progress=False
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    @property
    def vocab(self) -> dict[str, int]:
        """Every token's id, by token (what `grammar.PlanGrammar.allowed_token_ids` masks over)."""
        return self._tokenizer.get_vocab()

    def token_to_id(self, token: str) -> int:
        """The id of `token`, `unk_id` for a word outside the vocabulary."""
        found = self._tokenizer.token_to_id(token)
        return self.unk_id if found is None else found

    def id_to_token(self, token_id: int) -> str:
        token = self._tokenizer.id_to_token(token_id)
        if token is None:
            raise ValueError(f"token id {token_id} is outside the vocabulary [0, {self.vocab_size})")
        return token

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """The text of `ids` in the plan language's spacing; `<pad>`, `<bos>`, `<sep>` and `<eos>` are
        dropped when `skip_special` (`<unk>` is kept)."""
        skipped = {self.pad_id, self.bos_id, self.sep_id, self.eos_id} if skip_special else set()
        pieces: list[str] = []
        previous = None
        for token_id in ids:
            if token_id in skipped:
                continue
            token = self.id_to_token(token_id)
            if pieces and token not in _NO_SPACE_BEFORE and previous not in _NO_SPACE_AFTER:
                pieces.append(" ")
            pieces.append(token)
            previous = token
        return "".join(pieces)

    def encode_prompt(self, context: str) -> list[int]:
        """`<bos> context <sep>`: what the model continues with a plan."""
        return [self.bos_id, *self.encode(context), self.sep_id]

    def encode_example(self, context: str, plan: str) -> tuple[list[int], int]:
        """`<bos> context <sep> plan <eos>` and the index of the plan's first token."""
        prompt = self.encode_prompt(context)
        return [*prompt, *self.encode(plan), self.eos_id], len(prompt)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._tokenizer.to_str())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> PlannerTokenizer:
        path = Path(directory) / FILENAME
        try:
            tokenizer = Tokenizer.from_str(path.read_text())
        except OSError as error:
            raise ValueError(f"cannot read the tokenizer {path}: {error}") from error
        except Exception as error:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"corrupt tokenizer file {path}: {error}") from error
        try:
            return cls(tokenizer)
        except ValueError as error:
            raise ValueError(f"tokenizer file {path}: {error}") from error
