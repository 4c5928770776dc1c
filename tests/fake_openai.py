"""A small OpenAI-compatible server on 127.0.0.1, in a thread, that counts what it is asked.

It lists one model at /v1/models (`listing`: the entry's fields) and answers chat completions at once: log-prob
requests with top log-probabilities for "A" and "B", others with the text "A" or "B", both chosen by a hash of
the prompt (and the seed), so answers are deterministic. What is served can be changed between runs on the same
URL (a restart with another model behind the same name). `plan` injects faults by request number (1-based,
counted over every request): "500", or "429" (Retry-After: 0). `hold` keeps every completion waiting until that
many are in flight at once (or `hold_timeout` passes), to see how many the client sends together.
"""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import web
from threaded_server import ThreadedServer


def _pick(text: str) -> str:
    return "A" if hashlib.sha256(text.encode()).digest()[0] % 2 else "B"


class FakeOpenAI(ThreadedServer):
    access_log = False
    backlog = 1024

    def __init__(self, model: str = "fake", *, listing: dict | None = None, fingerprint: str | None = None,
                 plan: dict[int, str] | None = None, hold: int = 0, hold_timeout: float = 30.0):
        self.model, self.listing, self.fingerprint = model, dict(listing or {}), fingerprint
        self.plan, self.hold, self.hold_timeout = dict(plan or {}), hold, hold_timeout
        self.requests = 0  # every HTTP request, faults included
        self.completions = 0  # chat completions answered
        self.listings = 0
        self.in_flight = self.peak = 0
        self.peers: set[tuple] = set()
        super().__init__()

    def _fault(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        self.peers.add(request.transport.get_extra_info("peername"))
        fault = self.plan.get(self.requests)
        if fault == "429":
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0"})
        if fault == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        return None

    async def _models(self, request: web.Request) -> web.Response:
        if (fault := self._fault(request)) is not None:
            return fault
        self.listings += 1
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model",
                                                              **self.listing}]})

    async def _complete(self, request: web.Request) -> web.Response:
        if (fault := self._fault(request)) is not None:
            return fault
        body = await request.json()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold:
                if self.in_flight >= self.hold:
                    self._held.set()
                try:
                    await asyncio.wait_for(self._held.wait(), self.hold_timeout)
                except TimeoutError:
                    pass
            prompt = body["messages"][-1]["content"]
            if body.get("logprobs"):
                first = _pick(prompt)
                other = "B" if first == "A" else "A"
                top = [{"token": first, "logprob": -0.2, "bytes": None},
                       {"token": other, "logprob": -1.8, "bytes": None}]
                logprobs = {"content": [{"token": first, "logprob": -0.2, "bytes": None, "top_logprobs": top}]}
                content = first
            else:
                logprobs, content = None, _pick(f"{prompt}|{body.get('seed')}")
            self.completions += 1
            answer = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": self.model,
                      "choices": [{"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                                   "message": {"role": "assistant", "content": content}}],
                      "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
            if self.fingerprint:
                answer["system_fingerprint"] = self.fingerprint
            return web.json_response(answer)
        finally:
            self.in_flight -= 1

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._complete)

    async def started(self) -> None:
        self._held = asyncio.Event()
