"""The response store: content-addressed keys, reuse, export, and resume after a SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from valuelab.errors import BackendError
from valuelab.models import ChoiceRequest, load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel, request_key


def synthetic_requests(n: int) -> list[ChoiceRequest]:
    return [ChoiceRequest(f"Pick: A) outcome {i} or B) outcome {i + 1}", (f"outcome {i}", f"outcome {i + 1}"))
            for i in range(n)]


def test_keys_name_the_model_and_every_parameter():
    ident = {"backend": "hf", "model": "m", "revision": "r1"}
    base = request_key(ident, "choice", "prompt", {"mode": "logprob"}, 0)
    assert base == request_key(dict(ident), "choice", "prompt", {"mode": "logprob"}, 0)
    assert base != request_key({**ident, "model": "other"}, "choice", "prompt", {"mode": "logprob"}, 0)
    assert base != request_key({**ident, "revision": "r2"}, "choice", "prompt", {"mode": "logprob"}, 0)
    assert base != request_key(ident, "choice", "prompt ", {"mode": "logprob"}, 0)
    assert base != request_key(ident, "sample", "prompt", {"mode": "logprob"}, 1)


def test_second_run_asks_nothing_and_two_models_never_share(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = StoredModel(load_model("synthetic:1"), store)
    answers = first.choice_probs(synthetic_requests(20))
    assert (first.counts.asked, first.counts.reused) == (20, 0)
    again = StoredModel(load_model("synthetic:1"), Store(tmp_path / "s.sqlite"))
    assert [a.to_json() for a in again.choice_probs(synthetic_requests(20))] == [a.to_json() for a in answers]
    assert (again.counts.asked, again.counts.reused) == (0, 20)
    other = StoredModel(load_model("synthetic:2"), store)
    other.choice_probs(synthetic_requests(20))
    assert other.counts.asked == 20 and len(store) == 40


def test_duplicate_requests_in_one_batch_are_asked_once(tmp_path):
    model = StoredModel(load_model("synthetic:1"), Store(tmp_path / "s.sqlite"))
    requests = synthetic_requests(3)
    results = model.choice_probs(requests + requests)
    assert model.counts.asked == 3 and len(model.store) == 3
    assert [r.p_a for r in results[:3]] == [r.p_a for r in results[3:]]


def test_export_jsonl_holds_prompt_and_response(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    StoredModel(load_model("synthetic:1"), store, mode="sample", n_samples=3).choice_probs(synthetic_requests(2))
    assert store.export_jsonl(tmp_path / "out.jsonl") == 6
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {r["sample_index"] for r in rows} == {0, 1, 2}
    assert all(r["model"] == "synthetic:1" and "outcome" in r["prompt"] and "text" in r["response"] for r in rows)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_file_that_is_not_a_store_is_refused_clearly(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(Exception, match="not a valuelab store"):
        Store(bad)


def write_pairs(path, n: int) -> None:
    lines = ["first,second"] + [f'"You are given {i} apples.","You are given {i + 1} pears and a kite."'
                                for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def stored_answers(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, response FROM responses"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_answers(tmp_path, cli_env):
    """A real `valuelab prefer` process on the embedded model is SIGKILLed part-way and run again."""
    pairs = tmp_path / "pairs.csv"
    write_pairs(pairs, 48)  # 96 prompts, committed in chunks
    cmd = [sys.executable, "-m", "valuelab.cli", "prefer", "smollm2", "--pairs", str(pairs)]
    killed_store, clean_store = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"

    proc = subprocess.Popen(cmd + ["--store", str(killed_store)], env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    count = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            count = len(stored_answers(killed_store))
        except sqlite3.Error:
            count = 0
        if count >= 32:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(stored_answers(killed_store))
    assert 0 < before < 96, f"the kill should land mid-run, found {before} answers"

    rerun = subprocess.run(cmd + ["--store", str(killed_store)], env=cli_env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    asked, reused = map(int, re.search(r"(\d+) prompts asked, (\d+) from the store", rerun.stderr).groups())
    assert (asked, reused) == (96 - before, before)

    clean = subprocess.run(cmd + ["--store", str(clean_store)], env=cli_env, capture_output=True, text=True,
                           timeout=600)
    assert clean.returncode == 0, clean.stderr
    resumed, uninterrupted = stored_answers(killed_store), stored_answers(clean_store)
    assert resumed.keys() == uninterrupted.keys() and len(resumed) == 96
    for key, response in uninterrupted.items():
        a, b = json.loads(resumed[key]), json.loads(response)
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6) and a["mass"] == pytest.approx(b["mass"], abs=1e-6)


def test_a_system_prompt_reaches_every_request_and_the_store_key():
    backend, store = load_model("synthetic:1"), Store()
    pair = ChoiceRequest("Which?", ("a", "b"))
    own = ChoiceRequest("Which?", ("a", "b"), "Answer briefly.")
    StoredModel(backend, store).choice_probs([pair])
    persona = StoredModel(backend, store, system="You are a careful librarian.")
    persona.choice_probs([pair, own])
    assert persona.counts.asked == 2 and persona.counts.reused == 0  # a new system prompt is a new question
    prompts = [row["prompt"] for row in store.rows()]
    assert sum("careful librarian" in p for p in prompts) == 1  # a request's own system message is kept
    assert any("Answer briefly." in p and "librarian" not in p for p in prompts)
    again = StoredModel(backend, store, system="You are a careful librarian.")
    again.choice_probs([pair])
    assert again.counts.asked == 0 and again.counts.reused == 1


class StreamingAgent(SyntheticBackend):
    """A synthetic agent that answers like an API client: every request of a call at once, in any order (here
    last first), and optionally fails after `fail_after` answers."""

    concurrent = True

    def __init__(self, fail_after: int | None = None):
        super().__init__(1)
        self.fail_after, self.calls = fail_after, 0

    def stream(self, method, requests, args=()):
        self.calls += 1
        answers = getattr(self, method)(requests, *args)
        for k, position in enumerate(reversed(range(len(requests)))):
            if k == self.fail_after:
                raise BackendError("the server went away")
            yield position, answers[position]


def test_a_concurrent_backend_gets_the_whole_call_and_answers_are_committed_as_they_arrive():
    requests = synthetic_requests(10)
    streaming = StreamingAgent()
    model = StoredModel(streaming, Store(), chunk_size=4)
    answers = model.choice_probs(requests)
    assert streaming.calls == 1  # one stream for the call, not one per chunk
    plain = StoredModel(load_model("synthetic:1"), Store()).choice_probs(requests)
    assert [a.to_json() for a in answers] == [a.to_json() for a in plain]  # back in request order

    store = Store()
    with pytest.raises(BackendError, match="went away"):
        StoredModel(StreamingAgent(fail_after=6), store, chunk_size=4).choice_probs(requests)
    assert len(store) == 6  # one chunk of 4, and the 2 that came back before the failure
    resumed = StoredModel(StreamingAgent(), store, chunk_size=4)
    resumed.choice_probs(requests)
    assert (resumed.counts.asked, resumed.counts.reused) == (4, 6)


def test_cost_counts_prompts_requests_and_samples_apart():
    for mode, per_prompt in (("logprob", 1), ("sample", 4)):
        model = StoredModel(load_model("synthetic:1"), Store(), mode=mode, n_samples=4)
        before = model.counts.copy()
        model.choice_probs(synthetic_requests(5))
        model.choice_probs(synthetic_requests(7))  # 5 of them reused
        cost = model.counts.cost_since(before)
        assert {k: cost[k] for k in ("prompts_asked", "prompts_reused", "requests", "samples")} == {
            "prompts_asked": 7, "prompts_reused": 5, "requests": 7 * per_prompt,
            "samples": 7 * per_prompt if mode == "sample" else 0}
        assert {"prompt_tokens", "completion_tokens", "model_seconds"} <= set(cost)
