"""Throughput of the openai: backend against a local server (issues 9 and 16).

The server (aiohttp, its own process on 127.0.0.1) returns a canned one-token chat completion with top-20
log-probabilities and usage. With no `--latency` it answers at once, so every second measured is spent in
valuelab's client (the async OpenAI client, the limiter, retries bookkeeping, log-prob parsing): for each
concurrency the backend is pinned there and asked for N forced choices; memory is the Python heap peak during
the call (tracemalloc, a second pass) and the process's peak resident set.

    .venv/bin/python benchmarks/bench_openai.py [--requests 4000] [--concurrency 1,64,512]

With `--latency LO,HI` the server holds every answer for a uniform LO..HI seconds (asyncio.sleep: waiting, not
CPU), like a model server, and the rows go through `StoredModel` (in-memory store, chunks of 64) as an analysis
asks: prompts per second at each concurrency (pinned), then the requests of a 510-outcome utilities run (ROUNDS
rounds of ROUND_SIZE prompts, as active selection asks them) with the adaptive limiter from its default start up
to a cap of 1024, then a fault run: the same with `--faults` of the requests answered by a 429 (Retry-After),
a 500 or no answer within the client's timeout. The server counts every prompt it answers: none may be lost or
answered twice.

    .venv/bin/python benchmarks/bench_openai.py --latency 0.05,0.2 --concurrency 1,64,256,1024 --requests 4000

The "before" numbers come from running this same script against the previous code:
`git worktree add /tmp/before HEAD && PYTHONPATH=/tmp/before .venv/bin/python benchmarks/bench_openai.py ...`
(the script speaks both constructors). Prints markdown tables; the numbers go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import inspect
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

import valuelab
from valuelab.models.base import ChoiceRequest
from valuelab.models.openai import OpenAIBackend
from valuelab.store import Store, StoredModel

TOP = [{"token": t, "logprob": lp, "bytes": None} for t, lp in
       [("A", -0.3), ("B", -1.5), (" A", -3.0), ("I", -4.0), ("The", -4.5)] + [(f"t{k}", -6.0 - k) for k in range(15)]]
ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "A"},
                 "logprobs": {"content": [{"token": "A", "logprob": -0.3, "bytes": None, "top_logprobs": TOP}]}}],
    "usage": {"prompt_tokens": 80, "completion_tokens": 1, "total_tokens": 81}}).encode()
TIMEOUT = 2.0
"""The client's timeout in the fault run; a "timeout" fault answers after 1.5 times it."""


def serve(port: int, latency: tuple[float, float], faults: float) -> None:
    import asyncio
    import random
    from collections import Counter

    from aiohttp import web

    rng = random.Random(0)
    counts = {"requests": 0, "faults": Counter(), "answered": Counter()}

    async def complete(request: web.Request) -> web.Response:
        counts["requests"] += 1
        body = await request.json()
        if faults and rng.random() < faults:
            kind = ("429", "500", "timeout")[counts["requests"] % 3]
            counts["faults"][kind] += 1
            if kind == "429":
                return web.json_response({"error": {"message": "slow down"}}, status=429,
                                         headers={"Retry-After": "0.2"})
            if kind == "500":
                return web.json_response({"error": {"message": "internal error"}}, status=500)
            await asyncio.sleep(1.5 * TIMEOUT)  # the client has given up; this answer goes nowhere
            return web.json_response({"error": {"message": "too late"}}, status=504)
        if latency[1] > 0:
            await asyncio.sleep(rng.uniform(*latency))
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Which do you prefer"):  # a forced choice, not a probe
            counts["answered"][prompt] += 1
        return web.Response(body=ANSWER, content_type="application/json")

    async def models(_request: web.Request) -> web.Response:
        counts["requests"] += 1
        return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    async def stats(_request: web.Request) -> web.Response:
        answered = counts["answered"]
        return web.json_response({"requests": counts["requests"], "faults": dict(counts["faults"]),
                                  "answered": sum(answered.values()), "prompts": len(answered),
                                  "twice": sum(1 for n in answered.values() if n > 1)})

    async def reset(_request: web.Request) -> web.Response:
        counts.update(requests=0, faults=Counter(), answered=Counter())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(latency: tuple[float, float] = (0.0, 0.0), faults: float = 0.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--latency", f"{latency[0]},{latency[1]}",
                             "--faults", str(faults)])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/models", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the benchmark server did not start (is aiohttp installed?)")


def server(url: str, path: str) -> dict:
    root = url.removesuffix("/v1")
    method = "POST" if path == "/reset" else "GET"
    with urllib.request.urlopen(urllib.request.Request(root + path, method=method), timeout=10) as response:
        return json.loads(response.read())


def make_backend(url: str, cap: int, initial: int | None = None, **options) -> OpenAIBackend:
    """A backend capped at `cap` requests in flight, starting at `initial` (default: the backend's own start),
    with the constructor of the code under test (before issue 16: `concurrency` was the start and
    `max_concurrency` the cap)."""
    params = inspect.signature(OpenAIBackend).parameters
    if "max_concurrency" in params:
        start = {} if initial is None else {"concurrency": initial}
        return OpenAIBackend("bench", base_url=url, max_concurrency=cap, logprobs=True, **start, **options)
    start = {} if initial is None else {"initial_concurrency": initial}
    return OpenAIBackend("bench", base_url=url, concurrency=cap, logprobs=True, **start, **options)


