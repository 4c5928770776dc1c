"""An aiohttp server on 127.0.0.1 in a thread of its own, for tests: a subclass adds its routes (`routes`) and,
if it holds resources, opens and closes them (`started`, `stopping`); `with server as url` runs it."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ThreadedServer:
    access_log = True
    backlog = 128

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def started(self) -> None:
        """Runs on the server's loop before it accepts requests."""

    async def stopping(self) -> None:
        """Runs on the server's loop before it shuts down."""

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start():
            await self.started()
            app = web.Application()
            self.routes(app)
            self._runner = web.AppRunner(app, **({} if self.access_log else {"access_log": None}))
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=self.backlog)
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
            await self.stopping()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
