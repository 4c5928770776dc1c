"""Throughput of the openai: backend against a local server that answers at once (issue 9).

The server (aiohttp, its own process on 127.0.0.1) returns a canned one-token chat completion with top-20
log-probabilities and usage, so every second measured is spent in valuelab's client: the async OpenAI client,
the adaptive concurrency limiter, retries bookkeeping and log-prob parsing. For each concurrency the backend is
pinned there (`concurrency = max_concurrency`) and asked for N forced choices; memory is the Python heap peak
during the call (tracemalloc, a second pass) and the process's peak resident set.

    .venv/bin/python benchmarks/bench_openai.py [--requests 4000] [--concurrency 1,64,512]

Prints a markdown table; the numbers go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
import urllib.request

from valuelab.models.base import ChoiceRequest
from valuelab.models.openai import OpenAIBackend

TOP = [{"token": t, "logprob": lp, "bytes": None} for t, lp in
       [("A", -0.3), ("B", -1.5), (" A", -3.0), ("I", -4.0), ("The", -4.5)] + [(f"t{k}", -6.0 - k) for k in range(15)]]
ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "A"},
                 "logprobs": {"content": [{"token": "A", "logprob": -0.3, "bytes": None, "top_logprobs": TOP}]}}],
    "usage": {"prompt_tokens": 80, "completion_tokens": 1, "total_tokens": 81}}).encode()


def serve(port: int) -> None:
    from aiohttp import web

    async def complete(_request: web.Request) -> web.Response:
        return web.Response(body=ANSWER, content_type="application/json")

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/models", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the benchmark server did not start (is aiohttp installed?)")


def requests(n: int) -> list[ChoiceRequest]:
    return [ChoiceRequest(f"Which do you prefer? Option A: outcome {k}. Option B: outcome {k + 1}. "
                          'Please respond with only "A" or "B".', (f"outcome {k}", f"outcome {k + 1}"))
            for k in range(n)]


def measure(url: str, concurrency: int, n: int) -> tuple[float, float]:
    """(requests per second, Python heap peak in MiB while asking)."""
    backend = OpenAIBackend("bench", base_url=url, concurrency=concurrency, max_concurrency=concurrency,
                            logprobs=True)
    backend._choice_probs(requests(min(n, 2 * concurrency)))  # warm-up: connections, imports
    reqs = requests(n)
    start = time.perf_counter()
    results = backend._choice_probs(reqs)
    rate = n / (time.perf_counter() - start)
    expected = (math.exp(-0.3) + math.exp(-3.0)) / (math.exp(-0.3) + math.exp(-3.0) + math.exp(-1.5))
    assert all(abs(r.p_a - expected) < 1e-9 for r in results), "the canned answer was misread"
    tracemalloc.start()
    backend._choice_probs(reqs)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return rate, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,64,512")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    proc, url = start_server()
    try:
        print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; {args.requests} forced "
              "choices per row\n")
        print("| concurrency | requests/s | Python heap peak (MiB) | process peak RSS (MiB) |")
        print("|---|---|---|---|")
        for c in [int(v) for v in args.concurrency.split(",")]:
            n = args.requests if c > 1 else max(200, args.requests // 10)
            rate, peak = measure(url, c, n)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"| {c} | {rate:,.0f} | {peak:.1f} | {rss:.0f} |", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