def requests(n: int, tag: str = "") -> list[ChoiceRequest]:
    return [ChoiceRequest(f"Which do you prefer{tag}? Option A: outcome {k}. Option B: outcome {k + 1}. "
                          'Please respond with only "A" or "B".', (f"outcome {k}", f"outcome {k + 1}"))
            for k in range(n)]


EXPECTED_P_A = (math.exp(-0.3) + math.exp(-3.0)) / (math.exp(-0.3) + math.exp(-3.0) + math.exp(-1.5))


def measure(url: str, concurrency: int, n: int) -> tuple[float, float]:
    """Instant server, backend level: (requests per second, Python heap peak in MiB while asking)."""
    backend = make_backend(url, concurrency, concurrency)
    backend._choice_probs(requests(min(n, 2 * concurrency)))  # warm-up: connections, imports
    reqs = requests(n)
    start = time.perf_counter()
    results = backend._choice_probs(reqs)
    rate = n / (time.perf_counter() - start)
    assert all(abs(r.p_a - EXPECTED_P_A) < 1e-9 for r in results), "the canned answer was misread"
    tracemalloc.start()
    backend._choice_probs(reqs)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return rate, peak


def through_store(url: str, batches: list[list[ChoiceRequest]], cap: int, initial: int | None = None,
                  **options) -> dict:
    """Ask `batches` one after another through one StoredModel (fresh in-memory store) and check, at the
    server, that every prompt was answered exactly once."""
    server(url, "/reset")
    model = StoredModel(make_backend(url, cap, initial, **options), Store(), progress=False)
    start = time.perf_counter()
    results = [r for batch in batches for r in model.choice_probs(batch)]
    wall = time.perf_counter() - start
    n = sum(len(b) for b in batches)
    seen = server(url, "/stats")
    assert len(model.store) == n and all(abs(r.p_a - EXPECTED_P_A) < 1e-9 for r in results)
    return {"prompts": n, "wall": wall, "rate": n / wall, "lost": n - seen["prompts"], "twice": seen["twice"],
            "requests": seen["requests"], "faults": seen["faults"],
            "peak": getattr(getattr(model.backend, "limiter", None), "peak", None)}


def instant(args) -> None:
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


def with_latency(args, latency: tuple[float, float]) -> None:
    mean = sum(latency) / 2
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}; valuelab from "
          f"{os.path.dirname(valuelab.__file__)}; server latency {latency[0]:g}-{latency[1]:g} s (mean {mean:g})\n")
    proc, url = start_server(latency)
    try:
        print("| concurrency (pinned) | prompts | prompts/s | ideal prompts/s (c ÷ mean latency) | wall ÷ ideal |")
        print("|---|---|---|---|---|")
        for c in [int(v) for v in args.concurrency.split(",")]:
            n = args.requests if c > 1 else 80
            row = through_store(url, [requests(n, f" {c}")], c, c)
            ideal = row["prompts"] * mean / c
            print(f"| {c} | {n:,} | {row['rate']:,.0f} | {c / mean:,.0f} | {row['wall'] / ideal:.2f} |", flush=True)
        if not args.rounds:
            return
        batches = [requests(args.round_size, f" round {k}") for k in range(args.rounds)]
        row = through_store(url, batches, 1024)
        # Each round can at best be answered in one round of latency, or in prompts × latency ÷ 1024.
        ideal = sum(max(latency[1], len(b) * mean / 1024) for b in batches)
        print(f"\n510-outcome utilities run: {args.rounds} rounds of {args.round_size} prompts, adaptive up to "
              f"1024: {row['wall']:.1f} s wall ({row['rate']:,.0f} prompts/s; requests × mean latency ÷ 1024 = "
              f"{row['prompts'] * mean / 1024:.1f} s, one latency per round at least: {ideal:.1f} s, "
              f"{row['wall'] / ideal:.1f}x), {row['requests']:,} requests at the server, lost {row['lost']}, "
              f"answered twice {row['twice']}, peak in flight {row['peak']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    if args.faults:
        proc, url = start_server(latency, args.faults)
        try:
            batches = [requests(args.round_size, f" fault round {k}") for k in range(args.fault_rounds)]
            row = through_store(url, batches, 1024, timeout=TIMEOUT, backoff=0.05)
            print(f"fault run ({args.faults:.0%} of requests: 429 with Retry-After 0.2 s, 500, or no answer within "
                  f"{TIMEOUT:g} s): {row['prompts']:,} prompts in {row['wall']:.1f} s, {row['requests']:,} requests "
                  f"at the server, faults {row['faults']}, lost {row['lost']}, answered twice {row['twice']}")
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,64,512")
    parser.add_argument("--latency", default="0,0", help="LO,HI seconds the server holds each answer")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the utilities run (latency mode; 0: none)")
    parser.add_argument("--round-size", type=int, default=1017,
                        help="prompts per round: 2,000 held-out and 18,340 training prompts over 20 rounds")
    parser.add_argument("--faults", type=float, default=0.0, help="share of requests faulted in the fault run")
    parser.add_argument("--fault-rounds", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    latency = tuple(float(v) for v in args.latency.split(","))
    if args.serve:
        return serve(args.serve, latency, args.faults)
    return with_latency(args, latency) if latency[1] > 0 else instant(args)


if __name__ == "__main__":
    main()
