"""The symbolic verifier of plans, and ProgPrompt's plan metrics computed on the symbolic state.

`verify` simulates a plan on the atoms of the scene before anything runs in physics: every id must be of
its parameter's type in the scene (checked for every step before any is simulated), then each call's
preconditions must hold when it is reached (the static `part_of` facts, the derived `handempty` and
`clear_front` as `oracle.derive` computes them) and its add and delete effects give the next state. The
first failing step is named with the precondition that fails:

    step 5 place_in(green_soap, chest_of_drawers/top_drawer, chest_of_drawers): needs ('open', 'chest_of_drawers/top_drawer')

The metrics of ProgPrompt (Singh et al., ICRA 2023), on the symbolic state instead of VirtualHome's:

- Exec, "the fraction of actions in the program that are executable in the environment, even if they are
  not relevant for the task" (`exec_rate`). Our reading: every step is tried in order, as the simulator
  runs the whole program; a step counts as executable when its ids are of the right types and its
  preconditions hold in the state it is reached in; a step that is not is skipped (the world is left as it
  was: the simulator refuses the action) and the count goes on with the next step. A plan with no steps
  (a refusal) has Exec 1.
- GCR, goal-conditions recall: 1 - unsatisfied goal conditions / goal conditions, where the goal
  conditions are the atoms that differ between the initial and the goal state (`goal_conditions`: the goal
  atoms that do not hold at the start), measured on the final state of that same run (`gcr`). A goal atom
  that held at the start but no longer holds at the end (a drawer opened and left open) differs between
  the final and the goal state as well and counts as an unsatisfied condition of its own; without it a
  plan could undo a goal atom and still score 1.
- SR: success when GCR is 1, i.e. when every goal atom holds at the end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from embodylab.envs.household.predicates import Atom
from embodylab.policies.planner.grammar import type_phrase
from embodylab.policies.planner.language import (
    OPERATOR_BY_NAME,
    Plan,
    PlanCall,
    PlanParseError,
    bindings_of,
    parse_plan,
)
from embodylab.policies.planner.scene import entities as scene_entities
from embodylab.skills.household.oracle import _ground, _matches, derive, fixture_parts_of, relevant_state


@dataclass(frozen=True)
class Verdict:
    """Whether the plan runs symbolically from the given atoms; else its first failing step (1-based) and
    why. `final_state` is the state after the last step simulated (before the failing one; the initial
    state when an id is wrong, since nothing is simulated then)."""

    ok: bool
    failing_step: int | None
    message: str
    final_state: frozenset[Atom] = field(repr=False)


@dataclass(frozen=True)
class Rollout:
    """Every step of a plan tried in order, skipping those that cannot run (ProgPrompt's Exec)."""

    executable: tuple[bool, ...]
    messages: tuple[str, ...]
    """why each step could not run ('' for an executable one)"""
    final_state: frozenset[Atom] = field(repr=False)

    @property
    def exec_rate(self) -> float:
        """ProgPrompt's Exec: executable steps / steps; 1 for a plan without steps."""
        return sum(self.executable) / len(self.executable) if self.executable else 1.0


class SymbolicWorld:
    """The static facts of a scene graph (`HouseholdEnv.scene_graph()`): its ids by type, which part
    belongs to which fixture and which parts block each fixture's front; and one operator step on a state."""

    def __init__(self, graph: dict):
        self.entities = scene_entities(graph)
        self.fixture_parts = fixture_parts_of(graph)
        self.static = frozenset(
            ("part_of", part["name"], fixture["name"])
            for fixture in graph["fixtures"]
            for part in fixture["parts"]
        )
        self._ids = {t: set(ids) for t, ids in self.entities.items()}

    def state(self, atoms: Iterable[Iterable[str]]) -> frozenset[Atom]:
        """The fluent and derived atoms of `atoms` (tuples, or lists as JSON gives them)."""
        return relevant_state({tuple(a) for a in atoms}, self.fixture_parts)

    def type_error(self, call: PlanCall) -> str:
        """Why `call` names an unknown operator, a wrong number of ids or an id not of its parameter's type
        in the scene; '' when it does not."""
        operator = OPERATOR_BY_NAME.get(call.operator)
        if operator is None:
            return f"unknown operator {call.operator!r}; operators: {', '.join(OPERATOR_BY_NAME)}"
        if len(call.args) != len(operator.parameters):
            return f"{call.operator} takes {len(operator.parameters)} ids; got {len(call.args)}"
        for arg, (_, entity_type) in zip(call.args, operator.parameters, strict=True):
            if arg not in self._ids[entity_type]:
                return f"{arg} is not {type_phrase(entity_type)} in this scene"
        return ""

    def unmet(self, state: frozenset[Atom], call: PlanCall) -> Atom | None:
        """The first precondition of a well-typed `call` that does not hold in `state` (None: all hold)."""
        binding = bindings_of(call)
        for precondition in call.schema.preconditions:
            atom = _ground(precondition, binding)
            holds = atom in self.static if atom[0] == "part_of" else atom in state
            if not holds:
                return atom
        return None

    def apply(self, state: frozenset[Atom], call: PlanCall) -> frozenset[Atom]:
        """The state after `call`'s effects (`?any` in a delete effect matches any term), derived atoms
        recomputed."""
        binding = bindings_of(call)
        add = {_ground(a, binding) for a in call.schema.add}
        delete = [_ground(a, binding) for a in call.schema.delete]
        removed = {a for a in state if any(_matches(d, a) for d in delete)}
        return derive((state - removed) | add, self.fixture_parts)


def _step_name(index: int, call: PlanCall) -> str:
    return f"step {index + 1} {call}"


def verify(plan: Plan, atoms: Iterable[Iterable[str]], graph: dict) -> Verdict:
    """Simulate `plan` from `atoms` in the scene `graph` (module docstring); a refusal verifies (it runs
    nothing)."""
    world = SymbolicWorld(graph)
    state = world.state(atoms)
    if not plan.feasible:
        return Verdict(True, None, f"a refusal ({plan.cannot}): nothing to run", state)
    for index, call in enumerate(plan.calls):
        error = world.type_error(call)
        if error:
            return Verdict(False, index + 1, f"{_step_name(index, call)}: {error}", state)
    for index, call in enumerate(plan.calls):
        atom = world.unmet(state, call)
        if atom is not None:
            return Verdict(False, index + 1, f"{_step_name(index, call)}: needs {atom!r}", state)
        state = world.apply(state, call)
    return Verdict(True, None, f"all {len(plan.calls)} steps run", state)


def rollout(plan: Plan, atoms: Iterable[Iterable[str]], graph: dict) -> Rollout:
    """Try every step of `plan` in order from `atoms`, skipping (leaving the state as it is) each one that
    names a wrong id or whose preconditions do not hold, as ProgPrompt's Exec counts them."""
    world = SymbolicWorld(graph)
    state = world.state(atoms)
    executable, messages = [], []
    for index, call in enumerate(plan.calls):
        error = world.type_error(call)
        if not error:
            atom = world.unmet(state, call)
            error = "" if atom is None else f"needs {atom!r}"
        executable.append(not error)
        messages.append(f"{_step_name(index, call)}: {error}" if error else "")
        if not error:
            state = world.apply(state, call)
    return Rollout(tuple(executable), tuple(messages), state)


def exec_rate(plan: Plan, atoms: Iterable[Iterable[str]], graph: dict) -> float:
    """ProgPrompt's Exec: executable steps / steps (`rollout`); 1 for a plan without steps."""
    return rollout(plan, atoms, graph).exec_rate


def goal_conditions(initial: Iterable[Atom], goal: Iterable[Atom]) -> frozenset[Atom]:
    """The goal atoms that differ from the initial state: those that do not hold at the start."""
    return frozenset(goal) - frozenset(initial)


def gcr(final_state: Iterable[Atom], initial: Iterable[Atom], goal: Iterable[Atom]) -> float:
    """Goal-conditions recall: 1 - unsatisfied / goal conditions (module docstring); a goal atom that held
    at the start and not at the end counts as one more, unsatisfied, condition. 1 when there is none."""
    final, initial, goal = frozenset(final_state), frozenset(initial), frozenset(goal)
    conditions = goal_conditions(initial, goal) | {a for a in goal & initial if a not in final}
    if not conditions:
        return 1.0
    return 1.0 - len(conditions - final) / len(conditions)


_CALL_ARGUMENTS = re.compile(r"\(([^()\n]*)\)")


def hallucinated_entities(plan_text: str, entities: dict[str, list[str]]) -> list[str]:
    """The ids the calls in `plan_text` name that the scene lacks (any type), once each, in the order they
    first appear; the text need not parse."""
    known = {i for ids in entities.values() for i in ids}
    found: list[str] = []
    for arguments in _CALL_ARGUMENTS.findall(plan_text):
        for argument in arguments.split(","):
            name = argument.strip()
            if name and name not in known and name not in found:
                found.append(name)
    return found


@dataclass(frozen=True)
class PlanScore:
    """A planner's text scored on the symbolic state: parsed (else `error`), ProgPrompt's Exec, GCR and
    success, and the ids it made up."""

    parsed: bool
    exec_rate: float
    gcr: float
    success: bool
    hallucinated: list[str]
    error: str = ""


def score_plan(
    plan_text: str, atoms: Iterable[Iterable[str]], goal: Iterable[Iterable[str]], graph: dict
) -> PlanScore:
    """`plan_text` scored from the initial `atoms` towards `goal` in the scene `graph`: a text that does
    not parse runs nothing (Exec 0, GCR of the initial state)."""
    world = SymbolicWorld(graph)
    initial = world.state(atoms)
    goal = frozenset(tuple(a) for a in goal)
    hallucinated = hallucinated_entities(plan_text, world.entities)
    try:
        plan = parse_plan(plan_text)
    except PlanParseError as error:
        score = gcr(initial, initial, goal)
        return PlanScore(False, 0.0, score, score == 1.0, hallucinated, str(error))
    run = rollout(plan, atoms, graph)
    score = gcr(run.final_state, initial, goal)
    return PlanScore(True, run.exec_rate, score, score == 1.0, hallucinated)
