"""A small HTTP proxy that sits between the client and a real server and injects faults on chosen requests."""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import ClientSession, web


class FaultProxy:
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
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

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

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start():
            self._session = ClientSession()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __enter__(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc) -> None:
        async def stop():
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
