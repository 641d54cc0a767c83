"""The plan language: what every planner writes and every verifier and executor reads.

A plan is a sequence of grounded operator calls of `embodylab.skills.household.schema.OPERATORS`, every
parameter given in the operator's parameter order, separated by ` ; ` and ended by `done`:

    navigate(kitchen_counter) ; pick(red_mug, kitchen_counter) ; navigate(dining_table) ; place_on(red_mug, dining_table) ; done

An instruction that cannot be carried out is answered by one line, `cannot: <reason>`, never by a plan.
Entity ids are the scene graph's names (objects, fixtures, parts as `fixture/link`). Parsing is strict: a
text that is not exactly this language is a `PlanParseError` naming the offending text and where it
starts; nothing is guessed or repaired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from embodylab.skills.household.oracle import Step
from embodylab.skills.household.schema import OPERATORS, Operator

SEPARATOR = " ; "
END = "done"
CANNOT = "cannot: "
CANNOT_REASONS = ("no such object", "no such place", "unreachable goal")
"""the reasons the data labels infeasible instructions with (a planner may give any reason text)"""
OPERATOR_BY_NAME: dict[str, Operator] = {op.name: op for op in OPERATORS}
ENTITY = r"[a-z0-9_]+(?:/[a-z0-9_]+)?"
_CALL = re.compile(rf"([a-z_]+)\(({ENTITY}(?:, {ENTITY})*)?\)")


class PlanParseError(ValueError):
    """Text that is not a plan of the plan language; the message quotes it and names the position."""


@dataclass(frozen=True)
class PlanCall:
    """One grounded operator call: the operator's name and one id per parameter, in parameter order."""

    operator: str
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.operator}({', '.join(self.args)})"

    @property
    def schema(self) -> Operator:
        return OPERATOR_BY_NAME[self.operator]


@dataclass(frozen=True)
class Plan:
    """A plan (`calls`, then `done`) or a refusal (`cannot` holds the reason and `calls` is empty)."""

    calls: tuple[PlanCall, ...] = ()
    cannot: str | None = None

    @property
    def feasible(self) -> bool:
        return self.cannot is None


def format_plan(plan: Plan) -> str:
    """The plan's text in the plan language (`parse_plan(format_plan(p)) == p`)."""
    if plan.cannot is not None:
        return CANNOT + plan.cannot
    return SEPARATOR.join([*map(str, plan.calls), END])


def _excerpt(text: str, start: int) -> str:
    piece = text[start : start + 40]
    return repr(piece + ("..." if len(text) > start + 40 else ""))


def parse_plan(text: str) -> Plan:
    """The `Plan` written in `text`, with every operator known and given as many ids as it has parameters.

    Raises:
        PlanParseError: anything else; the message names the position and quotes the text from there."""
    if not isinstance(text, str):
        raise PlanParseError(f"a plan is text; got {type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith(CANNOT.strip()):
        reason = stripped[len(CANNOT.strip()) :].strip()
        if not reason or "\n" in reason:
            raise PlanParseError(f"'cannot:' must be followed by a one-line reason; got {stripped!r}")
        return Plan(cannot=reason)
    pieces = stripped.split(SEPARATOR)
    if pieces[-1] != END:
        raise PlanParseError(
            f"a plan ends with {SEPARATOR.strip()!r} {END!r} (or is 'cannot: <reason>'); got {_excerpt(stripped, max(0, len(stripped) - 40))} at its end"
        )
    calls, position = [], 0
    for piece in pieces[:-1]:
        match = _CALL.fullmatch(piece)
        if match is None:
            raise PlanParseError(
                f"not an operator call at character {position}: {_excerpt(stripped, position)} "
                "(expected name(id, id, ...))"
            )
        name, args = match.group(1), tuple(match.group(2).split(", ")) if match.group(2) else ()
        if name not in OPERATOR_BY_NAME:
            raise PlanParseError(
                f"unknown operator {name!r} at character {position}; operators: {', '.join(OPERATOR_BY_NAME)}"
            )
        parameters = OPERATOR_BY_NAME[name].parameters
        if len(args) != len(parameters):
            wanted = ", ".join(f"{v.lstrip('?')}: {t}" for v, t in parameters)
            raise PlanParseError(
                f"{name} at character {position} takes {len(parameters)} ids ({wanted}); got {len(args)}"
            )
        calls.append(PlanCall(name, args))
        position += len(piece) + len(SEPARATOR)
    return Plan(tuple(calls))


def from_oracle(steps: list[Step]) -> Plan:
    """The oracle's plan (`embodylab.skills.household.oracle.plan`) in the plan language: every operator
    parameter from the step's bindings, in parameter order."""
    calls = []
    for step in steps:
        bindings = dict(step.bindings)
        parameters = OPERATOR_BY_NAME[step.operator].parameters
        calls.append(PlanCall(step.operator, tuple(bindings[v] for v, _ in parameters)))
    return Plan(tuple(calls))


def bindings_of(call: PlanCall) -> dict[str, str]:
    """The operator's parameter variables bound to the call's ids (`{"?obj": "red_mug", ...}`)."""
    return {v: a for (v, _), a in zip(call.schema.parameters, call.args, strict=True)}


def skill_args(call: PlanCall) -> tuple[str, ...]:
    """The positional arguments of the skill that runs `call` (`Operator.arguments`)."""
    binding = bindings_of(call)
    return tuple(binding[v] for v in call.schema.arguments)
