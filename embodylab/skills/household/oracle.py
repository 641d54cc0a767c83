"""The household oracle: breadth-first search over the operators (`schema.OPERATORS`), and a runner that executes
the plan through the skills in physics, re-planning from the observed atoms whenever a skill fails or the
world is not what the plan expected.

The planner grounds the operators over the entities that matter to the goal (its objects, the furniture
they stand on, the targets and the drawers), so that the search stays small; it works on the symbolic
state only (`fluents`), never on physics.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import product

import gymnasium as gym

from embodylab.envs.household.predicates import Atom
from embodylab.skills.household.adapter import SKILLS, Robot
from embodylab.skills.household.schema import OPERATORS, Operator

FLUENTS = ("on", "in", "holding", "open", "closed", "at")
MAX_PLAN_LENGTH = 14
MAX_REPLANS = 4


@dataclass(frozen=True)
class Step:
    """One grounded operator: its name, the skill that runs it and the skill's arguments."""

    operator: str
    skill: str
    args: tuple[str, ...]
    bindings: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return f"{self.skill}({', '.join(self.args)})"


def _ground(atom: tuple[str, ...], binding: dict[str, str]) -> Atom:
    return tuple(binding.get(term, term) for term in atom)


DERIVED = ("handempty", "clear_front")


def derive(state: set[Atom], fixture_parts: dict[str, list[str]]) -> frozenset[Atom]:
    """`state` with the derived atoms recomputed: `handempty` (no `holding` atom) and `clear_front(f)` for
    every fixture none of whose doors or drawers is open (an open one keeps the base too far back to reach
    the fixture's top)."""
    state = {a for a in state if a[0] not in DERIVED}
    if not any(a[0] == "holding" for a in state):
        state.add(("handempty",))
    for fixture, parts in fixture_parts.items():
        if not any(("open", part) in state for part in parts):
            state.add(("clear_front", fixture))
    return frozenset(state)


def fixture_parts_of(graph: dict) -> dict[str, list[str]]:
    """Each fixture's doors and drawers whose opening blocks its front (`derive`'s `clear_front`): its own
    parts, and for a fixture another stands on, the parts of the one on top as well. `graph` is the env's
    `scene_graph()`."""
    fixture_parts = {f["name"]: [p["name"] for p in f["parts"]] for f in graph["fixtures"]}
    for f in graph["fixtures"]:  # a microwave's door is in front of the counter it stands on, too
        if f.get("on_top_of"):
            fixture_parts[f["on_top_of"]] = fixture_parts.get(f["on_top_of"], []) + fixture_parts[f["name"]]
    return fixture_parts


def relevant_state(atoms: set[Atom], fixture_parts: dict[str, list[str]]) -> frozenset[Atom]:
    """The fluent atoms of `atoms` plus the derived ones (`derive`)."""
    return derive({a for a in atoms if a[0] in FLUENTS}, fixture_parts)


def plan(
    atoms: set[Atom], goal: set[Atom], graph: dict, operators: tuple[Operator, ...] = OPERATORS
) -> list[Step] | None:
    """A shortest sequence of `operators` from the state `atoms` to one where every goal atom holds; None if
    the goal is unreachable within `MAX_PLAN_LENGTH` steps. `graph` is the env's `scene_graph()`.

    The search first considers only the furniture the goal involves; when that finds no plan (an object must
    be set down somewhere else first) it searches again over every top."""
    return _plan(atoms, goal, graph, operators, every_top=False) or _plan(
        atoms, goal, graph, operators, every_top=True
    )


