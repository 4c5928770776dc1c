"""The openai: backend against a real llama.cpp server on 127.0.0.1, with and without injected faults."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
from faultproxy import FaultProxy
from test_models_hf import PAIRS, requests_for

from valuelab.models import load_model
from valuelab.models.openai import AdaptiveLimiter, OpenAIBackend, public_url, retry_after_seconds
from valuelab.store import Store, StoredModel

pytestmark = pytest.mark.server

OUTCOMES = [
    "You receive $100.", "A hospital opens in a town that had none.", "Your phone battery dies.",
    "A wildfire destroys a forest.", "You learn to play the guitar.", "A new library opens nearby.",
    "You miss your train.", "A cure for a common childhood illness is found.",
]
MANY = [(a, b) for i, a in enumerate(OUTCOMES) for b in OUTCOMES[i + 1:]][:12]


def server_model(base_url: str, **options) -> OpenAIBackend:
    return load_model("openai:smollm2", base_url=base_url, **options)


def test_logprobs_agree_with_the_hf_backend(llama_server, smollm2):
    """Same GGUF, same chat template: llama.cpp and transformers give the same label probabilities.

    Tolerance: llama.cpp multiplies Q4_1 weights with 8-bit-quantised activations while transformers
    dequantises the weights to float32, so label log-probs differ by about a tenth of a nat. Measured over 15
    prompts: max 0.30 nat on a label log-prob, max 0.016 on P(A). We allow 0.4 nat and 0.03 in P(A); a wrong
    label set, template or BOS moves these by whole nats.
    """
    requests = requests_for(PAIRS + MANY[:5])
    served = server_model(llama_server).choice_probs(requests)
    local = smollm2.choice_probs(requests)
    for s, h in zip(served, local, strict=True):
        assert not s.bound_used
        assert s.logp_a == pytest.approx(h.logp_a, abs=0.4)
        assert s.logp_b == pytest.approx(h.logp_b, abs=0.4)
        assert s.p_a == pytest.approx(h.p_a, abs=0.03)
        assert s.mass == pytest.approx(h.mass, rel=0.4)


def test_label_outside_top20_gets_an_upper_bound(llama_server):
    request = requests_for([("You receive $100.", "You lose $100.")])[0]
    backend = server_model(llama_server)
    (result,) = backend.choice_probs([request])
    tops = [lp for _, lp in result.top]
    assert result.logp_a <= 0 and result.logp_b <= 0
    # Whatever the server returned, a missing label is bounded by the smallest listed log-prob.
    if result.bound_used:
        assert min(result.logp_a, result.logp_b) <= min(tops) + 1e-9


def test_faults_are_retried_and_nothing_is_stored_twice(llama_server, tmp_path):
    plan = {2: "429", 4: "500", 6: "timeout", 9: "drop", 12: "500", 15: "429"}
    store = Store(tmp_path / "s.sqlite")
    proxy = FaultProxy(llama_server, plan, slow=4.0)
    with proxy as url:
        backend = server_model(url, timeout=2.0, backoff=0.05, concurrency=4)
        model = StoredModel(backend, store, chunk_size=8)
        start = time.monotonic()
        results = model.choice_probs(requests_for(MANY))
        elapsed = time.monotonic() - start
    assert len(results) == len(MANY) and all(r.mass > 0 for r in results)
    assert len(store) == len(MANY)  # every answer once, none twice
    assert sorted(proxy.faults) == sorted(plan.values()), proxy.faults  # order: whichever body is read first
    assert backend.stats["retries"] == len(plan), backend.stats
    assert backend.stats["rate_limited"] == 2
    assert elapsed >= 1.0  # Retry-After: 1 was honoured
    # The same answers as without faults (the server is deterministic at temperature 0).
    clean = server_model(llama_server).choice_probs(requests_for(MANY))
    for r, c in zip(results, clean, strict=True):
        assert r.p_a == pytest.approx(c.p_a, abs=1e-6)


def test_model_that_refuses_logprobs_is_asked_by_sampling(llama_server, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with FaultProxy(llama_server, refuse_logprobs=True) as url:
        backend = server_model(url)
        model = StoredModel(backend, store, n_samples=3, max_tokens=3)
        results = model.choice_probs(requests_for(PAIRS[:2]))
    assert model.mode == "sample"
    assert all(r.mode == "sample" and r.n_a + r.n_b + r.n_refusal == 3 for r in results)
    assert store.get_meta('logprobs:' + __import__("json").dumps(backend.identity(), sort_keys=True)) == "no"
    assert len(store) == 2 * 3


def test_api_key_never_reaches_the_store(llama_server, tmp_path, monkeypatch):
    secret = "sk-test-DO-NOT-STORE-4242"
    monkeypatch.setenv("MY_KEY", secret)
    store = Store(tmp_path / "s.sqlite")
    backend = server_model(llama_server, api_key_env="MY_KEY")
    StoredModel(backend, store).choice_probs(requests_for(PAIRS[:1]))
    assert store.export_jsonl(tmp_path / "export.jsonl") == 1
    store.close()
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in repr(backend) and secret not in str(backend.identity())


def test_cli_prefer_against_the_server(llama_server, cli_env):
    out = subprocess.run([sys.executable, "-m", "valuelab.cli", "prefer", "openai:smollm2", "--base-url",
                          llama_server, "You receive $100.", "You lose $100."],
                         capture_output=True, text=True, env=cli_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "P(first > second)" in out.stdout and "position bias" in out.stdout


def test_adaptive_limiter_halves_on_429_and_grows_back():
    limiter = AdaptiveLimiter(initial=16, maximum=32)
    limiter.throttled(retry_after=None)
    assert limiter.limit == 8
    for _ in range(200):
        limiter.success()
    assert 8 < limiter.limit <= 32


def test_retry_after_and_url_helpers():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after_seconds({"retry-after": future}) <= 31
    assert public_url("http://user:sk-secret@host:8000/v1") == "http://host:8000/v1"


def test_logprob_parsing_normalises_token_strings():
    class T:
        def __init__(self, token, logprob):
            self.token, self.logprob = token, logprob

    class R:
        def __init__(self, tops):
            first = T(tops[0][0], tops[0][1])
            first.top_logprobs = [T(t, lp) for t, lp in tops]
            self.choices = [type("C", (), {"logprobs": type("L", (), {"content": [first]})()})()]

    r = OpenAIBackend.parse_logprobs(R([(" A", -1.0), ("**A", -2.0), ("B", -1.5), ("I", -3.0)]))
    assert r.logp_a == pytest.approx(math.log(math.exp(-1.0) + math.exp(-2.0)))
    assert r.logp_b == pytest.approx(-1.5) and not r.bound_used
    r = OpenAIBackend.parse_logprobs(R([("A", -0.1), ("I", -3.0), ("The", -4.0)]))
    assert r.bound_used and r.logp_b == pytest.approx(-4.0)
