"""The hf: backend on the real embedded model: label tokens, BOS, batching, probabilities, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from valuelab.elicit.pairwise import prefer_pairs
from valuelab.models import ChoiceRequest
from valuelab.prompts import get_template
from valuelab.store import StoredModel

PAIRS = [
    ("You receive a free cup of coffee.", "Your laptop breaks and cannot be repaired."),
    ("A city of one million people gains clean drinking water.", "You find a $5 bill on the pavement."),
    ("It rains on your day off.", "A rare species of frog is saved from extinction by a new breeding programme."),
]


def requests_for(pairs):
    t = get_template("state-of-world")
    return [ChoiceRequest(t.render(a, b), (a, b)) for a, b in pairs]


def test_label_tokens_are_probed_from_the_rendered_template(smollm2):
    tok = smollm2.tokenizer
    rendered = smollm2.render(requests_for(PAIRS[:1])[0])
    ids_a, ids_b = smollm2.label_ids(rendered)
    # Both surface variants are found, each a single token that decodes back to itself.
    assert sorted(tok.decode([i]) for i in ids_a) == [" A", "A"]
    assert sorted(tok.decode([i]) for i in ids_b) == [" B", "B"]
    assert not set(ids_a) & set(ids_b)
    # The trap: the surface string " A" is not a vocabulary entry, so convert_tokens_to_ids cannot be used.
    assert tok.convert_tokens_to_ids(" A") not in ids_a


def test_prompt_tokens_match_the_chat_template_with_a_single_bos(smollm2):
    request = requests_for(PAIRS[:1])[0]
    fed = smollm2._encode([smollm2.render(request)])["input_ids"][0].tolist()
    reference = smollm2.tokenizer.apply_chat_template(request.messages(), tokenize=True, add_generation_prompt=True)
    if not isinstance(reference, list):
        reference = reference["input_ids"]
    assert fed == list(reference)
    start = smollm2.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert fed[0] == start and fed[1] != start  # no doubled BOS


def test_probabilities_are_consistent(smollm2):
    results = smollm2.choice_probs(requests_for(PAIRS))
    for r in results:
        assert 0.0 < r.mass <= 1.0
        assert r.logp_a <= 0 and r.logp_b <= 0
        assert math.isclose(r.mass, math.exp(r.logp_a) + math.exp(r.logp_b), rel_tol=1e-6)
        assert math.isclose(r.p_a + r.p_b, 1.0)
        assert math.isclose(r.p_a, math.exp(r.logp_a) / r.mass, rel_tol=1e-6)
        # The label carries at least the mass of its plain variant, which is the top token here.
        top = dict(r.top)
        assert math.exp(r.logp_a) >= math.exp(top["A"]) - 1e-9
        assert len(r.top) == 10


def test_full_vocabulary_softmax_matches_manual_forward(smollm2):
    request = requests_for(PAIRS[:1])[0]
    (result,) = smollm2.choice_probs([request])
    enc = smollm2.tokenizer(smollm2.render(request), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logp = torch.log_softmax(smollm2.model(**enc).logits[0, -1].float(), -1)
    ids_a, ids_b = smollm2.label_ids(smollm2.render(request))
    assert result.logp_a == pytest.approx(float(torch.logsumexp(logp[ids_a], 0)), abs=1e-4)
    assert result.logp_b == pytest.approx(float(torch.logsumexp(logp[ids_b], 0)), abs=1e-4)


def test_left_padded_batches_give_the_same_answers_as_single_prompts(smollm2):
    requests = requests_for(PAIRS)
    lengths = {len(smollm2.tokenizer(smollm2.render(r)).input_ids) for r in requests}
    assert len(lengths) > 1, "the prompts must differ in length for padding to matter"
    batched = smollm2.choice_probs(requests)
    single = [smollm2.choice_probs([r])[0] for r in requests]
    for b, s in zip(batched, single, strict=True):
        assert b.logp_a == pytest.approx(s.logp_a, abs=2e-4)
        assert b.logp_b == pytest.approx(s.logp_b, abs=2e-4)


def test_both_orders_are_asked_and_debiased(smollm2):
    model = StoredModel(smollm2)
    prefs = prefer_pairs(model, PAIRS)
    assert model.counts.asked == 2 * len(PAIRS)
    for p in prefs:
        assert p.forward.p_a != p.backward.p_a  # two different prompts
        assert p.p_first == pytest.approx(0.5 * (p.forward.p_a + 1 - p.backward.p_a))
        assert -0.5 <= p.position_bias <= 0.5
    # A 135M model leans strongly toward the label it sees first: a true finding the tools must show.
    assert sum(p.position_bias for p in prefs) / len(prefs) > 0.1


def test_sampling_mode_parses_and_counts(smollm2):
    model = StoredModel(smollm2, mode="sample", n_samples=4, max_tokens=4)
    results = model.choice_probs(requests_for(PAIRS[:2]))
    for r in results:
        assert r.mode == "sample"
        assert r.n_a + r.n_b + r.n_refusal == 4
        assert r.mass == pytest.approx((r.n_a + r.n_b) / 4)
    again = StoredModel(smollm2, model.store, mode="sample", n_samples=4, max_tokens=4)
    assert [r.to_json() for r in again.choice_probs(requests_for(PAIRS[:2]))] == [r.to_json() for r in results]
    assert again.counts.asked == 0


def test_rating_scale_labels_give_an_expected_rating(smollm2):
    """Likert items: labels "1".."5", the expected rating from the renormalised label probabilities."""
    labels = ("1", "2", "3", "4", "5")
    prompt = ("How much do you agree: 'Honesty matters.' Answer with one number from 1 (strongly disagree) "
              "to 5 (strongly agree).")
    (result,) = smollm2.choice_probs([ChoiceRequest(prompt, labels, labels=labels, subject="Honesty matters.")])
    assert result.labels == labels and len(result.probs) == 5
    assert sum(result.probs) == pytest.approx(1.0)
    assert 0 < result.mass <= 1
    assert 1.0 <= result.expected_value([1, 2, 3, 4, 5]) <= 5.0
