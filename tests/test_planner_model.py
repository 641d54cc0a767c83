"""Specifications of the planner's tokens, looped model and trainer (`embodylab.policies.planner`)."""

import json
import math

import pytest
import torch

from embodylab.policies.planner.looped import (
    LoopedConfig,
    LoopedLM,
    baseline_configs,
    exit_distribution,
    make_batch,
    parameter_count,
    q_exit,
)
from embodylab.policies.planner.tokenizer import PlannerTokenizer
from embodylab.policies.planner.training import (
    CHECKPOINT,
    PlannerCheckpointError,
    TrainPlannerConfig,
    load_pairs,
    load_planner,
    train_planner,
)

torch.set_num_threads(1)

PLAN = "navigate(kitchen_counter) ; pick(red_mug, kitchen_counter) ; done"
OBJECTS = ("red_mug", "blue_bowl", "soap", "book")
PLACES = ("kitchen_counter", "dining_table", "sofa", "chest/top_drawer")
PAIRS = [
    (
        f"{obj} on {src} ; bring it to {dst}",
        f"pick({obj}, {src}) ; place_on({obj}, {dst}) ; done",
    )
    for obj, src, dst in zip(
        OBJECTS + OBJECTS,
        PLACES + PLACES[::-1],
        PLACES[1:] + PLACES[:1] + PLACES[2:] + PLACES[:2],
        strict=True,
    )
]
"""8 distinct context → plan pairs in the plan language."""


def tiny_config(vocab_size: int, **changes) -> LoopedConfig:
    values = dict(
        vocab_size=vocab_size, d_model=32, heads=2, core_layers=1, loops=3, backprop_loops=2, max_len=64
    )
    return LoopedConfig(**{**values, **changes})


def write_pairs(path, pairs=PAIRS):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"context": c, "plan": p}) + "\n" for c, p in pairs))
    return path


def train_config(tmp_path, **changes) -> TrainPlannerConfig:
    values = dict(
        data=str(write_pairs(tmp_path / "pairs.jsonl")),
        out=str(tmp_path / "run"),
        model=tiny_config(5),
        steps=6,
        batch_size=4,
        warmup=2,
        eval_every=1000,
        checkpoint_every=3,
    )
    return TrainPlannerConfig(**{**values, **changes})


@pytest.fixture
def tokenizer():
    return PlannerTokenizer.train(
        [text for pair in PAIRS for text in pair] + [PLAN, "cannot: no such object"]
    )


# ---- tokens ----------------------------------------------------------------------------------------------
def test_tokenizer_round_trips_the_plan_language_exactly(tokenizer):
    for text in [PLAN, "cannot: no such object", *(plan for _, plan in PAIRS)]:
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.id_to_token(tokenizer.encode(PLAN)[1]) == "("


def test_tokenizer_maps_unknown_words_to_unk(tokenizer):
    ids = tokenizer.encode("navigate(bathtub)")
    assert ids[2] == tokenizer.unk_id == tokenizer.token_to_id("<unk>") == tokenizer.token_to_id("bathtub")
    assert tokenizer.pad_id == 0


def test_tokenizer_saves_and_loads_and_names_a_corrupt_file(tokenizer, tmp_path):
    path = tokenizer.save(tmp_path)
    assert PlannerTokenizer.load(tmp_path).encode(PLAN) == tokenizer.encode(PLAN)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        PlannerTokenizer.load(tmp_path)
    with pytest.raises(ValueError, match="missing"):
        PlannerTokenizer.load(tmp_path / "missing")


# ---- the model -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loops", range(1, 7))
def test_output_shapes_for_every_loop_count(loops):
    model = LoopedLM(tiny_config(20)).eval()
    output = model(torch.randint(0, 20, (2, 7)), loops=loops)
    assert output.logits.shape == (2, 7, 20)
    assert len(output.loop_logits) == loops and output.exit_probs.shape == (2, 7, loops)
    torch.testing.assert_close(output.exit_probs.sum(-1), torch.ones(2, 7))


def test_adapter_sees_the_prelude_output_at_every_loop():
    model = LoopedLM(tiny_config(20)).eval()
    ids = torch.randint(0, 20, (1, 6))
    seen = []
    model.adapter.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0][..., :32]))
    model(ids, loops=4)
    prelude_output = model._embed_input(ids, None, None)
    assert len(seen) == 4
    for injected in seen:
        torch.testing.assert_close(injected, prelude_output)


