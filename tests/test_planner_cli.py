"""Specifications of the planner's commands (`embodylab plan`, `train-planner`, `eval-planner`) and of the
planners they build (`LoopedPlanner`, `OraclePlanner`, `make_planner`)."""

import json

import pytest
import torch
from helpers import run_cli

from embodylab.cli import main
from embodylab.policies.planner import planners, retrieval
from embodylab.policies.planner.data import StartStates, read_examples
from embodylab.policies.planner.evaluation import METRICS
from embodylab.policies.planner.grammar import PlanGrammar
from embodylab.policies.planner.language import parse_plan
from embodylab.policies.planner.planners import LoopedPlanner, PlannerOutput, make_planner
from embodylab.policies.planner.scene import entities
from embodylab.policies.planner.verifier import hallucinated_entities

torch.set_num_threads(1)

PICK_PLACE = ["plan", "--env", "embodylab/HouseholdPickPlace-v0", "--seed", "1"]
TINY_TRAINING = [
    "--train-examples", "24", "--train-apartments", "4", "--heldout-apartments", "2", "--steps", "20",
    "--batch-size", "4", "--warmup", "2", "--eval-every", "1000", "--eval-examples", "2",
    "--model.d-model", "32", "--model.heads", "2", "--model.core-layers", "1", "--model.loops", "2",
]  # fmt: skip


@pytest.fixture
def lexical(monkeypatch):
    """The lexical ranker as the default one: the embedding model takes seconds to load."""
    monkeypatch.setattr(retrieval, "default_ranker", retrieval.LexicalRanker)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A looped planner trained for 20 steps on a data set generated into RUN/data by `train-planner`."""
    run_dir = tmp_path_factory.mktemp("planner") / "run"
    main(["train-planner", "--out", str(run_dir), *TINY_TRAINING])
    return run_dir


def test_plan_with_the_oracle_prints_the_plan_the_verdict_and_a_success(capsys, lexical):
    code, out, _ = run_cli(capsys, *PICK_PLACE, "--planner", "oracle")
    assert code == 0
    assert "put the yellow banana on the cabinet" in out
    assert (
        "navigate(shelf) ; pick(yellow_banana, shelf) ; navigate(cabinet) ; place_on(yellow_banana, cabinet) ; done"
        in out
    )
    assert "verdict: ok" in out
    assert "skill 4 place_on(yellow_banana, cabinet): ok" in out
    assert out.splitlines()[-2].startswith("success: yes")


def test_a_refusal_is_printed_and_nothing_is_executed(capsys, lexical, monkeypatch):
    class Refusing:
        def plan(self, instruction, facts, entities):
            return PlannerOutput("cannot: no such object", parse_plan("cannot: no such object"), 0.0, 0, 0)

    monkeypatch.setattr(planners, "make_planner", lambda *args, **kwargs: Refusing())
    code, out, _ = run_cli(capsys, *PICK_PLACE, "--instruction", "put the unicorn on the cabinet")
    assert code == 0
    assert "cannot: no such object" in out and "nothing executed" in out
    assert "skill 1" not in out and "success: no (info['is_success'] after 0 steps)" in out


def test_an_unknown_planner_form_is_a_one_line_error_naming_the_forms(capsys):
    code, out, err = run_cli(capsys, *PICK_PLACE, "--planner", "gpt9")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "unknown planner 'gpt9'" in err and "looped:RUN_DIR" in err and "http:URL" in err


def test_looped_without_a_checkpoint_says_how_to_make_one(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(planners, "default_looped_dir", lambda: tmp_path / "planner")
    code, _, err = run_cli(capsys, *PICK_PLACE, "--planner", "looped")
    assert code == 2 and err.count("\n") == 1
    assert f"embodylab train-planner --out {tmp_path / 'planner'}" in err and "--planner oracle" in err


def test_train_planner_writes_a_checkpoint_of_its_generated_data(tiny_run):
    assert {"config.json", "checkpoint.pt", "tokenizer", "tb", "data"} <= {p.name for p in tiny_run.iterdir()}
    assert json.loads((tiny_run / "config.json").read_text())["data"] == str(
        tiny_run / "data" / "train.pairs.jsonl"
    )


def test_eval_planner_writes_every_metric_of_every_split_in_range(capsys, tiny_run):
    code, out, _ = run_cli(
        capsys, "eval-planner", str(tiny_run), "--data", str(tiny_run / "data"), "--limit", "3"
    )
    assert code == 0 and "eval_planner.json" in out
    report = json.loads((tiny_run / "eval_planner.json").read_text())
    assert list(report["splits"]) == ["train", "heldout_apartments", "deeper", "longer"]
    for metrics in report["splits"].values():
        assert metrics["examples"] == 3
        assert set(METRICS) <= set(metrics)
        for key in METRICS:
            value = metrics[key]
            assert value is None or value >= 0
            if value is not None and key not in ("latency_p50_s", "latency_p95_s", "mean_loops"):
                assert value <= 1
        assert metrics["hallucination_rate"] == 0.0  # grounded decoding names only the scene's ids


def test_the_grounded_looped_planner_writes_only_grammatical_text_over_the_scenes_ids(tiny_run):
    planner = LoopedPlanner(tiny_run, max_new_tokens=24)
    apartments, texts = StartStates(), []
    for example in read_examples(tiny_run / "data" / "heldout_apartments.jsonl")[:6]:
        ids = entities(apartments(example.apartment_seed)[2])
        output = planner.decode(example.instruction, example.facts, ids)
        PlanGrammar(ids).check(output.text)  # a prefix of a grammatical plan, whole or cut at 24 tokens
        assert hallucinated_entities(output.text, ids) == []
        assert output.loops_used == 2.0 and output.prompt_tokens > 0
        texts.append(output.text)
    assert any("(" in text for text in texts)  # calls that name ids, not refusals only


def test_an_http_form_builds_an_http_planner_without_a_request():
    from embodylab.policies.planner.adapters import HTTPPlanner

    planner = make_planner("http:http://127.0.0.1:1")
    assert isinstance(planner, HTTPPlanner)
    assert planner.url == "http://127.0.0.1:1/v1/chat/completions"
