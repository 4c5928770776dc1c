"""The openai: backend against a real llama.cpp server on 127.0.0.1, with and without injected faults."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import warnings

import pytest
from fake_openai import FakeOpenAI
from faultproxy import FaultProxy
from test_models_hf import PAIRS, requests_for

from valuelab.models import load_model
from valuelab.models.base import ChoiceRequest
from valuelab.models.openai import POOL_SIZE, AdaptiveLimiter, OpenAIBackend, public_url, retry_after_seconds
from valuelab.store import CallCounts, Store, StoredModel

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
    # Two in flight and a timeout of 5 s: a real answer waits for at most one other (well under a second), so
    # only the planned "timeout" runs out, however loaded the machine.
    proxy = FaultProxy(llama_server, plan, slow=6.0)
    with proxy as url:
        backend = server_model(url, timeout=5.0, backoff=0.05, concurrency=2)
        model = StoredModel(backend, store, chunk_size=8)
        start = time.monotonic()
        results = model.choice_probs(requests_for(MANY))
        elapsed = time.monotonic() - start
    assert len(results) == len(MANY) and all(r.mass > 0 for r in results)
    assert len(store) == len(MANY)  # every answer once, none twice
    assert sorted(proxy.faults) == sorted(plan.values()), proxy.faults  # order: whichever body is read first
    # Every request the proxy saw was counted, and all but the answered ones (the identity's listing and probe,
    # the log-prob probe, the 12 questions) were retries.
    assert backend.stats["requests"] == proxy.count == model.counts.requests
    assert backend.stats["retries"] == proxy.count - (3 + len(MANY)) >= len(plan), backend.stats
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
    assert limiter.limit == 8 and not limiter.slow_start
    limiter.in_flight = 8  # every slot in use
    for _ in range(200):
        limiter.success()
    assert 8 < limiter.limit <= 32


def test_adaptive_limiter_doubles_until_the_server_is_busy_and_only_while_in_use():
    limiter = AdaptiveLimiter(initial=16, maximum=1024)
    limiter.in_flight = 16
    for _ in range(16):  # one round trip of successes
        limiter.success()
    assert limiter.limit == 32
    limiter.busy()  # a 5xx or a timeout: from now on one slot per window of successes
    for _ in range(32):
        limiter.success()
    assert 32 < limiter.limit < 34
    idle = AdaptiveLimiter(initial=16, maximum=1024)
    idle.in_flight = 2  # a quiet stretch: successes do not raise a limit nobody uses
    for _ in range(100):
        idle.success()
    assert idle.limit == 16
    assert AdaptiveLimiter(initial=16, maximum=4).limit == 4


def test_retry_after_and_url_helpers():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}) is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after_seconds({"retry-after": future}) <= 31
    assert public_url("http://user:sk-secret@host:8000/v1") == "http://host:8000/v1"


def test_logprob_parsing_normalises_token_strings():
    def answer(tops):
        top = [{"token": t, "logprob": lp} for t, lp in tops]
        return {"choices": [{"logprobs": {"content": [{**top[0], "top_logprobs": top}]}}]}

    r = OpenAIBackend.parse_logprobs(answer([(" A", -1.0), ("**A", -2.0), ("B", -1.5), ("I", -3.0)]))
    assert r.logp_a == pytest.approx(math.log(math.exp(-1.0) + math.exp(-2.0)))
    assert r.logp_b == pytest.approx(-1.5) and not r.bound_used
    r = OpenAIBackend.parse_logprobs(answer([("A", -0.1), ("I", -3.0), ("The", -4.0)]))
    assert r.bound_used and r.logp_b == pytest.approx(-4.0)


# -- against a fake OpenAI-compatible server that counts what it is asked (tests/fake_openai.py) ----------------

def fake_requests(n: int, tag: str = "") -> list[ChoiceRequest]:
    return [ChoiceRequest(f"Which do you prefer{tag}? A) outcome {k} B) outcome {k + 1}", (f"o{k}", f"o{k + 1}"))
            for k in range(n)]


def fake_model(url: str, store: Store | None = None, **options) -> StoredModel:
    settings = {k: options.pop(k) for k in ("mode", "n_samples", "chunk_size") if k in options}
    return StoredModel(load_model("openai:fake", base_url=url, **options), store if store is not None else Store(),
                       **settings)


def test_another_model_behind_the_same_name_and_url_is_another_identity():
    store = Store()
    server = FakeOpenAI(listing={"owned_by": "lab", "root": "/weights/model-a"}, fingerprint="fp-1")
    with server as url:
        first = fake_model(url, store)
        first.choice_probs(fake_requests(6))
        assert (first.counts.asked, first.counts.reused) == (6, 0)
        served = json.loads(first.identity["served"])
        assert served["listed"]["root"] == "/weights/model-a" and served["system_fingerprint"] == "fp-1"
        again = fake_model(url, store)
        again.choice_probs(fake_requests(6))
        assert (again.counts.asked, again.counts.reused) == (0, 6)  # the same server: every answer reused

        server.listing = {"owned_by": "lab", "root": "/weights/model-b"}  # restarted on other weights
        other_weights = fake_model(url, store)
        other_weights.choice_probs(fake_requests(6))
        assert (other_weights.counts.asked, other_weights.counts.reused) == (6, 0)

        server.fingerprint = "fp-2"  # the same weights in another configuration
        other_config = fake_model(url, store)
        other_config.choice_probs(fake_requests(6))
        assert (other_config.counts.asked, other_config.counts.reused) == (6, 0)
        assert len({json.dumps(m.identity, sort_keys=True) for m in (first, other_weights, other_config)}) == 3
    assert len(store) == 18


def test_a_listing_time_given_as_created_is_not_part_of_the_identity():
    """vLLM and llama.cpp list `created` as the time of the listing; it must not make every run a new model."""
    with FakeOpenAI(listing={"owned_by": "vllm", "created": int(time.time())}) as url:
        served = json.loads(load_model("openai:fake", base_url=url).identity()["served"])
    assert served["listed"] == {"id": "fake", "owned_by": "vllm"}
    with FakeOpenAI(listing={"owned_by": "system", "created": 1_700_000_000}) as url:  # a model's own date stays
        assert json.loads(load_model("openai:fake", base_url=url).identity()["served"])["listed"]["created"] \
            == 1_700_000_000


def test_a_model_the_server_does_not_list_is_warned_about_once():
    with FakeOpenAI(model="something-else") as url:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = fake_model(url)
            model.view(mode="sample").choice_probs(fake_requests(2))
            model.backend.identity()
    said = [w for w in caught if "lists no model of that name" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert "served" not in model.identity or "listed" not in json.loads(model.identity["served"])


def test_requests_prompts_and_samples_are_counted_apart():
    server = FakeOpenAI(plan={5: "500", 9: "429"})  # two requests answered with errors and sent again
    with server as url:
        model = fake_model(url, mode="sample", n_samples=3, chunk_size=4)
        model.choice_probs(fake_requests(10))
        cost = model.counts.cost_since(CallCounts())
        assert cost["prompts_asked"] == 10 and cost["prompts_reused"] == 0 and cost["samples"] == 30
        # Every request the server saw: the identity probes (the listing, one answer), 30 samples, 2 retries.
        assert cost["requests"] == server.requests == 2 + 30 + 2
        assert cost["completion_tokens"] == 30 + 1  # the samples and the identity probe's answer
        assert model.backend.stats["retries"] == 2

        rerun = fake_model(url, model.store, mode="sample", n_samples=3)
        rerun.choice_probs(fake_requests(10))
        assert rerun.counts.cost_since(CallCounts())["prompts_reused"] == 10
        assert (rerun.counts.asked, rerun.counts.samples, rerun.counts.requests) == (0, 0, 2)  # the probes only

        before = server.requests
        logprob = fake_model(url, model.store)
        logprob.choice_probs(fake_requests(7))
        cost = logprob.counts.cost_since(CallCounts())
        assert (cost["prompts_asked"], cost["samples"]) == (7, 0)
        assert cost["requests"] == server.requests - before == 2 + 1 + 7  # probes, the log-prob probe, prompts


def test_one_client_and_one_limiter_serve_every_chunk_and_call():
    """The server holds every answer until 100 requests are in flight at once: chunks of 16 prompts, once each
    its own event loop and limiter, could never get there."""
    server = FakeOpenAI()
    with server as url:
        model = fake_model(url, chunk_size=16, initial_concurrency=128, logprobs=True)
        backend = model.backend
        session, limiter = backend.session, backend.limiter
        server.hold = 100
        model.choice_probs(fake_requests(200))
        assert server.peak >= 100 and limiter.peak >= 100
        assert limiter.limit > 128  # it grew, and the next call starts from there
        grown, clients = limiter.limit, list(session.clients)
        assert len(server.peers) <= len(clients) * POOL_SIZE  # connections were kept, not opened per chunk

        model.choice_probs(fake_requests(200, tag=" again"))
        assert backend.session is session and backend.limiter is limiter and limiter.limit >= grown
        assert session.clients[:len(clients)] == clients
    assert len(model.store) == 400


def test_concurrency_option_parses_and_caps(tmp_path, capsys):
    from valuelab.cli import build_parser, main, open_model

    parser = build_parser()
    server = FakeOpenAI()
    with server as url:
        args = parser.parse_args(["prefer", "openai:fake", "--base-url", url, "--concurrency", "5",
                                  "--store", str(tmp_path / "s.sqlite")])
        model = open_model(args)
        assert model.backend.concurrency == 5 and model.backend.limiter.limit == 5
        model.choice_probs(fake_requests(80))
        assert model.backend.limiter.peak <= 5 and server.peak <= 5

        pairs = tmp_path / "pairs.csv"
        pairs.write_text("first,second\n" + "".join(f"outcome {k},outcome {k + 1}\n" for k in range(20)))
        assert main(["prefer", "openai:fake", "--base-url", url, "--concurrency", "2", "--pairs", str(pairs),
                     "--store", str(tmp_path / "cli.sqlite")]) == 0
        assert "40 prompts asked" in capsys.readouterr().err
    for bad in ("0", "-3", "many"):
        with pytest.raises(SystemExit):
            parser.parse_args(["prefer", "openai:fake", "--concurrency", bad])
    assert main(["prefer", "synthetic:1", "--concurrency", "4", "a", "b"]) == 2
    assert "concurrency do not apply to synthetic" in capsys.readouterr().err
