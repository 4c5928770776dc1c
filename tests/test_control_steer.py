"""Steering toward an assembly: a system prompt, activation vectors through forward hooks, principles on dilemmas.

Hook mechanics run on a tiny random Llama built in memory (SmolLM2's tokenizer, 2 layers of width 16); the
effect on held-out agreement runs on the embedded SmolLM2-135M with the planted animals-vs-money assembly.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch

from valuelab.cli import main, system_prompt
from valuelab.control.evaluate import evaluate
from valuelab.control.planted import ANIMALS, MONEY, TEMPLATE, planted_targets
from valuelab.control.principles import load_principles
from valuelab.control.steer import steer, steering_prompt
from valuelab.errors import InputError, ModelSpecError
from valuelab.models import parse_spec
from valuelab.models.base import ChoiceRequest
from valuelab.models.hf import HFBackend
from valuelab.models.steering import Steering, read_steering
from valuelab.store import Store, StoredModel, request_key

REQUESTS = [ChoiceRequest(TEMPLATE.render(a, b), (a, b)) for a, b in zip(ANIMALS[:3], MONEY[:3], strict=True)]


@pytest.fixture(scope="module")
def targets():
    return planted_targets()


@pytest.fixture(scope="module")
def tiny(smollm2):
    """(a tiny random Llama with SmolLM2's vocabulary, its tokenizer)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(smollm2.tokenizer), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=1024)
    return LlamaForCausalLM(config).eval(), smollm2.tokenizer


def vectors_folder(path, layers=2, hidden=16, model="tiny-llama", seed=1):
    torch.manual_seed(seed)
    Steering(torch.randn(layers, hidden), 1, 3.0, {"model": model}, {}).write(path)
    return path


def backend(tiny, **options) -> HFBackend:
    model, tokenizer = tiny
    return HFBackend("tiny", model=copy.deepcopy(model), tokenizer=tokenizer, revision="tiny-r1", name="tiny",
                     **options)


def logps(model) -> list[list[float]]:
    return [r.logps for r in model.choice_probs(REQUESTS)]


def test_strength_zero_reproduces_the_base_answers_exactly(tiny, tmp_path):
    folder = vectors_folder(tmp_path / "steer")
    zero = backend(tiny, steer=str(folder), steer_strength=0.0)
    assert zero.steering is not None and zero.steering.strength == 0.0
    assert logps(zero) == logps(backend(tiny))


def test_removing_the_hook_leaves_the_model_as_a_fresh_load(tiny, tmp_path):
    folder = vectors_folder(tmp_path / "steer")
    steered, fresh = backend(tiny, steer=str(folder)), backend(tiny)
    moved, base = logps(steered), logps(fresh)
    assert max(abs(x - y) for a, b in zip(moved, base, strict=True) for x, y in zip(a, b, strict=True)) > 1e-3
    steered.unsteer()
    assert steered.identity() == fresh.identity()
    for a, b in zip(logps(steered), base, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


def test_steering_acts_at_the_answer_position_with_or_without_the_prefix_cache(tiny, tmp_path):
    """The hook adds the vector at the last position only, and is paused for a shared prefix: cached and
    uncached runs agree, and a vector there changes the answer but not what the prompt's other tokens see."""
    folder = vectors_folder(tmp_path / "steer")
    cached, plain = backend(tiny, steer=str(folder)), backend(tiny, steer=str(folder), prefix_cache=False)
    for a, b in zip(logps(cached), logps(plain), strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert cached.stats["computed_tokens"] < plain.stats["computed_tokens"]  # the prefix did run once
    assert max(abs(x - y) for a, b in zip(logps(cached), logps(backend(tiny)), strict=True)
               for x, y in zip(a, b, strict=True)) > 1e-3
    tokens = torch.tensor([cached.tokenizer(cached.render(REQUESTS[0]), add_special_tokens=False).input_ids])
    with torch.no_grad():
        last = cached.model(input_ids=tokens).logits[0]
        with cached.steered_from(tokens.shape[1] - 3):  # a reply read in one pass: its positions are steered too
            reply = cached.model(input_ids=tokens).logits[0]
        unsteered = backend(tiny).model(input_ids=tokens).logits[0]
    assert torch.equal(last[:-1], unsteered[:-1]) and not torch.allclose(last[-1], unsteered[-1])
    assert torch.equal(reply[:-3], unsteered[:-3]) and not torch.allclose(reply[-3], unsteered[-3])


def test_the_fast_answer_position_scoring_matches_the_steered_backend(tiny, targets):
    from valuelab.control.steer import AnswerPosition
    from valuelab.models.steering import add_hook

    model = backend(tiny)
    pairs = targets.train.head(5)
    answers = AnswerPosition(model, pairs, TEMPLATE)
    torch.manual_seed(3)
    shift = 2.0 * torch.randn(16)
    requests = [ChoiceRequest(TEMPLATE.render(a, b), (a, b)) for row in pairs.itertuples()
                for a, b in ((row.text_a, row.text_b), (row.text_b, row.text_a))]
    for layer, vector in ((0, None), (1, shift), (0, shift)):
        hook = add_hook(model.model, layer, vector) if vector is not None else None
        results = model.choice_probs(requests)
        if hook is not None:
            hook.remove()
        p_first = [r.p_a for r in results]
        expected = [0.5 * (p_first[2 * k] + 1 - p_first[2 * k + 1]) for k in range(len(pairs))]
        p, mass = answers.probabilities(layer, vector)
        assert p == pytest.approx(expected, abs=1e-5)
        assert mass == pytest.approx([r.mass for r in results], abs=1e-5)
    # fitting moves the vector toward the majority's labels
    fitted = answers.fit(1, [1, 5], rate=0.5, prompts=[True] * 8 + [False] * 2)
    with torch.no_grad():
        before = answers.label_logps().gather(1, answers.majority[:, None]).mean()
        after = answers.label_logps(1, fitted[5]).gather(1, answers.majority[:, None]).mean()
    assert set(fitted) == {1, 5} and float(after) > float(before)
    assert all(p.requires_grad for p in model.model.parameters())  # the model's own weights are untouched


@pytest.mark.parametrize("vector, setting, tried", [("fitted", "steps", [0, 1, 3]),
                                                    ("mean-difference", "relative_strength", [0.0, 0.5])])
def test_steer_writes_a_folder_chosen_by_cross_validation(tiny, targets, tmp_path, vector, setting, tried):
    options = {"steps": [1, 3]} if vector == "fitted" else {"strengths": [0.5]}
    built = steer(backend(tiny), targets, vector=vector, layers=[0, 1], out=tmp_path / vector, template=TEMPLATE,
                  **options)
    selection = pd.read_csv(tmp_path / vector / "selection.csv")
    assert sorted(map(tuple, selection[["layer", setting]].to_numpy().tolist())) == sorted(
        (float(layer), float(k)) for layer in (0, 1) for k in tried)
    assert selection["n_validation_pairs"].eq(selection["n_validation_pairs"].iloc[0]).all()
    settings = json.loads((tmp_path / vector / "steer.json").read_text())
    assert settings["vector"] == vector and settings[f"{setting}_tried"] == tried and settings["layer"] in (0, 1)
    steering = read_steering(tmp_path / vector)
    if vector == "fitted":  # a unit vector in its own layer, its norm the strength
        others = [k for k in range(2) if k != steering.layer]
        assert float(steering.vectors[others].abs().max()) == 0
        assert float(steering.vectors[steering.layer].norm()) == pytest.approx(1.0 if steering.strength else 0.0)
    assert backend(tiny, steer=str(built.directory)).steering.digest == built.settings["hash"]


def test_the_store_key_names_the_vectors_and_the_strength(tiny, tmp_path):
    folder, other = vectors_folder(tmp_path / "a"), vectors_folder(tmp_path / "b", seed=2)
    models = [backend(tiny), backend(tiny, steer=str(folder)), backend(tiny, steer=str(folder), steer_strength=6),
              backend(tiny, steer=str(other))]
    identities = [m.identity() for m in models]
    assert len({json.dumps(i, sort_keys=True) for i in identities}) == 4
    assert "+steer:sha256:" in identities[1]["revision"] and identities[1]["revision"].endswith("x3@answer")
    prompt = models[0].render(REQUESTS[0])
    keys = {request_key(i, "choice", prompt, {"mode": "logprob"}, 0) for i in identities}
    assert len(keys) == 4
    store = Store()  # answers of the steered and unsteered model are stored apart
    for m in models[:2]:
        StoredModel(m, store).choice_probs(REQUESTS[:1])
    assert len(store) == 2


def test_vectors_of_another_model_are_refused_naming_both(tiny, tmp_path):
    folder = vectors_folder(tmp_path / "wide", hidden=32, model="wide-model")
    with pytest.raises(InputError, match=r"wide-model.*hidden size 32.*tiny \(hidden size 16"):
        backend(tiny, steer=str(folder))
    deep = vectors_folder(tmp_path / "deep", layers=5, model="deep-model")
    with pytest.raises(InputError, match=r"deep-model.*5 layers.*tiny.*2 layers"):
        backend(tiny, steer=str(deep))


def test_the_steer_spec():
    assert parse_spec("smollm2+steer=runs/s").steer == "runs/s"
    both = parse_spec("hf:/m+adapter=runs/a+steer=runs/s")
    assert (both.name, both.adapter, both.steer) == ("/m", "runs/a", "runs/s")
    with pytest.raises(ModelSpecError, match="transformers models only"):
        parse_spec("openai:gpt+steer=runs/s")


def test_prompt_steering_states_the_training_preferences_only(targets, tiny, tmp_path):
    text = steering_prompt(targets)
    held = targets.utilities[targets.utilities["id"].isin(targets.heldout_ids)]["text"]
    assert "animals" in text and "money" in text and text.index("animals") < text.index("money")
    assert not any(t.rstrip(".") in text for t in held)
    result = steer(None, targets, method="prompt", out=tmp_path / "p")
    assert system_prompt(f"@{tmp_path / 'p'}") == text == result.system
    assert json.loads((tmp_path / "p" / "steer.json").read_text())["method"] == "prompt"
    with pytest.raises(InputError, match="no vectors"):
        backend(tiny, steer=str(tmp_path / "p"))


def test_a_malformed_principles_file_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "principles.yaml"
    bad.write_text("- Put honesty before loyalty.\n- id: care\n  txt: Protect people first.\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"principles\.yaml:2 field 'txt'"):
        load_principles(bad)
    assert main(["dilemmas", "synthetic:1", "--principles", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    text = tmp_path / "principles.txt"
    text.write_text("# ours\nhonesty: Put honesty before loyalty.\n\ncare:\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"principles\.txt:4: principle 'care' has no text"):
        load_principles(text)
    from valuelab.items.files import data_file

    shipped = load_principles(data_file("control", "principles.yaml"))
    assert len(shipped) >= 3 and shipped[0].id == "honesty-first"


@pytest.fixture(scope="module")
def methods(smollm2, targets, tmp_path_factory):
    """Base, prompt-steered and activation-steered SmolLM2 on the planted assembly's held-out pairs (about four
    minutes on two CPU cores); the steering built from the training pairs only."""
    folder = tmp_path_factory.mktemp("steer")
    before = [r.logps for r in smollm2.choice_probs(REQUESTS)]
    built = steer(smollm2, targets, out=folder / "act", template=TEMPLATE)
    assert [r.logps for r in smollm2.choice_probs(REQUESTS)] == before and smollm2.steering is None
    prompt = steer(None, targets, method="prompt", out=folder / "prompt")
    store = Store()
    result = evaluate(smollm2, {"prompt": StoredModel(smollm2, store, system=prompt.system),
                                "activation": built.spec}, targets, store=store, template=TEMPLATE,
                      utilities=False, n_boot=500)
    print(result.summary().to_string(), built.to_dict(), sep="\n")
    return built, result


@pytest.mark.slow
def test_evaluate_compares_base_prompt_and_activation_steering(methods):
    built, result = methods
    summary = result.summary().set_index("method")
    assert list(summary.index) == ["base", "prompt", "activation"]
    assert summary.at["activation", "build_seconds"] == pytest.approx(built.build_seconds, abs=1e-3)
    assert (summary["perplexity"] > 1).all() and summary["format_compliance"].between(0, 1).all()
    assert summary.at["activation", "format_compliance"] >= 0.8  # steering was refused where it broke the format
    assert summary.at["activation", "perplexity"] != summary.at["base", "perplexity"]  # the reply is steered too


@pytest.mark.slow
def test_activation_steering_raises_heldout_agreement(methods):
    _, result = methods
    assert result.agreement["activation"].value > result.agreement["base"].value


@pytest.mark.slow
def test_activation_steering_clears_the_base_models_interval(methods):
    """The issue's planted check: on the held-out pairs, the fitted vector's agreement lies above the base
    model's 95 % interval, and the paired change (over the same pairs) excludes 0."""
    from valuelab.control.evaluate import changes

    _, result = methods
    assert result.agreement["activation"].value > result.agreement["base"].hi
    change = changes(result).set_index(["control", "metric"]).loc[("activation", "heldout_agreement")]
    assert change["ci_lo"] > 0


@pytest.mark.slow
def test_strength_zero_and_removed_hooks_leave_smollm2_as_a_fresh_load(smollm2, methods):
    from valuelab.models import load_model

    built, _ = methods
    fresh = logps(load_model("smollm2"))
    smollm2.steer(read_steering(built.directory, strength=0.0))
    try:
        assert logps(smollm2) == fresh  # exactly: adding a zero vector changes no bit
    finally:
        smollm2.unsteer()
    smollm2.steer(read_steering(built.directory))
    try:
        moved = logps(smollm2)
    finally:
        smollm2.unsteer()
    assert max(abs(x - y) for a, b in zip(moved, fresh, strict=True) for x, y in zip(a, b, strict=True)) > 1e-3
    for a, b in zip(logps(smollm2), fresh, strict=True):
        assert a == pytest.approx(b, abs=1e-6)


def test_principle_shifts_are_zero_for_a_model_blind_to_system_prompts(tmp_path):
    from valuelab.control.principles import principle_shifts
    from valuelab.items.files import data_file
    from valuelab.models.synthetic import SyntheticBackend

    model = StoredModel(SyntheticBackend(1))
    result = principle_shifts(model, data_file("control", "principles.yaml"), limit=6, n_boot=30)
    shifts = result.to_frame()
    assert set(shifts["principle"]) == {p.id for p in result.principles}
    assert {"smn_unsteered", "smn_steered", "smn_shift", "smn_shift_lo", "smn_shift_hi",
            "weight_unsteered", "weight_steered"} <= set(shifts.columns)
    scored = shifts.dropna(subset=["smn_unsteered"])
    assert len(scored) and (scored["smn_shift"].abs() < 1e-9).all()  # the synthetic agent ignores system prompts
    assert model.counts.asked >= 5 * 6 * 6  # 6 dilemmas × 6 prompts, unsteered and under each of 4 principles
    assert [p.name for p in result.write(tmp_path)] == ["principles.csv", "principles.json"]
