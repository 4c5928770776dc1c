"""OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...), through the async `openai` client.

Log-prob mode asks for one token with `logprobs=True, top_logprobs=20` and matches labels by their normalised
token string (reference/tooling.md §2.3); a label missing from the top 20 gets the smallest listed log-probability
as an upper bound, and the result says so. Whether a model gives log-probabilities is probed once; models that
refuse (reasoning models) are asked by sampling instead.

One backend holds one event loop (in a daemon thread), one set of HTTP clients and one adaptive limiter for its
whole life, so connections and the concurrency it has learned carry from one call to the next, and a call's
requests are all handed to the loop at once (`stream`): the store commits answers in chunks as they arrive, but
a chunk no longer bounds what is in flight. Concurrency starts at `initial_concurrency` and grows to the
server's capacity, up to `concurrency`: it doubles every round trip until the first sign of a busy server, then
grows by one per window of successes; it halves on a 429, and every request waits out a Retry-After. 5xx
answers, timeouts and dropped connections are retried a bounded number of times with jittered exponential
backoff, outside the concurrency slot. The client's own retries are off so the two layers do not multiply.

The identity that keys the store includes what the server says it serves under the model's name (its
`/models` entry, and the model and `system_fingerprint` a one-token answer reports), so a different model
behind the same name and URL never reuses stored answers; when the server says nothing the run warns once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import math
import os
import queue
import random
import re
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from valuelab.errors import BackendError, InputError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.prompts import LABELS, normalise_token

TOP_LOGPROBS = 20
POOL_SIZE = 4
"""Connections per client; a backend holds ceil(peak requests in flight / POOL_SIZE) clients."""
CONCURRENCY, INITIAL_CONCURRENCY = 256, 16
"""Default cap on requests in flight (`--concurrency`), and where the adaptive limit starts."""
PROBE = ChoiceRequest(prompt='Reply with the single letter "A".')
PROBE_ATTEMPTS = 3
"""Few attempts for probes: an unreachable server should fail in seconds, not after the full retry budget."""
SERVED_FIELDS = ("id", "owned_by", "created", "root", "parent", "max_model_len", "meta")
"""Fields of a `/models` entry that tell one served model from another (vLLM: root, max_model_len; llama.cpp:
meta); `object` and `permission` (fresh ids per listing) are left out, any revision or fingerprint field kept."""
REVISION_FIELD = re.compile(r"revision|fingerprint|digest|sha|hash|version", re.I)
LISTING_TIME = 60.0
"""vLLM and llama.cpp give the time of the listing as `created`: a `created` this close to the server's clock
says nothing about the model and is left out of the identity."""


class RefusedError(BackendError):
    """The server answered with a 4xx: asking again will not help."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def retry_after_seconds(headers) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if the server sent one."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def public_url(url: str) -> str:
    """The URL without user:password, so a key embedded in it never reaches the store or a report."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def served_fields(entry: dict, listed_at: float) -> dict:
    """The fields of a `/models` entry that identify the model served (see `SERVED_FIELDS`)."""
    served = {k: v for k, v in entry.items()
              if (k in SERVED_FIELDS or REVISION_FIELD.search(k)) and v not in (None, "", [], {})}
    created = served.get("created")
    if isinstance(created, int | float) and abs(created - listed_at) < LISTING_TIME:
        del served["created"]
    return served


class AdaptiveLimiter:
    """Requests in flight for one backend, shared by all its calls.

    Slow start: one more slot per success (the limit doubles every round trip) until the first 429, 5xx, timeout
    or dropped connection; after that one more slot per window of successes. A 429 halves the limit and holds
    every request back for its Retry-After. The limit grows only while at least half of it is in use, so a
    quiet stretch (a fit between two rounds of questions) does not end in a burst the server never took.
    """

    def __init__(self, initial: int, maximum: int, minimum: int = 1):
        self.limit, self.maximum, self.minimum = float(min(initial, maximum)), maximum, minimum
        self.in_flight = self.peak = 0
        self.slow_start = True
        self.resume_at = 0.0
        self.rate_limited = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        while (delay := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < max(self.minimum, int(self.limit)))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            # Wake only as many waiters as there are free slots: waking all of them on every release costs
            # O(waiting tasks) per request, which dominated at concurrency 512 (benchmarks/bench_openai.py).
            self._cond.notify(max(1, int(self.limit) - self.in_flight))

    def success(self) -> None:
        """A request came back (call before `release`, so it still counts as in flight)."""
        if 2 * self.in_flight >= self.limit:
            self.limit = min(self.maximum, self.limit + (1.0 if self.slow_start else 1.0 / self.limit))

    def busy(self) -> None:
        """A 5xx, a timeout or a dropped connection: the server may be at capacity, so stop doubling."""
        self.slow_start = False

    def throttled(self, retry_after: float | None) -> None:
        self.slow_start = False
        self.rate_limited += 1
        self.limit = max(self.minimum, self.limit / 2)
        if retry_after:
            self.resume_at = max(self.resume_at, time.monotonic() + retry_after)


class Session:
    """A backend's event loop (in a daemon thread), its HTTP clients and its limiter, made once per backend.

    httpx scans its whole pool for every request, so one pool of hundreds of connections costs O(pool) per
    request: 69 requests/s at concurrency 512 against an instant local server, against 556 with pools of four
    (benchmarks/bench_openai.py). So clients of POOL_SIZE connections are added as requests in flight need them;
    each request holds one connection slot of one client while it is sent.
    """

    def __init__(self, make_client: Callable[[], Any], limiter: AdaptiveLimiter):
        self.make_client, self.limiter = make_client, limiter
        self.clients: list = []
        self.free: list[int] = []  # one entry per idle connection slot: the index of its client
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="valuelab-openai", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def take(self) -> int:
        """A client with an idle connection slot (a new client when every slot is busy)."""
        if not self.free:
            self.clients.append(self.make_client())
            self.free.extend([len(self.clients) - 1] * POOL_SIZE)
        return self.free.pop()

    def submit(self, coro: Awaitable[Any]) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine on the loop and wait for it (from any thread but the loop's, notebooks included)."""
        future = self.submit(coro)
        try:
            return future.result()
        finally:
            future.cancel()  # nothing when it finished; stops it when the caller was interrupted

    async def _close_clients(self, then_stop: bool = False) -> None:
        for client in self.clients:
            try:
                await client.close()
            except Exception:  # noqa: BLE001  (closing is best effort: the process may be exiting)
                pass
        if then_stop:
            self.loop.call_soon(self.loop.stop)

    def close(self) -> None:
        """Close the clients and stop the loop (also from the loop's own thread, where a backend's last
        reference may go away)."""
        if not self.thread.is_alive():
            return
        if threading.current_thread() is self.thread:
            self.loop.create_task(self._close_clients(then_stop=True))
            return
        try:
            self.submit(self._close_clients()).result(timeout=10)
        except Exception:  # noqa: BLE001  (best effort, as above)
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def make_client(api_key: str, base_url: str | None, timeout: float, ssl):
    """An async OpenAI client with a pool of POOL_SIZE connections and no retries of its own."""
    import httpx
    import openai

    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0,
                              http_client=openai.DefaultAsyncHttpxClient(limits=limits, verify=ssl))


