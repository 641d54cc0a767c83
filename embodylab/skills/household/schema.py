"""The operator schema of the household skills: PDDL-like action schemas over the atoms of
`embodylab.envs.household.predicates`, each naming the registered skill that executes it and the variables
passed to it, in order.

`handempty` is derived (no `holding` atom holds), and so is `clear_front(fixture)` (none of its doors and
drawers is open: an open one keeps the base too far back to reach the top). `part_of(part, fixture)` is static.
"""

from __future__ import annotations

from dataclasses import dataclass

from embodylab.envs.household.predicates import ROBOT

# The skill modules register their skills (`SKILLS`) on import: the operators below name them.
from embodylab.skills.household import articulate, grasp, navigate  # noqa: F401
from embodylab.skills.household.adapter import SKILLS


@dataclass(frozen=True)
class Operator:
    """A PDDL-like action schema: typed parameters, preconditions and add/delete effects (atoms with ?vars),
    and how it runs: `skill(env, *arguments)`, the skill by its registered name (two operators may share one:
    place on a top or in a drawer) and `arguments` the parameter variables bound to its positional arguments.

    Raises `ValueError` on an unregistered skill or an argument that is not a parameter."""

    name: str
    parameters: tuple[tuple[str, str], ...]
    preconditions: tuple[tuple[str, ...], ...]
    add: tuple[tuple[str, ...], ...]
    delete: tuple[tuple[str, ...], ...]
    skill: str
    arguments: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.skill not in SKILLS:
            raise ValueError(
                f"operator {self.name!r} names unknown skill {self.skill!r}; skills: {', '.join(sorted(SKILLS))}"
            )
        variables = [variable for variable, _ in self.parameters]
        unknown = [a for a in self.arguments if a not in variables]
        if unknown:
            raise ValueError(
                f"operator {self.name!r} passes {unknown} to its skill; its parameters are {variables}"
            )


OPERATORS: tuple[Operator, ...] = (
    Operator(
        "navigate",
        (("?to", "place"),),
        (),
        (("at", ROBOT, "?to"),),
        (("at", ROBOT, "?any"),),
        "navigate",
        ("?to",),
    ),
    Operator(
        "pick",
        (("?obj", "object"), ("?from", "surface")),
        (("at", ROBOT, "?from"), ("on", "?obj", "?from"), ("handempty",), ("clear_front", "?from")),
        (("holding", "?obj"),),
        (("on", "?obj", "?from"), ("handempty",)),
        "pick",
        ("?obj",),
    ),
    Operator(
        "place_on",
        (("?obj", "object"), ("?to", "surface")),
        (("at", ROBOT, "?to"), ("holding", "?obj"), ("clear_front", "?to")),
        (("on", "?obj", "?to"), ("handempty",)),
        (("holding", "?obj"),),
        "place",
        ("?obj", "?to"),
    ),
    Operator(
        "place_in",
        (("?obj", "object"), ("?to", "container"), ("?at", "place")),
        (("part_of", "?to", "?at"), ("at", ROBOT, "?at"), ("holding", "?obj"), ("open", "?to")),
        (("in", "?obj", "?to"), ("handempty",)),
        (("holding", "?obj"),),
        "place",
        ("?obj", "?to"),
    ),
    Operator(
        "open",
        (("?part", "part"), ("?at", "place")),
        (("part_of", "?part", "?at"), ("at", ROBOT, "?at"), ("handempty",), ("closed", "?part")),
        (("open", "?part"),),
        (("closed", "?part"),),
        "open",
        ("?part",),
    ),
    Operator(
        "close",
        (("?part", "part"), ("?at", "place")),
        (("part_of", "?part", "?at"), ("at", ROBOT, "?at"), ("handempty",), ("open", "?part")),
        (("closed", "?part"),),
        (("open", "?part"),),
        "close",
        ("?part",),
    ),
)
