"""Planner data: start scene graphs without physics equal the env's, every reference picks out exactly its
entity with its recorded hop count, every feasible plan reaches its goal over the operators, infeasible
instructions are, splits keep their promises, and files fail loudly."""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict

import gymnasium as gym
import pytest

import embodylab  # noqa: F401
from embodylab.envs.household.apartment import CATEGORY_BY_NAME, generate_apartment
from embodylab.policies.planner.data import (
    SPLITS,
    USE_CLASSES,
    apartment_pools,
    as_pairs,
    generate_dataset,
    generate_split,
    read_examples,
    render,
    resolve,
    start_atoms,
    start_scene_graph,
    write_examples,
)
from embodylab.policies.planner.language import CANNOT_REASONS, OPERATOR_BY_NAME, parse_plan
from embodylab.policies.planner.scene import entities
from embodylab.skills.household.oracle import derive, fixture_parts_of, plan


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("planner_data")
    paths = generate_dataset(
        out, n_train=60, n_heldout=20, n_deeper=20, n_longer=12, n_train_apartments=20,
        n_heldout_apartments=8, progress=False,
    )  # fmt: skip
    return {split: read_examples(path) for split, path in paths.items()}


def _examples(dataset):
    return [e for examples in dataset.values() for e in examples]


def _graph(seed: int) -> dict:
    return start_scene_graph(generate_apartment(seed))


def _run(plan_text: str, initial: list[list[str]], graph: dict) -> frozenset:
    """The operators' semantics, written again: preconditions must hold, then delete and add effects."""
    fixture_parts = fixture_parts_of(graph)
    parts = {p["name"]: f["name"] for f in graph["fixtures"] for p in f["parts"]}
    typed = entities(graph)
    state = derive({tuple(a) for a in initial if a[0] not in ("in_room",)}, fixture_parts)
    for call in parse_plan(plan_text).calls:
        op = OPERATOR_BY_NAME[call.operator]
        binding = {v: a for (v, _), a in zip(op.parameters, call.args, strict=True)}
        assert all(a in typed[t] for (_, t), a in zip(op.parameters, call.args, strict=True)), str(call)
        for atom in op.preconditions:
            ground = tuple(binding.get(t, t) for t in atom)
            assert (parts.get(ground[1]) == ground[2]) if ground[0] == "part_of" else ground in state, (
                f"{call}: needs {ground}"
            )
        deleted = [tuple(binding.get(t, t) for t in atom) for atom in op.delete]
        state = {
            a
            for a in state
            if not any(
                len(d) == len(a) and all(x in ("?any", y) for x, y in zip(d, a, strict=True)) for d in deleted
            )
        }
        state = derive(state | {tuple(binding.get(t, t) for t in atom) for atom in op.add}, fixture_parts)
    return state


def test_the_start_scene_graph_without_physics_equals_the_envs_after_a_reset():
    env = gym.make("embodylab/HouseholdPickPlace-v0")
    for seed in (0, 1, 2, 5, 10):  # 10: a thin phone on the chest counts as in its top drawer, too
        env.reset(options={"apartment_seed": seed})
        u = env.unwrapped
        graph = u.scene_graph()
        del graph["robot"]["tcp"], graph["robot"]["gripper_width"]
        apartment = generate_apartment(seed)
        assert start_atoms(apartment) == u.predicates()
        assert start_scene_graph(apartment) == graph
    env.close()


def test_categories_of_use_name_only_categories_the_apartments_have():
    assert all(c in CATEGORY_BY_NAME for categories in USE_CLASSES.values() for c in categories)
    assert set(USE_CLASSES[("piece of fruit", "fruit")]) == {"apple", "orange", "lemon", "pear", "banana"}


def test_every_reference_picks_out_exactly_its_entity_with_its_recorded_hop_count(dataset):
    for example in _examples(dataset):
        graph = _graph(example.apartment_seed)
        assert example.hops == max(r["hops"] for r in example.references)
        for ref in example.references:
            assert render(ref["expr"]) == ref["phrase"] and ref["phrase"] in example.instruction
            found, hops = resolve(ref["expr"], graph)
            assert hops == ref["hops"]
            if ref["entity"] is not None:
                assert found == {ref["entity"]}, (example.instruction, ref)