def _plan(
    atoms: set[Atom], goal: set[Atom], graph: dict, operators: tuple[Operator, ...], every_top: bool
) -> list[Step] | None:
    fixture_parts = fixture_parts_of(graph)
    start = relevant_state(atoms, fixture_parts)
    goal = set(goal)
    goal_objects = {a[1] for a in goal if a[0] in ("on", "in")} | {a[1] for a in start if a[0] == "holding"}
    parts = {p["name"]: f["name"] for f in graph["fixtures"] for p in f["parts"]}
    containers = {p["name"] for f in graph["fixtures"] for p in f["parts"] if p["is_container"]}
    surfaces = {f["name"] for f in graph["fixtures"] if f["has_top"]}
    goal_parts = {a[1] for a in goal if a[0] in ("open", "closed")} | {a[2] for a in goal if a[0] == "in"}
    places = {a[2] for a in goal if a[0] == "on"} | {parts[p] for p in goal_parts}
    places |= {a[2] for a in start if a[0] == "on" and a[1] in goal_objects}
    if every_top:
        places |= surfaces
    static = {("part_of", part, fixture) for part, fixture in parts.items()}
    domains = {
        "object": sorted(goal_objects),
        "surface": sorted(surfaces & places),
        "container": sorted(containers & goal_parts),
        "part": sorted(goal_parts),
        "place": sorted(places),
    }
    actions = []
    for op in operators:
        names = [p for p, _ in op.parameters]
        for values in product(*(domains[t] for _, t in op.parameters)):
            binding = dict(zip(names, values, strict=True))
            pre = [_ground(a, binding) for a in op.preconditions]
            if any(a[0] == "part_of" and a not in static for a in pre):
                continue
            pre = frozenset(a for a in pre if a[0] != "part_of")
            add = frozenset(_ground(a, binding) for a in op.add)
            delete = [_ground(a, binding) for a in op.delete]
            args = tuple(binding[variable] for variable in op.arguments)
            step = Step(op.name, op.skill, args, tuple(sorted(binding.items())))
            actions.append((step, pre, add, delete))

    def satisfied(state: frozenset[Atom]) -> bool:
        return goal <= state

    frontier = deque([(start, [])])
    seen = {start}
    while frontier:
        state, steps = frontier.popleft()
        if satisfied(state):
            return steps
        if len(steps) >= MAX_PLAN_LENGTH:
            continue
        for step, pre, add, delete in actions:
            if not pre <= state:
                continue
            removed = {a for a in state if any(_matches(d, a) for d in delete)}
            nxt = derive((state - removed) | add, fixture_parts)
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, [*steps, step]))
    return None


def _matches(pattern: Atom, atom: Atom) -> bool:
    """`?any` in a delete effect matches any term (`at(robot, ?any)` removes wherever the robot was)."""
    return len(pattern) == len(atom) and all(
        p == "?any" or p == a for p, a in zip(pattern, atom, strict=True)
    )


@dataclass
class RunReport:
    success: bool
    skill_steps: int = 0
    env_steps: int = 0
    replans: int = 0
    failures: list[str] = field(default_factory=list)
    """the reason of every failed skill, in order"""
    plan: list[str] = field(default_factory=list)
    """the skills executed, e.g. 'pick(red_mug)'"""


def run_oracle(env: gym.Env, operators: tuple[Operator, ...] = OPERATORS) -> RunReport:
    """Plan from the env's current atoms over `operators` and execute each step's skill, re-planning on failure.

    Call after `env.reset()`; returns when the goal holds, no plan exists, the re-plan budget is spent or
    the episode ends."""
    u = env.unwrapped
    robot = Robot(env)
    report = RunReport(False)
    goal = set(u.goal_atoms)
    while not goal <= u.predicates():
        steps = plan(u.predicates(), goal, u.scene_graph(), operators)
        if steps is None:
            report.failures.append("no plan")
            break
        ended = False
        for step in steps:
            result = SKILLS[step.skill](env, *step.args, robot=robot)
            report.skill_steps += 1
            report.plan.append(str(step))
            if not result.success:
                report.failures.append(f"{step.skill}: {result.reason}")
                ended = result.reason == "the episode ended"
                break
        if ended or report.replans >= MAX_REPLANS:
            break
        if not goal <= u.predicates():
            report.replans += 1
    report.env_steps = robot.steps
    report.success = bool(goal <= u.predicates())
    return report
