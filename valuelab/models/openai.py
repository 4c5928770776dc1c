"""OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, ...), through the async `openai` client.

Log-prob mode asks for one token with `logprobs=True, top_logprobs=20` and matches labels by their normalised
token string (reference/tooling.md §2.3); a label missing from the top 20 gets the smallest listed log-probability
as an upper bound, and the result says so. Whether a model gives log-probabilities is probed once; models that
refuse (reasoning models) are asked by sampling instead.

Concurrency adapts AIMD-style: one more slot per window of successes, half the slots on a 429, and every
request waits out a Retry-After. 5xx answers, timeouts and dropped connections are retried a bounded number
of times with jittered exponential backoff, outside the concurrency slot. The client's own retries are off so
the two layers do not multiply.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from valuelab.errors import BackendError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.prompts import LABELS, normalise_token

TOP_LOGPROBS = 20
POOL_SIZE = 4
"""Connections per client; a call holds ceil(min(max_concurrency, requests) / POOL_SIZE) clients."""
PROBE = ChoiceRequest(prompt='Reply with the single letter "A".')


def run_sync(make_coro: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion from sync code, also when called inside a running loop (notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


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


class AdaptiveLimiter:
    """Additive-increase / multiplicative-decrease cap on requests in flight, shared by one run's tasks."""

    def __init__(self, initial: int, maximum: int, minimum: int = 1):
        self.limit, self.maximum, self.minimum = float(initial), maximum, minimum
        self.in_flight = 0
        self.resume_at = 0.0
        self.rate_limited = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        while (delay := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < max(self.minimum, int(self.limit)))
            self.in_flight += 1

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            # Wake only as many waiters as there are free slots: waking all of them on every release costs
            # O(waiting tasks) per request, which dominated at concurrency 512 (benchmarks/bench_openai.py).
            self._cond.notify(max(1, int(self.limit) - self.in_flight))

    def success(self) -> None:
        self.limit = min(self.maximum, self.limit + 1.0 / self.limit)

    def throttled(self, retry_after: float | None) -> None:
        self.rate_limited += 1
        self.limit = max(self.minimum, self.limit / 2)
        if retry_after:
            self.resume_at = max(self.resume_at, time.monotonic() + retry_after)


