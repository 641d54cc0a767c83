"""What every planner returns, the planner protocol, and the one text format of a planning request.

A planner turns an English instruction and the scene's facts (`scene.py`: one fact per line) into plan
text in the plan language (`language.py`), e.g. `navigate(kitchen_counter) ; pick(red_mug,
kitchen_counter) ; done` or `cannot: no such object`. The LLM adapters (`adapters.py`) and the HTTP server
(`server.py`) pass the request to a language model as one user message in the format of `format_request`.

Here too are the project's own planners, `LoopedPlanner` (a trained looped model, `looped.py`, decoding
under the grammar) and `OraclePlanner` (the symbolic oracle's plan for an env's goal), and `make_planner`,
which builds any planner from the command line's `--planner` forms (`PLANNER_FORMS`).
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from embodylab.policies.planner.config import DEFAULT_MODEL_ID
from embodylab.policies.planner.data import planner_context
from embodylab.policies.planner.grammar import PlanGrammar
from embodylab.policies.planner.language import format_plan, from_oracle, parse_plan
from embodylab.skills.household import oracle

if TYPE_CHECKING:
    import gymnasium as gym

    from embodylab.policies.planner.looped import LoopedLM
    from embodylab.policies.planner.tokenizer import PlannerTokenizer


@dataclass
class PlannerOutput:
    """One planner answer. `plan` is the parsed plan (`language.Plan` once merged), `None` if not parsed."""

    text: str
    plan: object | None
    latency_s: float
    """Wall-clock seconds from the request to the answer (prompting, decoding and parsing)."""
    prompt_tokens: int
    completion_tokens: int
    loops_used: float | None = None
    """The looped model's mean number of core loops per generated token; `None` for other planners."""
    error: str | None = None