def in_order(answers: Iterable[tuple[int, Any]], n: int) -> list:
    """The answers of `stream`, put back in request order."""
    ordered: list = [None] * n
    for position, answer in answers:
        ordered[position] = answer
    return ordered


class OpenAIBackend(Backend):
    """Chat-completions models behind the OpenAI API or any server that speaks it.

    `concurrency` caps the requests in flight (the limit adapts up to it from `initial_concurrency`).
    """

    kind = "openai"
    concurrent = True

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 concurrency: int = CONCURRENCY, initial_concurrency: int = INITIAL_CONCURRENCY,
                 timeout: float = 60.0, max_retries: int = 6, backoff: float = 0.5, max_backoff: float = 20.0,
                 logprobs: bool | None = None):
        import openai  # noqa: F401  (fail here, with the spec, if the extra is missing)

        for name, value in (("concurrency", concurrency), ("initial_concurrency", initial_concurrency)):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}", field=name)
        self.model, self.base_url = model, base_url
        env = api_key_env or "OPENAI_API_KEY"
        key = os.environ.get(env)
        if not key:
            if api_key_env or base_url is None:
                raise BackendError(f"missing API key: set the environment variable {env} "
                                   "(or name another one with --api-key-env)")
            key = "no-key"  # local OpenAI-compatible servers accept any key
        self._api_key = key  # kept in memory only: never in identity(), the store, logs or reports
        self.concurrency, self.initial_concurrency = concurrency, min(initial_concurrency, concurrency)
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self._logprobs = logprobs
        self._identity: dict[str, str] | None = None
        self._fingerprint: str | None = None
        self._session: Session | None = None
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def where(self) -> str:
        return public_url(self.base_url) if self.base_url else "api.openai.com"

    def identity(self) -> dict[str, str]:
        """Kind, model name and URL, and what the server says it serves under that name (asked once)."""
        if self._identity is None:
            identity = {"backend": self.kind, "model": self.model, "revision": self.where}
            served = self.session.run(self._served())
            if "listed" not in served:
                warnings.warn(f"{self.model} at {self.where}: the server lists no model of that name at /models, "
                              "so valuelab cannot tell it from another model served under the same name and URL; "
                              "its answers are stored under the name and URL"
                              + (" and what a probe answer reported" if served else " only"), stacklevel=2)
            if served:
                identity["served"] = json.dumps(served, sort_keys=True, ensure_ascii=False)
            self._identity = identity
        return dict(self._identity)

    def render(self, request: ChoiceRequest) -> str:
        return json.dumps(request.messages(), ensure_ascii=False)

    # -- transport -------------------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The event loop, clients and limiter, made on first use and kept until `close`."""
        if self._session is None:
            import httpx

            ssl = httpx.create_ssl_context()  # loading the CA bundle takes ~40 ms: once, shared by every client
            # The session holds nothing of the backend, so a backend nobody uses any more is collected and its
            # finalizer closes the clients and stops the loop.
            self._session = Session(partial(make_client, self._api_key, self.base_url, self.timeout, ssl),
                                    AdaptiveLimiter(self.initial_concurrency, self.concurrency))
            weakref.finalize(self, self._session.close)
        return self._session

    @property
    def limiter(self) -> AdaptiveLimiter:
        return self.session.limiter

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    async def _call(self, attempts: int, send: Callable[[Any], Awaitable[Any]]) -> Any:
        """`send(client)` within the limiter, retried on 429, 5xx, timeouts and dropped connections."""
        import openai

        session = self.session
        limiter = session.limiter
        error: Exception | None = None
        for attempt in range(attempts):
            wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random())
            await limiter.acquire()
            slot = session.take()
            try:
                self.stats["requests"] += 1
                response = await send(session.clients[slot])
            except openai.RateLimitError as exc:
                retry_after = retry_after_seconds(exc.response.headers)
                limiter.throttled(retry_after)
                self.stats["rate_limited"] += 1
                wait = retry_after if retry_after is not None else wait
                error = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise RefusedError(f"{self.model} at {self.where} refused the request "
                                       f"(HTTP {exc.status_code}): {exc.message}", exc.status_code) from None
                limiter.busy()
                error = exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                limiter.busy()
                error = exc
            else:
                limiter.success()
                return response
            finally:
                session.free.append(slot)
                await limiter.release()
            self.stats["retries"] += 1
            await asyncio.sleep(wait)
        where = self.base_url or "the OpenAI API"
        raise BackendError(f"no answer from {where} after {attempts} attempts ({type(error).__name__}: {error}); "
                           "is the server running and --base-url right?")

    async def _post(self, body: dict, client) -> dict:
        """One chat completion, as the server's JSON.

        The low-level post skips the SDK's per-request walk over typed parameters, and reading the JSON as it
        is skips building a typed ChatCompletion (0.8 ms per answer with 20 top log-probabilities, the largest
        Python cost per request left; benchmarks/bench_openai.py); the SDK still raises its errors by status.
        """
        import httpx

        response = await client.post("/chat/completions", body={"model": self.model, **body}, cast_to=httpx.Response)
        try:
            answer = response.json()
        except ValueError:
            raise BackendError(f"{self.model} at {self.where} answered with something that is not JSON: "
                               f"{response.text[:200]!r}") from None
        if usage := answer.get("usage"):
            self.stats["prompt_tokens"] += usage.get("prompt_tokens") or 0
            self.stats["completion_tokens"] += usage.get("completion_tokens") or 0
        return answer

    def _stream(self, bodies: list[list[dict]]) -> Iterator[tuple[int, list]]:
        """(position, its responses) as the last of each position's request bodies is answered.

        Every body goes to the loop at once; as many workers as `concurrency` take them in order, and the
        limiter decides how many are in flight. Stopping early (an error, an interrupt) cancels the rest.
        """
        answered: queue.SimpleQueue = queue.SimpleQueue()
        jobs = iter([(p, k, body) for p, group in enumerate(bodies) for k, body in enumerate(group)])
        got = [[None] * len(group) for group in bodies]
        left = [len(group) for group in bodies]

        async def worker() -> None:
            for p, k, body in jobs:  # one shared iterator: each body is sent by exactly one worker
                got[p][k] = await self._call(self.max_retries + 1, partial(self._post, body))
                left[p] -= 1
                if not left[p]:
                    answered.put((p, got[p]))

        async def main() -> None:
            tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, sum(left)))]
            try:
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

        if not bodies:
            return
        future = self.session.submit(main())
        future.add_done_callback(lambda _: answered.put(None))  # after every answer: finished, failed or cancelled
        try:
            for _ in bodies:
                item = answered.get()
                if item is None:
                    future.result()  # raises what stopped the workers
                    raise BackendError("the request loop stopped before every answer came back")
                yield item
        finally:
            future.cancel()

    async def _served(self) -> dict:
        """What the server says it serves under this name: the identifying fields of its `/models` entry, and
        the model and `system_fingerprint` a one-token answer reports (see the module docstring)."""
        import httpx

        served: dict[str, Any] = {}
        try:
            listing = await self._call(PROBE_ATTEMPTS, lambda c: c.get("/models", cast_to=httpx.Response))
            date = listing.headers.get("date")
            listed_at = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
            entries = listing.json().get("data") or []
            entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == self.model), None)
        except RefusedError as exc:
            if exc.status in (401, 403):  # a wrong key: every request would fail the same way
                raise
            entry = None
        except (ValueError, TypeError, AttributeError):  # not a JSON listing
            entry = None
        if entry is not None:
            served["listed"] = served_fields(entry, listed_at)
        try:
            answer = await self._call(PROBE_ATTEMPTS, partial(self._post, {"messages": PROBE.messages(),
                                                                           "max_tokens": 1, "temperature": 0.0}))
        except RefusedError:
            answer = None
        if answer is not None:
            if answer.get("model"):
                served["answered_by"] = answer["model"]
            if fingerprint := answer.get("system_fingerprint"):
                served["system_fingerprint"] = self._fingerprint = fingerprint
        return served

    def _check_fingerprint(self, responses: Sequence[dict]) -> None:
        """Warn once when answers report another `system_fingerprint` than the one the identity holds."""
        for response in responses:
            fingerprint = response.get("system_fingerprint")
            if fingerprint and self._fingerprint and fingerprint != self._fingerprint:
                warnings.warn(f"{self.model} at {self.where} now reports system_fingerprint {fingerprint!r}, not "
                              f"{self._fingerprint!r}: its configuration changed during the run, and the answers "
                              "are still stored under the identity it had at the start", stacklevel=2)
                self._fingerprint = fingerprint
                return

    # -- capability ------------------------------------------------------------------------------------------

    @property
    def supports_logprobs(self) -> bool:  # type: ignore[override]
        """Probed once per backend: reasoning models and some servers refuse or drop `logprobs`."""
        if self._logprobs is None:
            try:
                response = self.session.run(self._call(PROBE_ATTEMPTS,
                                                       partial(self._post, self._logprob_kwargs(PROBE))))
                choices = response.get("choices") or [{}]
                self._logprobs = bool((choices[0].get("logprobs") or {}).get("content"))
            except BackendError as exc:
                if "logprob" not in str(exc).lower():
                    raise
                self._logprobs = False
        return self._logprobs

    # -- the two primitives ----------------------------------------------------------------------------------

    @staticmethod
    def _logprob_kwargs(request: ChoiceRequest) -> dict:
        return {"messages": request.messages(), "max_tokens": 1, "temperature": 0.0, "logprobs": True,
                "top_logprobs": TOP_LOGPROBS}

    def stream(self, method: str, requests: Sequence[ChoiceRequest], args: tuple = ()) -> Iterator[tuple[int, Any]]:
        if method == "_choice_probs":
            bodies = [[self._logprob_kwargs(r)] for r in requests]
        elif method == "sample":
            bodies = [self._sample_bodies(r, *args) for r in requests]
        else:
            raise ValueError(f"unknown method {method!r}: _choice_probs or sample")
        for position, responses in self._stream(bodies):
            self._check_fingerprint(responses)
            if method == "_choice_probs":
                yield position, self.parse_logprobs(responses[0], requests[position].labels)
            else:
                yield position, [(r["choices"][0]["message"].get("content") or "") for r in responses]

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        return in_order(self.stream("_choice_probs", requests), len(requests))

    @staticmethod
    def parse_logprobs(response: dict, labels: tuple[str, ...] = LABELS) -> ChoiceResult:
        """Label log-probabilities from the top-20 list of the first generated token (`response`: the JSON)."""
        first = response["choices"][0]["logprobs"]["content"][0]
        tops = [(t["token"], float(t["logprob"])) for t in (first.get("top_logprobs") or [])]
        if not tops:
            tops = [(first["token"], float(first["logprob"]))]
        found: dict[str, list[float]] = {label.upper(): [] for label in labels}
        for token, logprob in tops:
            if (label := normalise_token(token)) in found:
                found[label].append(logprob)
        floor = min(lp for _, lp in tops)
        bound_used = any(not v for v in found.values())
        logps = [logsumexp(v) if v else floor for v in found.values()]
        return ChoiceResult.from_logprobs(logps, tops[:10], bound_used=bound_used, labels=labels)

    @staticmethod
    def _sample_bodies(request: ChoiceRequest, n: int, temperature: float = 1.0, max_tokens: int = 16,
                       seed: int = 0) -> list[dict]:
        # One request per sample (not n=K): not every server honours n, and per-sample seeds keep reruns stable.
        return [{"messages": request.messages(), "max_tokens": max_tokens, "temperature": temperature,
                 "seed": seed + k} for k in range(n)]

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        return in_order(self.stream("sample", requests, (n, temperature, max_tokens, seed)), len(requests))


def logsumexp(values: Sequence[float]) -> float:
    hi = max(values)
    return hi + math.log(sum(math.exp(v - hi) for v in values))