def test_the_output_at_two_loops_depends_on_the_prelude_output():
    model = LoopedLM(tiny_config(20)).eval()
    ids = torch.randint(0, 20, (1, 6))
    before = model(ids, loops=2).logits
    model.prelude[-1].register_forward_hook(lambda module, inputs, output: output + 1.0)
    assert not torch.allclose(model(ids, loops=2).logits, before)


def test_truncated_backprop_runs_early_loops_without_grad():
    model = LoopedLM(tiny_config(20, backprop_loops=2)).train()
    grad_enabled = []
    model.core[0].register_forward_hook(
        lambda module, inputs, output: grad_enabled.append(output.requires_grad)
    )
    output = model(torch.randint(0, 20, (2, 6)), loops=5)
    assert grad_enabled == [False, False, False, True, True]
    output.logits.sum().backward()
    assert all(p.grad is not None for p in model.core.parameters())
    assert all(p.grad is not None for p in model.prelude.parameters())


def test_drawn_loop_counts_are_reproducible_and_have_the_configured_mean():
    model = LoopedLM(tiny_config(20, loops=4))
    draws = [model.sample_loops(torch.Generator().manual_seed(7)) for _ in range(3)]
    assert len(set(draws)) == 1
    generator = torch.Generator().manual_seed(3)
    sequence = [model.sample_loops(generator) for _ in range(2000)]
    generator.manual_seed(3)
    assert [model.sample_loops(generator) for _ in range(2000)] == sequence
    assert abs(sum(sequence) / len(sequence) - 4) < 0.4
    assert min(sequence) >= 1


def test_fixed_loop_sampling_always_runs_the_configured_loops():
    model = LoopedLM(tiny_config(20, loops=3, loop_sampling="fixed"))
    assert {model.sample_loops() for _ in range(50)} == {3}


def test_q_exit_is_the_first_loop_whose_cdf_reaches_the_threshold():
    q = exit_distribution(torch.full((6,), 0.3))  # CDF 0.3, 0.51, 0.657, ...
    torch.testing.assert_close(q.sum(), torch.tensor(1.0))
    assert int(q_exit(q, 0.5)) == 2
    assert int(q_exit(q, 0.8)) == 5  # 1 - 0.7**5 = 0.83
    assert int(q_exit(q, 1.0)) == 6


def test_gate_decoding_stops_each_token_at_its_q_exit():
    model = LoopedLM(tiny_config(20)).eval()
    torch.nn.init.zeros_(model.exit_gate.weight)
    torch.nn.init.constant_(model.exit_gate.bias, math.log(0.3 / 0.7))  # λ = 0.3 at every loop
    calls = []
    model.core[0].register_forward_hook(lambda *args: calls.append(1))
    model.config.exit_threshold = 0.5
    generation = model.generate(
        [1, 7, 8, 2], max_new_tokens=5, loops=6, exit="gate", allowed_fn=lambda ids: {9}
    )
    assert generation.mean_loops == 2.0
    assert len(calls) == 6 + 5 * 2  # the prefill at full depth, then two loops per token


def test_cached_decoding_matches_full_recomputation():
    model = LoopedLM(tiny_config(20, loops=3)).eval()
    context = torch.randint(5, 20, (12,)).tolist()
    cached = model.generate(context, max_new_tokens=10, allowed_fn=lambda ids: range(5, 20))
    full = model.generate(context, max_new_tokens=10, allowed_fn=lambda ids: range(5, 20), use_cache=False)
    assert cached == full


def test_generate_respects_allowed_fn():
    model = LoopedLM(tiny_config(20)).eval()
    allowed = [{7, 9}, {11}, {3}]  # 3 is <eos>
    generation = model.generate([1, 5, 2], max_new_tokens=10, allowed_fn=lambda ids: allowed[len(ids)])
    assert generation.ids[0] in {7, 9} and generation.ids[1:] == [11]


def test_loss_scores_only_the_plan_and_gives_gate_stats(tokenizer):
    model = LoopedLM(tiny_config(tokenizer.vocab_size))
    examples = [tokenizer.encode_example(c, p) for c, p in PAIRS[:3]]
    batch = make_batch(examples)
    scored = int(batch.targets.ne(-100).sum())
    assert scored == sum(len(ids) - start for ids, start in examples)
    loss, stats = model.loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert model.exit_gate.weight.grad is not None and math.isfinite(stats["loss"])
    assert 0 <= stats["exit_entropy"] <= math.log(stats["loops"]) + 1e-6


