"""The Ray executor with local actors against one process, on the embedded model (issue 9).

Same prompts (pairs from the quick outcome set, both orders), fresh in-memory stores, side by side:
- one process: `StoredModel(smollm2)` with torch's default threads (all cores);
- Ray: `RayExecutor("smollm2", actors=A)`, each actor one core (Ray sets one thread per actor's CPU).
Ray's start-up (the cluster and the actors loading the model) is timed apart from the throughput.

    .venv/bin/python benchmarks/bench_ray.py [--prompts 120] [--actors 2] [--chunk 16]

On one two-core machine expect about 1×: both runs share the same two cores, and one process already uses
both. The executor pays off when actors sit on different machines or GPUs (throughput then grows with the
actor count until the driver's store writes — a few milliseconds per chunk — are the limit).
"""

from __future__ import annotations

import argparse
import time

import ray
from bench_throughput import requests

from valuelab.executor import RayExecutor
from valuelab.models import load_model
from valuelab.store import Store, StoredModel


def rate(model: StoredModel, reqs) -> float:
    start = time.perf_counter()
    model.choice_probs(reqs)
    return len(reqs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=120, help="at most 120 (pairs over the 60 quick outcomes)")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=16, help="prompts per chunk (the unit handed to an actor)")
    args = parser.parse_args()
    reqs = requests(args.prompts)
    backend = load_model("smollm2")
    StoredModel(backend, Store()).choice_probs(reqs[:4])  # warm-up
    one = rate(StoredModel(backend, Store(), chunk_size=args.chunk), reqs)

    started = time.perf_counter()
    executor = RayExecutor("smollm2", actors=args.actors)
    StoredModel(backend, Store(), executor=executor).choice_probs(reqs[:4 * args.actors])  # warm every actor
    startup = time.perf_counter() - started
    many = rate(StoredModel(backend, Store(), executor=executor, chunk_size=args.chunk), reqs)
    ray.shutdown()
    print(f"| prompts | one process | Ray, {args.actors} actors | ratio | Ray start-up |\n|---|---|---|---|---|\n"
          f"| {len(reqs)} | {one:.2f} prompts/s | {many:.2f} prompts/s | {many / one:.2f}× | {startup:.1f} s |")


if __name__ == "__main__":
    main()
