"""The response store: every request and raw response, content-addressed in SQLite, so reruns resume.

The key is sha256 over canonical JSON of (backend kind, model, revision, the exact rendered prompt, the request
parameters, the sample index). Unlike lm-evaluation-harness's cache it names the model, so two models never
share answers. Answers are committed chunk by chunk: a run killed part-way keeps everything it was told, and
the same command run again asks the model only for what is missing. Keys and secrets are never part of a
request's parameters, so they never reach the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from valuelab.errors import InputError
from valuelab.executor import LocalExecutor, counted
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.paths import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,            -- 'choice' (label log-probs) or 'sample' (one free-text completion)
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    revision TEXT NOT NULL,
    prompt TEXT NOT NULL,          -- exactly what the model saw
    params TEXT NOT NULL,          -- canonical JSON of the request parameters
    sample_index INTEGER NOT NULL,
    response TEXT NOT NULL,        -- JSON: a ChoiceResult, or {"text": ...}
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def request_key(identity: dict[str, str], kind: str, prompt: str, params: dict, sample_index: int) -> str:
    payload = {"identity": identity, "kind": kind, "prompt": prompt, "params": params, "sample": sample_index}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Store:
    """SQLite in WAL mode; one writer (the process that owns it), readers may look at the file meanwhile."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"not a valuelab store ({exc}); move it away or choose another --store",
                             file=self.path) from None

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start: start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk)
            found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, rows: Iterable[tuple]) -> None:
        """Insert (key, kind, identity, prompt, params, sample_index, response) rows and commit them."""
        now = time.time()
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO responses VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(key, kind, ident["backend"], ident["model"], ident["revision"], prompt,
                  json.dumps(params, sort_keys=True), index, json.dumps(response), now)
                 for key, kind, ident, prompt, params, index, response in rows])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def rows(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM responses ORDER BY created, key")
        names = [c[0] for c in cursor.description]
        out = []
        for row in cursor:
            record = dict(zip(names, row, strict=True))
            record["params"], record["response"] = json.loads(record["params"]), json.loads(record["response"])
            out.append(record)
        return out

    def export_jsonl(self, path: str | Path) -> int:
        """Write every stored request and response as one JSON object per line; returns the count."""
        records = self.rows()
        with open(path, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(records)

    def close(self) -> None:
        self.db.close()


def default_store_path() -> Path:
    """`$VALUELAB_STORE`, else store.sqlite in the cache folder."""
    return Path(os.environ.get("VALUELAB_STORE", cache_dir() / "store.sqlite"))


@dataclass
class CallCounts:
    """How many prompts a run asked of the model and how many it found in the store, and what asking cost.

    A prompt is one rendered question; in sample mode it is answered by `n_samples` completions (`samples`).
    `requests` are the requests the model was actually sent, retries and probes included, as the backend counts
    them in its `stats` (openai: HTTP requests); backends that count none send one per prompt (log-prob mode) or
    per sample. Tokens are those the backend reports in its `stats` (hf: the tokenizer's prompt lengths and the
    sampled tokens; openai: the server's `usage`); backends that report none (synthetic, vllm) leave them at 0.
    `seconds` is wall time spent waiting for the model, not for the store.
    """

    asked: int = 0
    reused: int = 0
    requests: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def __iadd__(self, other: CallCounts) -> CallCounts:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self

    def copy(self) -> CallCounts:
        return dataclasses.replace(self)

    def cost_since(self, before: CallCounts, started: float | None = None) -> dict:
        """What was asked since `before`: prompts asked of the model and reused from the store, requests sent
        and samples drawn, tokens in and out, the seconds spent waiting for the model, and (given a
        `time.time()` start) the wall seconds."""
        cost = {"prompts_asked": self.asked - before.asked, "prompts_reused": self.reused - before.reused,
                "requests": self.requests - before.requests, "samples": self.samples - before.samples,
                "prompt_tokens": self.prompt_tokens - before.prompt_tokens,
                "completion_tokens": self.completion_tokens - before.completion_tokens,
                "model_seconds": round(self.seconds - before.seconds, 2)}
        if started is not None:
            cost["seconds"] = round(time.time() - started, 1)
        return cost


class StoredModel:
    """A backend seen through the store: same questions, but only the missing answers are asked for.

    `mode` is "logprob" (default; falls back to sampling when the model gives no log-probabilities) or "sample"
    (`n_samples` completions at `temperature` per request, each stored under its own sample index).
    `system` is a system prompt (or persona) given to every request that has none of its own; it is part of the
    rendered prompt, so answers under different system prompts never mix in the store.
    `executor` computes the missing answers (default: this process; `valuelab.executor.RayExecutor` shards them
    across Ray actors); this object stays the store's only writer, committing `chunk_size` answers at a time (a
    killed run loses at most one chunk of answers). A chunk is not a limit on requests in flight: an API backend
    is handed all of a call's missing requests at once and keeps as many in flight as its server takes.
    """

    def __init__(self, backend: Backend, store: Store | None = None, *, mode: str = "logprob",
                 n_samples: int = 10, temperature: float = 1.0, max_tokens: int = 16, seed: int = 0,
                 chunk_size: int = 64, progress: bool | None = None, executor=None, system: str | None = None):
        if mode not in ("logprob", "sample"):
            raise InputError(f"unknown mode {mode!r}: use logprob or sample", field="mode")
        self.backend, self.store = backend, store if store is not None else Store()
        self.executor = executor or LocalExecutor()
        self.requested_mode, self.n_samples, self.temperature = mode, n_samples, temperature
        self.max_tokens, self.seed, self.chunk_size, self.progress = max_tokens, seed, chunk_size, progress
        self.system = system
        self.counts = CallCounts()
        self.identity = self._probing(backend.identity)
        self.executor.check(self.identity)
        self.example_prompt: str | None = None
        """The first prompt rendered since it was last set to None: the report shows it as the question asked."""
        self._mode: str | None = None

    @property
    def mode(self) -> str:
        """The mode actually used: log-prob support is probed once per model and remembered in the store."""
        if self._mode is None:
            if self.requested_mode == "sample":
                self._mode = "sample"
            else:
                meta_key = "logprobs:" + json.dumps(self.identity, sort_keys=True)
                known = self.store.get_meta(meta_key)
                if known is None:
                    known = "yes" if self._probing(lambda: self.backend.supports_logprobs) else "no"
                    self.store.set_meta(meta_key, known)
                self._mode = "logprob" if known == "yes" else "sample"
        return self._mode

    def _probing(self, ask):
        """`ask()`, with the requests and tokens it cost (identity and capability probes) counted for the run."""
        before = counted(self.backend)
        value = ask()
        for name, total in counted(self.backend).items():
            setattr(self.counts, name, getattr(self.counts, name) + total - before.get(name, 0))
        return value

    def _answered(self, indices: list[int], requests: Sequence[ChoiceRequest], method: str, args: tuple, *,
                  per_prompt: int, desc: str):
        """(indices, their answers) as the executor hands back each chunk of them, with what it cost added to
        `counts` (`per_prompt`: completions per prompt, the requests a backend that counts none sends); a
        progress bar when there is more than one chunk (on a terminal, or if asked)."""
        bar = tqdm(total=len(indices), desc=desc, unit="prompt", leave=False,
                   disable=None if self.progress is None else not self.progress) \
            if len(indices) > self.chunk_size else None
        waiting_since = time.perf_counter()  # only time spent waiting for answers counts, not the store's writes
        for done in self.executor.map(self.backend, method, [requests[i] for i in indices], args, self.chunk_size):
            self.counts.seconds += time.perf_counter() - waiting_since
            self.counts.prompt_tokens += done.prompt_tokens
            self.counts.completion_tokens += done.completion_tokens
            chunk = [indices[p] for p in done.positions]
            self.counts.requests += done.requests if done.requests is not None else len(chunk) * per_prompt
            yield chunk, done.answers
            if bar is not None:
                bar.update(len(chunk))
            waiting_since = time.perf_counter()
        if bar is not None:
            bar.close()

    def view(self, **changes) -> StoredModel:
        """The same backend, store, executor and system prompt with other request settings (for example a
        greedy free-text view: `mode="sample", n_samples=1, temperature=0.0`)."""
        settings = {"mode": self.requested_mode, "n_samples": self.n_samples, "temperature": self.temperature,
                    "max_tokens": self.max_tokens, "seed": self.seed, "chunk_size": self.chunk_size,
                    "progress": self.progress, "executor": self.executor, "system": self.system}
        return StoredModel(self.backend, self.store, **{**settings, **changes})

    def choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        if not requests:
            return []
        if self.system is not None:
            requests = [r if r.system is not None else dataclasses.replace(r, system=self.system) for r in requests]
        if self.mode == "sample":
            return self._sampled_choices(requests)
        prompts = self._rendered(requests)
        params = [{"mode": "logprob", "labels": list(r.labels)} for r in requests]
        keys = [request_key(self.identity, "choice", p, q, 0) for p, q in zip(prompts, params, strict=True)]
        stored = self.store.get_many(keys)
        self.counts.reused += sum(k in stored for k in keys)
        missing = list({k: i for i, k in enumerate(keys) if k not in stored}.values())  # one ask per distinct key
        for chunk, answers in self._answered(missing, requests, "_choice_probs", (), per_prompt=1, desc="asking"):
            rows = [(keys[i], "choice", self.identity, prompts[i], params[i], 0, a.to_json())
                    for i, a in zip(chunk, answers, strict=True)]
            self.store.put_many(rows)
            stored.update((row[0], row[6]) for row in rows)
            self.counts.asked += len(chunk)
        return [ChoiceResult.from_json(stored[k]) for k in keys]

    def _rendered(self, requests: Sequence[ChoiceRequest]) -> list[str]:
        prompts = [self.backend.render(r) for r in requests]
        if self.example_prompt is None and prompts:
            self.example_prompt = prompts[0]
        return prompts

    def _sampled_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        prompts = self._rendered(requests)
        # The label set only changes how texts are parsed, so it is not part of the sample keys.
        params = {"mode": "sample", "temperature": self.temperature, "max_tokens": self.max_tokens,
                  "seed": self.seed}
        keys = [[request_key(self.identity, "sample", p, params, s) for s in range(self.n_samples)]
                for p in prompts]
        stored = self.store.get_many([k for ks in keys for k in ks])
        complete = [all(k in stored for k in ks) for ks in keys]
        self.counts.reused += sum(complete)
        missing = list({keys[i][0]: i for i, done in enumerate(complete) if not done}.values())
        args = (self.n_samples, self.temperature, self.max_tokens, self.seed)
        for chunk, texts in self._answered(missing, requests, "sample", args, per_prompt=self.n_samples,
                                           desc="sampling"):
            rows = [(keys[i][s], "sample", self.identity, prompts[i], params, s, {"text": t})
                    for i, ts in zip(chunk, texts, strict=True) for s, t in enumerate(ts)]
            self.store.put_many(rows)
            for row in rows:  # a sample index that was already stored keeps its stored text
                stored.setdefault(row[0], row[6])
            self.counts.asked += len(chunk)
            self.counts.samples += len(rows)
        return [ChoiceResult.from_samples([stored[k]["text"] for k in ks], r.labels)
                for r, ks in zip(requests, keys, strict=True)]
