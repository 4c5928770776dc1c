"""Prefix reuse in the hf: backend: same probabilities as running every prompt whole, on fewer tokens."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from valuelab.elicit.pairwise import pair_requests
from valuelab.models import ChoiceRequest
from valuelab.models.hf import HFBackend, prefix_groups
from valuelab.store import StoredModel

PAIRS = [
    ("You receive a free cup of coffee.", "Your laptop breaks and cannot be repaired."),
    ("A city of one million people gains clean drinking water.", "You find a $5 bill on the pavement."),
    ("It rains on your day off.", "A rare species of frog is saved from extinction by a new breeding programme."),
    ("You learn to play the violin.", "A bridge in your town is repaired a year early."),
]


def mixed_requests(pairs=PAIRS) -> list[ChoiceRequest]:
    """Two systems (two shared prefixes), suffixes of many lengths, and one prompt that shares nothing."""
    requests = [r for a, b in pairs for system in (None, "Answer as briefly as you can.")
                for r in pair_requests(a, b, system=system)]
    return requests + [ChoiceRequest("Which is larger, A: 3 or B: 4?", ("3", "4"), system="Count well.")]


def both_ways(backend: HFBackend, requests: list[ChoiceRequest]):
    backend.prefix_cache = False
    backend.stats["computed_tokens"] = 0
    plain = backend.choice_probs(requests)
    plain_tokens = backend.stats["computed_tokens"]
    backend.prefix_cache = True
    backend.stats["computed_tokens"] = 0
    cached = backend.choice_probs(requests)
    return plain, cached, plain_tokens, backend.stats["computed_tokens"]


def assert_same(plain, cached, tol: float) -> None:
    for p, c in zip(plain, cached, strict=True):
        assert c.logps == pytest.approx(p.logps, abs=tol)
        assert c.probs == pytest.approx(p.probs, abs=tol)
        assert [t for t, _ in c.top[:3]] == [t for t, _ in p.top[:3]]


def test_groups_share_the_longest_useful_prefix():
    template = [1, 2, 3, 4, 5, 6, 7, 8]
    ids = [template + [10 + k] * (k + 1) for k in range(5)] + [[9, 9, 9] + [k] for k in range(3)] + [[42, 1]]
    groups = {tuple(sorted(g)): shared for shared, g in prefix_groups(ids, overhead=2)}
    assert groups[(0, 1, 2, 3, 4)] == len(template)
    assert groups[(5, 6, 7)] == 3
    assert groups[(8,)] == 0  # alone: nothing to share
    # Identical prompts still leave their last token to run: the answer is read after it.
    assert prefix_groups([[1, 2, 3], [1, 2, 3]], overhead=0) == [(2, [0, 1])]
    # A prompt that is a prefix of another caps the shared part at its own length minus one.
    assert prefix_groups([[1, 2, 3, 4, 5, 6], [1, 2, 3]], overhead=0) == [(2, [1, 0])]
    assert prefix_groups([]) == []


def test_groups_are_not_split_when_a_shared_prefix_would_not_pay_for_its_pass():
    ids = [[1, 2, 7], [1, 2, 8], [5, 2, 7]]
    assert sorted(g for _, g in prefix_groups(ids, overhead=100)) == [[0, 1, 2]]  # one pass, prefix 0


@pytest.fixture(scope="module")
def tiny_llama(smollm2):
    """A random two-layer Llama (sharp logits) on the embedded model's tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(smollm2.tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, initializer_range=0.5)
    return HFBackend("tiny-llama", model=LlamaForCausalLM(config), tokenizer=smollm2.tokenizer, revision="t",
                     batch_size=3)


def test_tiny_llama_gives_the_same_probabilities_with_and_without_the_prefix_cache(tiny_llama):
    requests = mixed_requests()
    plain, cached, plain_tokens, cached_tokens = both_ways(tiny_llama, requests)
    assert_same(plain, cached, tol=2e-5)
    assert cached_tokens < 0.75 * plain_tokens
    assert tiny_llama.prefix_cache  # the plain Llama cache qualified


def test_choice_probs_draws_no_deprecation_warning_from_transformers(tiny_llama, caplog):
    """transformers 5.24 renamed `past_key_values` to `cache`: the old keyword warns on every forward pass
    (FutureWarning), the old output field logs once. Neither may come from the plain or the cached path."""
    # transformers logs each message once per process (an lru_cache): forget what earlier tests logged.
    getattr(getattr(logging.Logger, "warning_once", None), "cache_clear", lambda: None)()
    hf_logger = logging.getLogger("transformers")
    hf_logger.addHandler(caplog.handler)  # transformers' loggers do not propagate to the root logger
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plain, cached, _, _ = both_ways(tiny_llama, mixed_requests()[:6])
    finally:
        hf_logger.removeHandler(caplog.handler)
    assert tiny_llama.prefix_cache  # the cached path ran
    assert_same(plain, cached, tol=2e-5)
    deprecations = [f"{w.category.__name__}: {w.message}" for w in caught
                    if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert deprecations == []
    assert [r.getMessage() for r in caplog.records if "deprecat" in r.getMessage().lower()] == []


def test_sliding_window_models_fall_back_to_whole_prompts(smollm2):
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(1)
    config = MistralConfig(vocab_size=len(smollm2.tokenizer), hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, sliding_window=16)
    backend = HFBackend("tiny-mistral", model=MistralForCausalLM(config), tokenizer=smollm2.tokenizer,
                        revision="t", batch_size=4)
    requests = mixed_requests()[:6]
    backend.prefix_cache = False
    plain = backend.choice_probs(requests)
    backend.prefix_cache = True
    cached = backend.choice_probs(requests)
    assert not backend.prefix_cache  # padding between prefix and suffix would shift the window: refused
    assert_same(plain, cached, tol=0.0)


def test_embedded_model_gives_the_same_probabilities_on_half_the_tokens(smollm2):
    requests = mixed_requests(PAIRS[1:3])
    batch_size = smollm2.batch_size
    smollm2.batch_size = 3  # several batches per group, suffixes of different lengths in each
    try:
        plain, cached, plain_tokens, cached_tokens = both_ways(smollm2, requests)
    finally:
        smollm2.batch_size, smollm2.prefix_cache = batch_size, True
    assert_same(plain, cached, tol=1e-4)
    assert max(abs(p.p_a - c.p_a) for p, c in zip(plain, cached, strict=True)) < 1e-5
    assert cached_tokens < 0.7 * plain_tokens


def test_option_turns_it_off_and_store_counts_tokens(smollm2):
    from valuelab.models import PROVIDERS

    assert "prefix_cache" in PROVIDERS["smollm2"].accepted_options()  # load_model("smollm2", prefix_cache=False)
    model = StoredModel(smollm2)
    requests = mixed_requests(PAIRS[:1])[:3]
    model.choice_probs(requests)
    lengths = [len(smollm2.tokenizer(smollm2.render(r), add_special_tokens=False).input_ids) for r in requests]
    assert model.counts.prompt_tokens == sum(lengths)
    assert model.counts.completion_tokens == 0 and model.counts.seconds > 0
    model.choice_probs(requests)  # from the store: no new tokens
    assert model.counts.prompt_tokens == sum(lengths) and model.counts.reused == 3

    sampled = StoredModel(smollm2, mode="sample", n_samples=2, max_tokens=2)
    sampled.choice_probs(requests[:1])
    assert sampled.counts.prompt_tokens == 2 * lengths[0]
    assert 2 <= sampled.counts.completion_tokens <= 2 * 2