def test_padding_does_not_change_the_logits_of_the_real_tokens():
    model = LoopedLM(tiny_config(20)).eval()
    short, long = [1, 7, 8, 2, 9], [1, 7, 8, 9, 10, 2, 11, 12]
    batch = torch.tensor([short + [0] * 3, long])
    output = model(batch, pad_mask=batch.eq(0))
    alone = model(torch.tensor([short])).logits
    assert torch.isfinite(output.logits).all()
    torch.testing.assert_close(output.logits[0, : len(short)], alone[0])


def test_the_gate_loss_is_the_exit_weighted_cross_entropy_minus_the_entropy(tokenizer):
    model = LoopedLM(tiny_config(tokenizer.vocab_size, exit_entropy=0.1)).eval()
    batch = make_batch([tokenizer.encode_example(c, p) for c, p in PAIRS[:2]])
    loss, _ = model.loss(batch)
    output = model(batch.ids, pad_mask=batch.pad_mask)
    scored = batch.targets.ne(-100)
    per_loop = torch.stack(
        [
            torch.nn.functional.cross_entropy(logits[scored], batch.targets[scored], reduction="none")
            for logits in output.loop_logits
        ],
        dim=-1,
    )
    q = output.exit_probs[scored]
    entropy = -(q * q.log()).sum(-1).mean()
    torch.testing.assert_close(loss, (q * per_loop).sum(-1).mean() - 0.1 * entropy)


def test_baselines_have_the_looped_parameters_and_l_times_the_core():
    config = LoopedConfig(vocab_size=100, loops=4, core_layers=2)
    models = {name: LoopedLM(c) for name, c in baseline_configs(config).items()}
    assert parameter_count(models["k_x_1"]) == parameter_count(models["looped"])
    assert parameter_count(models["kL_x_1"].core) == 4 * parameter_count(models["looped"].core)
    assert models["kL_x_1"].config.loops == models["k_x_1"].config.loops == 1


# ---- training --------------------------------------------------------------------------------------------
def test_a_tiny_looped_model_overfits_a_tiny_dataset(tmp_path):
    model = tiny_config(5, d_model=64, loops=2)
    config = train_config(
        tmp_path, model=model, steps=200, batch_size=8, lr=3e-3, warmup=20, checkpoint_every=1000
    )
    result = train_planner(config)
    assert result["eval"]["exact_match"] == 1.0
    model, tokenizer, _ = load_planner(config.out)
    for context, plan in PAIRS:
        generated = model.generate(tokenizer.encode_prompt(context), max_new_tokens=40)
        assert tokenizer.decode(generated.ids) == plan


def test_training_writes_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_planner(train_config(tmp_path, steps=2))
    events = EventAccumulator(str(tmp_path / "run" / "tb"))
    events.Reload()
    assert {"train/loss", "train/loops", "train/exit_entropy", "eval/exact_match"} <= set(
        events.Tags()["scalars"]
    )


def test_load_pairs_names_a_bad_row(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"context": "a", "plan": "done"}\n{"context": "b"}\n')
    with pytest.raises(ValueError, match="pairs.jsonl:2"):
        load_pairs(path)


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    config = train_config(tmp_path, steps=3)
    train_planner(config)
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert state["step"] == 3
    model, tokenizer, loaded = load_planner(config.out)
    assert loaded.model.vocab_size == tokenizer.vocab_size == model.config.vocab_size
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state["model"][name])


def test_resume_continues_the_losses_of_an_uninterrupted_run(tmp_path):
    uninterrupted = train_planner(train_config(tmp_path / "a", steps=6))
    train_planner(train_config(tmp_path / "b", steps=3))
    resumed = train_planner(train_config(tmp_path / "b", steps=6, resume=True))
    assert resumed["start_step"] == 3
    assert resumed["losses"] == uninterrupted["losses"][3:]


def test_same_seed_gives_the_same_losses(tmp_path):
    first = train_planner(train_config(tmp_path / "a", steps=4))
    second = train_planner(train_config(tmp_path / "b", steps=4))
    assert first["losses"] == second["losses"]


def test_a_corrupt_or_missing_checkpoint_is_a_planner_checkpoint_error(tmp_path):
    config = train_config(tmp_path, steps=3)
    train_planner(config)
    (tmp_path / "run" / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(PlannerCheckpointError, match=CHECKPOINT):
        load_planner(config.out)
    (tmp_path / "run" / CHECKPOINT).unlink()
    with pytest.raises(PlannerCheckpointError, match=CHECKPOINT):
        load_planner(config.out)
