"""A small HTTP proxy that sits between the client and a real server and injects faults on chosen requests."""

from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession, web
from threaded_server import ThreadedServer


class FaultProxy(ThreadedServer):
    """Forwards every request to `upstream`; request number i (1-based) gets the fault `plan[i]`, if any.

    Faults: "429" (Retry-After: 1), "500", "timeout" (no answer for `slow` seconds), "drop" (close the
    connection without answering), "no-logprobs" (400 for any request that asks for logprobs, every time).
    """

    def __init__(self, upstream: str, plan: dict[int, str] | None = None, slow: float = 4.0,
                 refuse_logprobs: bool = False):
        self.upstream, self.plan = upstream.rstrip("/"), plan or {}
        self.slow, self.refuse_logprobs = slow, refuse_logprobs
        self.count = 0
        self.faults: list[str] = []
        self.forwarded = 0
        super().__init__()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        number = self.count  # read before any await: concurrent handlers move self.count on
        body = await request.read()
        if self.refuse_logprobs and body and json.loads(body).get("logprobs"):
            self.faults.append("no-logprobs")
            return web.json_response({"error": {"message": "this model does not support logprobs"}}, status=400)
        fault = self.plan.get(number)
        if fault:
            self.faults.append(fault)
        if fault == "429":
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "1"})
        if fault == "500":
            return web.json_response({"error": {"message": "internal error"}}, status=500)
        if fault == "drop":
            request.transport.close()
            return web.Response(status=500)
        if fault == "timeout":  # the client gives up first; the late answer goes nowhere
            await asyncio.sleep(self.slow)
            return web.json_response({"error": {"message": "too late"}}, status=504)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(request.method, self.upstream + request.path_qs.removeprefix("/v1"),
                                         data=body, headers=headers) as upstream:
            payload = await upstream.read()
            self.forwarded += 1
            return web.Response(body=payload, status=upstream.status,
                                content_type=upstream.content_type)

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def started(self) -> None:
        self._session = ClientSession()

    async def stopping(self) -> None:
        await self._session.close()