def test_every_feasible_plan_parses_and_reaches_its_goal_over_the_operators(dataset):
    feasible = [e for e in _examples(dataset) if e.feasible]
    assert feasible
    for example in feasible:
        graph = _graph(example.apartment_seed)
        assert example.initial == [
            list(a) for a in sorted(start_atoms(generate_apartment(example.apartment_seed)))
        ]
        final = _run(example.plan, example.initial, graph)
        assert {tuple(a) for a in example.goal} <= final, example.instruction
        assert example.skills == len(parse_plan(example.plan).calls) > 0


def test_infeasible_examples_refer_to_nothing_or_ask_for_an_unreachable_goal(dataset):
    infeasible = [e for e in _examples(dataset) if not e.feasible]
    assert 0.03 <= len(infeasible) / len(_examples(dataset)) <= 0.25
    for example in infeasible:
        reason = parse_plan(example.plan).cannot
        assert reason in CANNOT_REASONS and example.skills == 0
        graph = _graph(example.apartment_seed)
        if reason == "unreachable goal":
            goal = {tuple(a) for a in example.goal}
            ((relation, _, target),) = goal
            kinds = entities(graph)["container" if relation == "in" else "surface"]
            assert target not in kinds
            if relation == "on":
                assert plan(set(map(tuple, example.initial)), goal, graph) is None
        else:
            nothing = [r for r in example.references if r["entity"] is None]
            assert len(nothing) == 1 and resolve(nothing[0]["expr"], graph)[0] == frozenset()
            is_place = "fixture" in nothing[0]["expr"] or "part" in nothing[0]["expr"]
            assert is_place == (reason == "no such place")


def test_splits_hold_out_apartments_and_go_deeper_and_longer_than_training(dataset):
    train = dataset["train"]
    assert {e.apartment_seed for e in dataset["heldout_apartments"]}.isdisjoint(
        {e.apartment_seed for e in train}
    )
    assert min(e.hops for e in dataset["deeper"]) > max(e.hops for e in train)
    train_skills = max(e.skills for e in train if e.feasible)
    assert min(e.skills for e in dataset["longer"] if e.feasible) > train_skills
    assert all(e.split == split for split, examples in dataset.items() for e in examples)
    assert set(dataset) == set(SPLITS)


def _digest(seed: int) -> str:
    train, _ = apartment_pools(seed, 6, 2)
    examples = generate_split("train", 12, train, seed=seed, progress=False)
    return hashlib.sha256(json.dumps([asdict(e) for e in examples]).encode()).hexdigest()


def test_the_same_seed_gives_the_same_examples_in_any_process():
    code = "from tests.test_planner_data import _digest; print(_digest(3))"
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
        ).stdout.strip()
        for hash_seed in (1, 2)
    }  # fmt: skip
    assert digests == {_digest(3)}
    assert _digest(4) != _digest(3)


def test_examples_round_trip_through_jsonl_and_pair_facts_with_the_instruction(dataset, tmp_path):
    examples = dataset["train"][:5]
    path = write_examples(tmp_path / "train.jsonl", examples)
    assert read_examples(path) == examples
    pair = as_pairs(examples)[0]
    assert pair == {
        "context": "\n".join(examples[0].facts) + "\ninstruction: " + examples[0].instruction,
        "plan": examples[0].plan,
    }


def test_a_corrupt_line_is_an_error_naming_the_file_and_the_line(dataset, tmp_path):
    path = write_examples(tmp_path / "train.jsonl", dataset["train"][:2])
    path.write_text(path.read_text() + '{"apartment_seed": 3, "task"\n')
    with pytest.raises(ValueError, match=r"train\.jsonl line 3: not JSON"):
        read_examples(path)
    path.write_text('{"apartment_seed": 3}\n')
    with pytest.raises(ValueError, match=r"line 1: not a planner example \(missing"):
        read_examples(path)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="nothing.jsonl: no such file"):
        read_examples(tmp_path / "nothing.jsonl")
