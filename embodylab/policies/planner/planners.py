"""What every planner returns, the planner protocol, and the one text format of a planning request.

A planner turns an English instruction and the scene's facts (`scene.py`: one fact per line) into plan
text in the plan language (`language.py`), e.g. `navigate(kitchen_counter) ; pick(red_mug,
kitchen_counter) ; done` or `cannot: no such object`. The LLM adapters (`adapters.py`) and the HTTP server
(`server.py`) pass the request to a language model as one user message in the format of `format_request`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


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