class Planner(Protocol):
    def plan(
        self, instruction: str, facts: list[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput: ...


ParsePlan = Callable[[str], object]
"""Plan text -> plan, raising `ValueError` on bad text (`language.parse_plan` once merged)."""


class PlanOutputError(ValueError):
    """A model's answer that is not a plan. `text` is the raw answer; nothing of it is ever executed."""

    def __init__(self, message: str, text: str):
        super().__init__(message)
        self.text = text


def excerpt(text: str, limit: int = 160) -> str:
    """`text` quoted, cut to `limit` characters: for error messages about model output."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


_FACTS_HEADER = "Facts:"
_ENTITIES_HEADER = "Entities:"
_INSTRUCTION_HEADER = "Instruction:"


def format_request(
    instruction: str, facts: Sequence[str], entities: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The user message of a planning request:

        Facts:
        room kitchen next to hallway
        red_mug on kitchen_counter ; mug ; red ; small
        Entities:
        object: red_mug, blue_cup
        place: kitchen_counter, dining_table
        Instruction: put the red mug on the dining table

    One fact per line; the `Entities:` section (ids by parameter type, `scene.entities`) is left out when
    `entities` is `None`. It tells a remote model which ids exist and the server which grammar to decode
    under. The instruction is one line (newlines become spaces)."""
    lines = [_FACTS_HEADER, *facts]
    if entities is not None:
        lines.append(_ENTITIES_HEADER)
        lines.extend(f"{kind}: {', '.join(ids)}" for kind, ids in entities.items())
    lines.append(f"{_INSTRUCTION_HEADER} {' '.join(instruction.split())}")
    return "\n".join(lines)


def parse_request(text: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """`format_request`'s inverse: `(instruction, facts, entities)`; `entities` is `{}` when the message has
    no `Entities:` section. Raises `ValueError` naming the missing part."""
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != _FACTS_HEADER:
        raise ValueError(f"a planning request starts with a line {_FACTS_HEADER!r}, got {excerpt(text, 80)}")
    if not lines[-1].startswith(_INSTRUCTION_HEADER):
        raise ValueError(
            f"a planning request ends with a line '{_INSTRUCTION_HEADER} ...', got {excerpt(lines[-1], 80)}"
        )
    instruction = lines[-1][len(_INSTRUCTION_HEADER) :].strip()
    body = lines[1:-1]
    if _ENTITIES_HEADER in body:
        split = body.index(_ENTITIES_HEADER)
        facts, entity_lines = body[:split], body[split + 1 :]
    else:
        facts, entity_lines = body, []
    entities = {}
    for line in entity_lines:
        kind, sep, ids = line.partition(":")
        if not sep:
            raise ValueError(f"an entity line reads 'type: id, id, ...', got {excerpt(line, 80)}")
        entities[kind.strip()] = [i.strip() for i in ids.split(",") if i.strip()]
    return instruction, facts, entities


# ---- the project's planners ------------------------------------------------------------------------------

UNREACHABLE = "unreachable goal"


def default_looped_dir() -> Path:
    """Where the packaged looped planner's run directory lives: `embodylab/assets/planner`."""
    return Path(str(importlib.resources.files("embodylab") / "assets" / "planner"))


class LoopedPlanner:
    """A trained looped model (`looped.LoopedLM`) as a planner: greedy decoding of the context the trainer
    saw (`data.planner_context`: the facts, one a line, then `instruction: ...`).

    `source` is a run directory of `embodylab train-planner` or a `(model, tokenizer)` pair. `loops` is the
    depth (default: the model's training mean), or with `exit="gate"` the most loops a token may take. With
    `grounded` every token is masked to the plan grammar over the request's entities
    (`grammar.PlanGrammar.allowed_token_ids`), so only grammatical plans naming the scene's ids come out;
    without it the text is decoded freely and held to the same grammar afterwards."""

    def __init__(
        self,
        source: str | Path | tuple[LoopedLM, PlannerTokenizer],
        loops: int | None = None,
        exit: Literal["fixed", "gate"] = "fixed",
        grounded: bool = True,
        max_new_tokens: int = 256,
    ):
        if isinstance(source, tuple):
            self.model, self.tokenizer = source
            self.model_id = "looped"
        else:
            from embodylab.policies.planner.training import load_planner

            self.model, self.tokenizer, _ = load_planner(source)
            self.model_id = f"looped:{Path(source).name}"
        if loops is not None and loops < 1:
            raise ValueError(f"loops={loops}: a looped planner needs at least one loop")
        if exit == "gate" and self.model.exit_gate is None:
            raise ValueError(
                "exit='gate' needs a model trained with an exit gate (model.exit_gate); use exit='fixed'"
            )
        self.loops, self.exit, self.grounded, self.max_new_tokens = loops, exit, grounded, max_new_tokens
        self._vocab = self.tokenizer.vocab

    def decode(
        self, instruction: str, facts: Sequence[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput:
        """The model's answer, never raising on bad text: `plan` is `None` and `error` says what is wrong
        with `text` when it is no grammatical plan over `entities` (what an evaluation scores as it is)."""
        start = time.perf_counter()
        grammar = PlanGrammar({kind: list(ids) for kind, ids in entities.items()})
        prompt = self.tokenizer.encode_prompt(planner_context(facts, instruction))

        def allowed(generated: list[int]) -> set[int]:
            return grammar.allowed_token_ids(self.tokenizer.decode(generated), self._vocab)

        try:
            generation = self.model.generate(
                prompt,
                self.max_new_tokens,
                loops=self.loops,
                exit=self.exit,
                allowed_fn=allowed if self.grounded else None,
            )
        except ValueError as error:  # a context too long, or a grammar that leaves no token of the vocabulary
            return PlannerOutput(
                "", None, time.perf_counter() - start, len(prompt), 0, None, f"{self.model_id}: {error}"
            )
        text = self.tokenizer.decode(generation.ids)
        plan, problem = None, None
        try:
            grammar.check(text)
            plan = parse_plan(text)
        except ValueError as error:
            problem = (
                f"{self.model_id} answered something that is not a plan: {error} (raw answer {excerpt(text)})"
            )
        return PlannerOutput(
            text,
            plan,
            time.perf_counter() - start,
            len(prompt),
            len(generation.ids),
            generation.mean_loops,
            problem,
        )

    def plan(
        self, instruction: str, facts: list[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput:
        """`decode`, raising `PlanOutputError` (quoting the raw answer) when the answer is no plan."""
        output = self.decode(instruction, facts, entities)
        if output.error is not None:
            raise PlanOutputError(output.error, output.text)
        return output


class OraclePlanner:
    """The symbolic oracle (`embodylab.skills.household.oracle.plan`) as a planner: a shortest plan from
    the env's atoms now to its goal (`goal_atoms`), or `cannot: unreachable goal`. It reads the env, not
    the instruction or the facts: the reference every learned planner is measured against."""

    model_id = "oracle"

    def __init__(self, env: gym.Env):
        self.env = env

    def plan(
        self, instruction: str, facts: list[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput:
        start = time.perf_counter()
        u = self.env.unwrapped
        steps = oracle.plan(u.predicates(), set(u.goal_atoms), u.scene_graph())
        text = "cannot: " + UNREACHABLE if steps is None else format_plan(from_oracle(steps))
        return PlannerOutput(text, parse_plan(text), time.perf_counter() - start, 0, 0)


PLANNER_FORMS = {
    "looped": "the packaged looped planner (embodylab/assets/planner)",
    "looped:RUN_DIR": "a looped planner trained by `embodylab train-planner`",
    "oracle": "the symbolic oracle (needs the env)",
    "hf:PATH": "a local Hugging Face causal LM directory or .gguf file",
    "smollm2": "the packaged SmolLM2-135M-Instruct",
    "http:URL": "an OpenAI-compatible server (model name from --model)",
}


def make_planner(
    spec: str,
    env: gym.Env | None = None,
    *,
    model: str = DEFAULT_MODEL_ID,
    loops: int | None = None,
    exit: Literal["fixed", "gate"] = "fixed",
    grounded: bool = True,
) -> Planner:
    """The planner `spec` names, in one of the forms of `PLANNER_FORMS` (`looped`, `looped:RUN_DIR`,
    `oracle`, `hf:PATH`, `smollm2`, `http:URL`). `env` is what `oracle` plans in; `model` the model name
    `http:URL` asks for; `loops`, `exit` and `grounded` configure the looped planners.

    Raises:
        ValueError: an unknown form (the message lists the valid ones), `oracle` without an env, or no
            checkpoint where a looped form points (`training.PlannerCheckpointError`)."""
    kind, _, argument = spec.partition(":")
    if kind == "looped":
        run_dir = Path(argument) if argument else default_looped_dir()
        if not argument and not (run_dir / "checkpoint.pt").is_file():
            raise ValueError(
                f"no looped planner checkpoint in {run_dir}: train one with `embodylab train-planner "
                f"--out {run_dir} --train-examples 2000 --steps 2000`, point at a run with "
                "--planner looped:RUN_DIR, or use --planner oracle"
            )
        return LoopedPlanner(run_dir, loops=loops, exit=exit, grounded=grounded)
    if spec == "oracle":
        if env is None:
            raise ValueError("--planner oracle plans from an env's state; it has no env here")
        return OraclePlanner(env)
    if kind == "hf" and argument:
        from embodylab.policies.planner.adapters import HFPlanner

        path = Path(argument)
        if not path.exists():
            raise FileNotFoundError(f"--planner hf:{argument}: no such model directory or .gguf file")
        if path.suffix == ".gguf":
            return HFPlanner(str(path.parent), path.name, constrained=grounded)
        return HFPlanner(str(path), constrained=grounded)
    if spec == "smollm2":
        from embodylab.policies.planner.adapters import HFPlanner, smollm2_path

        return HFPlanner(*smollm2_path(), constrained=grounded)
    if kind == "http" and argument:
        from embodylab.policies.planner.adapters import HTTPPlanner

        return HTTPPlanner(argument, model)
    forms = "; ".join(f"{form} ({what})" for form, what in PLANNER_FORMS.items())
    raise ValueError(f"unknown planner {spec!r}; valid forms: {forms}")