class OpenAIBackend(Backend):
    """Chat-completions models behind the OpenAI API or any server that speaks it."""

    kind = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 concurrency: int = 16, max_concurrency: int = 256, timeout: float = 60.0,
                 max_retries: int = 6, backoff: float = 0.5, max_backoff: float = 20.0,
                 logprobs: bool | None = None):
        import openai  # noqa: F401  (fail here, with the spec, if the extra is missing)

        self.model, self.base_url = model, base_url
        env = api_key_env or "OPENAI_API_KEY"
        key = os.environ.get(env)
        if not key:
            if api_key_env or base_url is None:
                raise BackendError(f"missing API key: set the environment variable {env} "
                                   "(or name another one with --api-key-env)")
            key = "no-key"  # local OpenAI-compatible servers accept any key
        self._api_key = key  # kept in memory only: never in identity(), the store, logs or reports
        self.concurrency, self.max_concurrency = concurrency, max_concurrency
        self.timeout, self.max_retries = timeout, max_retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self._logprobs = logprobs
        self._ssl = None
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, str]:
        return {"backend": self.kind, "model": self.model,
                "revision": public_url(self.base_url) if self.base_url else "api.openai.com"}

    def render(self, request: ChoiceRequest) -> str:
        import json

        return json.dumps(request.messages(), ensure_ascii=False)

    # -- transport -------------------------------------------------------------------------------------------

    def _clients(self, n_requests: int) -> list:
        """Clients sharing the concurrency, each with a small connection pool of its own.

        httpx scans its whole pool for every request, so one pool of hundreds of connections costs O(pool) per
        request: 69 requests/s at concurrency 512 against an instant local server, against 556 with pools of
        four (benchmarks/bench_openai.py). Requests go round-robin over the clients.
        """
        import httpx
        import openai

        if self._ssl is None:  # loading the CA bundle takes ~40 ms: once per backend, not per client
            self._ssl = httpx.create_ssl_context()
        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        return [openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                   max_retries=0,
                                   http_client=openai.DefaultAsyncHttpxClient(limits=limits, verify=self._ssl))
                for _ in range(-(-min(self.max_concurrency, n_requests) // POOL_SIZE))]

    async def _create(self, clients: Iterator, limiter: AdaptiveLimiter, attempts: int, **kwargs):
        import openai
        from openai.types.chat import ChatCompletion

        error: Exception | None = None
        for attempt in range(attempts):
            wait = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random())
            await limiter.acquire()
            try:
                self.stats["requests"] += 1
                # The low-level post skips the SDK's per-request walk over typed parameters (its largest
                # Python cost per request); errors and the parsed ChatCompletion are as from create().
                response = await next(clients).post("/chat/completions", body={"model": self.model, **kwargs},
                                                    cast_to=ChatCompletion)
            except openai.RateLimitError as exc:
                retry_after = retry_after_seconds(exc.response.headers)
                limiter.throttled(retry_after)
                self.stats["rate_limited"] += 1
                wait = retry_after if retry_after is not None else wait
                error = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise BackendError(f"{self.model} at {self.identity()['revision']} refused the request "
                                       f"(HTTP {exc.status_code}): {exc.message}") from None
                error = exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = exc
            else:
                limiter.success()
                if response.usage:
                    self.stats["prompt_tokens"] += response.usage.prompt_tokens or 0
                    self.stats["completion_tokens"] += response.usage.completion_tokens or 0
                return response
            finally:
                await limiter.release()
            self.stats["retries"] += 1
            await asyncio.sleep(wait)
        where = self.base_url or "the OpenAI API"
        raise BackendError(f"no answer from {where} after {attempts} attempts ({type(error).__name__}: {error}); "
                           "is the server running and --base-url right?")

    def _gather(self, kwargs_list: list[dict], attempts: int | None = None) -> list:
        async def main():
            limiter = AdaptiveLimiter(self.concurrency, self.max_concurrency)
            async with contextlib.AsyncExitStack() as stack:
                clients = itertools.cycle([await stack.enter_async_context(c) for c in self._clients(len(kwargs_list))])
                tasks = [self._create(clients, limiter, attempts or self.max_retries + 1, **kw) for kw in kwargs_list]
                try:
                    return await asyncio.gather(*tasks)
                finally:
                    self.stats["final_concurrency"] = limiter.limit

        return run_sync(main)

    # -- capability ------------------------------------------------------------------------------------------

    @property
    def supports_logprobs(self) -> bool:  # type: ignore[override]
        """Probed once per backend: reasoning models and some servers refuse or drop `logprobs`."""
        if self._logprobs is None:
            try:
                # Few attempts: an unreachable server should fail in seconds, not after the full retry budget.
                (response,) = self._gather([self._logprob_kwargs(PROBE)], attempts=3)
                self._logprobs = bool(response.choices and response.choices[0].logprobs
                                      and response.choices[0].logprobs.content)
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

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        responses = self._gather([self._logprob_kwargs(r) for r in requests])
        return [self.parse_logprobs(resp, r.labels) for resp, r in zip(responses, requests, strict=True)]

    @staticmethod
    def parse_logprobs(response, labels: tuple[str, ...] = LABELS) -> ChoiceResult:
        """Label log-probabilities from the top-20 list of the first generated token."""
        first = response.choices[0].logprobs.content[0]
        tops = [(t.token, float(t.logprob)) for t in (first.top_logprobs or [])]
        if not tops:
            tops = [(first.token, float(first.logprob))]
        found: dict[str, list[float]] = {label.upper(): [] for label in labels}
        for token, logprob in tops:
            if (label := normalise_token(token)) in found:
                found[label].append(logprob)
        floor = min(lp for _, lp in tops)
        bound_used = any(not v for v in found.values())
        logps = [logsumexp(v) if v else floor for v in found.values()]
        return ChoiceResult.from_logprobs(logps, tops[:10], bound_used=bound_used, labels=labels)

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        # One request per sample (not n=K): not every server honours n, and per-sample seeds keep reruns stable.
        kwargs = [{"messages": r.messages(), "max_tokens": max_tokens, "temperature": temperature, "seed": seed + k}
                  for r in requests for k in range(n)]
        responses = self._gather(kwargs)
        texts = [(resp.choices[0].message.content or "") for resp in responses]
        return [texts[i * n: (i + 1) * n] for i in range(len(requests))]


def logsumexp(values: Sequence[float]) -> float:
    hi = max(values)
    return hi + math.log(sum(math.exp(v - hi) for v in values))
