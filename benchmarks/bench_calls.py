"""Model calls to reach the reference protocol's held-out accuracy (issue 4), over the OpenAI path.

A local OpenAI-compatible server (aiohttp, its own process on 127.0.0.1) plays a Thurstonian agent with known
utilities: for the "state-of-world" prompt it finds the two outcomes and answers
P(A) = Φ((μA − μB + b + ε) / √(σA² + σB²)), with a position bias b toward A and a fixed deviation ε ~ N(0, 0.5²)
per prompt (a real model's answer to one wording is not its ideal preference, and log-probabilities do not
average that away), as top-20 log-probabilities (logprob mode) or a seeded sample of "A" or "B" (sampling). It
counts every completion it serves.

- Reference protocol (Mazeika et al. 2025): K = 10 samples per order per pair, over the reference active-sampling
  heuristic's 2·N·log₂N pairs: `StoredModel(mode="sample", n_samples=10)`, `selector="reference"`.
- valuelab: one log-prob request per order per pair, our information-gain selector, at fractions of that budget.

Accuracy is on the same held-out pairs two ways: against the agent's true preference (sign of P − 0.5, the
fairest measure, since sampled answers are noisy labels) and the reference's own definition against the answers
the model gave. Held-out pairs are asked by both protocols and counted apart from the training calls.

    .venv/bin/python benchmarks/bench_calls.py [--outcomes core] [--fractions 0.1,0.25,0.5,1] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import sys
import time
import urllib.request

import numpy as np
from bench_openai import free_port
from scipy.stats import norm

from valuelab.elicit.outcomes import load_outcomes
from valuelab.fit.utilities import elicit_utilities
from valuelab.models.openai import OpenAIBackend
from valuelab.store import Store, StoredModel

VARIANCE = 0.5
"""Each outcome's σ²: P(A) = Φ(Δμ) for two outcomes, a realistic mix of clear and close pairs."""
POSITION_BIAS, PROMPT_NOISE = 0.2, 0.5
OPTIONS = re.compile(r"Option A:\n(.*?)\n\nOption B:\n(.*?)\n\n", re.S)


def planted_mean(text: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return float(norm.ppf((int.from_bytes(digest[:8], "big") + 0.5) / 2**64))


def p_first(a: str, b: str, seed: int) -> float:
    """The agent's ideal P(a ≻ b): the truth the fits are scored against."""
    return float(norm.cdf((planted_mean(a, seed) - planted_mean(b, seed)) / math.sqrt(2 * VARIANCE)))


def p_answer_a(a: str, b: str, seed: int) -> float:
    """What the agent answers when a is shown as A: its preference, its lean to A, and this prompt's deviation."""
    deviation = PROMPT_NOISE * planted_mean(f"{a}|{b}", seed + 1)
    shift = planted_mean(a, seed) - planted_mean(b, seed) + POSITION_BIAS + deviation
    return float(norm.cdf(shift / math.sqrt(2 * VARIANCE)))


def serve(port: int, seed: int) -> None:
    from aiohttp import web

    served = {"completions": 0}

    def completion(content: str, top: list[tuple[str, float]] | None) -> dict:
        logprobs = None if top is None else {"content": [{
            "token": content, "logprob": dict(top)[content], "bytes": None,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top]}]}
        return {"id": "chatcmpl-agent", "object": "chat.completion", "created": 0, "model": "agent",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61}}

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        served["completions"] += 1
        match = OPTIONS.search(body["messages"][-1]["content"])
        if match is None:  # the capability probe, or anything else: a plain answer
            return web.json_response(completion("A", [("A", -0.1), ("B", -2.4)] if body.get("logprobs") else None))
        p = min(max(p_answer_a(match.group(1), match.group(2), seed), 1e-12), 1 - 1e-12)
        if body.get("logprobs"):
            top = sorted([("A", math.log(p)), ("B", math.log1p(-p))], key=lambda t: -t[1])
            top += [(f"t{k}", -30.0 - k) for k in range(18)]
            return web.json_response(completion(top[0][0], top))
        draw = random.Random(f"{body['messages'][-1]['content']}|{body.get('seed')}").random()
        return web.json_response(completion("A" if draw < p else "B", None))

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(served)

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "agent", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def served(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=5) as response:
        return json.loads(response.read())["completions"]


def accuracy_against_truth(result, text: dict[str, str], seed: int) -> float:
    u = result.utilities.set_index("id")
    held = result.preferences[result.preferences["split"] == "heldout"]
    mean_a, mean_b = u.loc[held["id_a"], "mean"].to_numpy(), u.loc[held["id_b"], "mean"].to_numpy()
    scale = np.sqrt(u.loc[held["id_a"], "variance"].to_numpy() + u.loc[held["id_b"], "variance"].to_numpy())
    predicted = norm.cdf((mean_a - mean_b) / scale)
    truth = np.array([p_first(text[a], text[b], seed) for a, b in zip(held["id_a"], held["id_b"], strict=True)])
    return float(np.mean((predicted > 0.5) == (truth > 0.5)))


def run(url: str, outcomes, mode: str, selector: str, budget: int | None, seed: int) -> dict:
    os.environ.setdefault("BENCH_AGENT_KEY", "local")  # the local agent checks no key, but the client wants one
    backend = OpenAIBackend("agent", base_url=url, api_key_env="BENCH_AGENT_KEY", concurrency=64)
    model = StoredModel(backend, Store(), mode=mode, n_samples=10, temperature=1.0, seed=seed, progress=False)
    before, started = served(url), time.perf_counter()
    result = elicit_utilities(model, outcomes, budget=budget, seed=seed, selector=selector)
    completions = served(url) - before
    held = int((result.preferences["split"] == "heldout").sum())
    per_prompt = 10 if mode == "sample" else 1
    return {"pairs": result.metrics["pairs_trained"], "completions": completions,
            "heldout_completions": 2 * held * per_prompt, "train_completions": completions - 2 * held * per_prompt,
            "acc_truth": accuracy_against_truth(result, {o.id: o.text for o in outcomes}, seed),
            "acc_reference": result.metrics["heldout_accuracy"], "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outcomes", default="core")
    parser.add_argument("--fractions", default="0.1,0.25,0.5,1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.seed)
    import subprocess

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--seed", str(args.seed)])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            served(url)
            break
        except OSError:
            time.sleep(0.1)
    try:
        outcomes = load_outcomes(args.outcomes)
        n = len(outcomes)
        full = int(2 * n * np.log2(n))
        rows = [("reference: K=10 samples, reference selector", full,
                 run(url, outcomes, "sample", "reference", full, args.seed))]
        for fraction in map(float, args.fractions.split(",")):
            budget = max(n, int(fraction * full))
            rows.append((f"valuelab: log-probs, information gain, {fraction:g}× budget", budget,
                         run(url, outcomes, "logprob", "information-gain", budget, args.seed)))
    finally:
        proc.terminate()
    reference = rows[0][2]
    print(f"{n} outcomes; held-out pairs scored against the agent's true preferences and against its answers\n")
    print("| protocol | training pairs | training completions | held-out acc. (truth) | held-out acc. (answers) "
          "| calls saved vs reference |\n|---|---|---|---|---|---|")
    for name, _budget, r in rows:
        ratio = reference["train_completions"] / r["train_completions"]
        print(f"| {name} | {r['pairs']:,} | {r['train_completions']:,} | {r['acc_truth']:.4f} | "
              f"{r['acc_reference']:.4f} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()
