"""The plan language: strict parsing, exact formatting, the oracle's plans written in it; the scene facts."""

import gymnasium as gym
import pytest

import embodylab  # noqa: F401
from embodylab.policies.planner.language import (
    Plan,
    PlanCall,
    PlanParseError,
    format_plan,
    from_oracle,
    parse_plan,
    skill_args,
)
from embodylab.policies.planner.scene import entities, scene_facts
from embodylab.skills.household.oracle import plan as oracle_plan

TEXT = "navigate(chest_of_drawers) ; open(chest_of_drawers/top_drawer, chest_of_drawers) ; done"


def test_a_plan_round_trips_through_its_text():
    plan = parse_plan(TEXT)
    assert plan.calls[1] == PlanCall("open", ("chest_of_drawers/top_drawer", "chest_of_drawers"))
    assert format_plan(plan) == TEXT


def test_a_refusal_is_one_line_with_its_reason():
    assert parse_plan("cannot: no such object") == Plan(cannot="no such object")
    assert format_plan(Plan(cannot="no such place")) == "cannot: no such place"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("navigate(kitchen_table)", "ends with"),
        ("teleport(kitchen_table) ; done", "unknown operator 'teleport'"),
        ("pick(red_mug) ; done", "takes 2 ids"),
        ("navigate(Kitchen Table) ; done", "not an operator call at character 0"),
        ("import os ; done", "not an operator call"),
        ("cannot:", "one-line reason"),
    ],
)
def test_text_outside_the_language_is_an_error_naming_what_is_wrong(text, complaint):
    with pytest.raises(PlanParseError, match=complaint):
        parse_plan(text)


def test_the_oracles_plan_is_written_with_every_parameter_and_runs_the_same_skills():
    env = gym.make("embodylab/HouseholdStow-v0")
    env.reset(seed=0)
    u = env.unwrapped
    steps = oracle_plan(u.predicates(), set(u.goal_atoms), u.scene_graph())
    plan = from_oracle(steps)
    assert parse_plan(format_plan(plan)) == plan
    assert [skill_args(c) for c in plan.calls] == [s.args for s in steps]
    assert all(len(c.args) == len(c.schema.parameters) for c in plan.calls)


def test_scene_facts_name_every_entity_a_plan_may_use():
    env = gym.make("embodylab/HouseholdTidy-v0")
    env.reset(seed=3)
    graph = env.unwrapped.scene_graph()
    text = "\n".join(scene_facts(graph))
    ids = entities(graph)
    assert all(name in text for names in ids.values() for name in names)
    assert text.startswith(f"room {graph['rooms'][0]['name']} ; next to {graph['rooms'][1]['name']}")
    assert set(ids["container"]) <= set(ids["part"])
