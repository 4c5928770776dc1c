"""Forced-choice throughput of the embedded model, next to the machine's compute bound.

Measures, side by side in one run on the same prompts (pairs from the quick outcome set, reference template,
both orders):
- the hf: backend one prompt at a time, batched at several batch sizes (plain: every prompt run whole), and
  with prefix reuse (the shared token prefix run once, then only the suffixes; issue 9);
- the llama.cpp server through the openai: backend;
- the compute bound: measured float32 matrix-multiply FLOP/s ÷ (2 × parameters × tokens per prompt), with
  tokens counted two ways: every prompt token (the issue 2 definition), and unique tokens (issue 9: each
  prompt's own suffix plus the shared prefix once per batch, what a perfect prefix-reusing run must compute).
  Parameters include the embedding table, which is a lookup, so 100% of this bound is reachable in principle.

    .venv/bin/python benchmarks/bench_throughput.py [--prompts 96] [--batch-sizes 16,64] [--threads N] [--no-server]

Prints a markdown table; the numbers go into benchmarks/README.md. Run it on a quiet machine (`uptime`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request

import torch

from valuelab.elicit.outcomes import load_outcomes
from valuelab.elicit.pairwise import pair_requests
from valuelab.models import load_model
from valuelab.models.hf import prefix_groups
from valuelab.models.smollm2 import gguf_path


def matmul_flops(size: int = 1024, seconds: float = 3.0) -> float:
    """Sustained float32 GEMM FLOP/s with the threads torch uses by default."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * size**3 * n / (time.perf_counter() - start)


def requests(n_prompts: int):
    outcomes = load_outcomes("quick")
    pairs = [(outcomes[i].text, outcomes[(i * 7 + 3) % len(outcomes)].text) for i in range(n_prompts // 2)]
    return [r for a, b in pairs for r in pair_requests(a, b)]


def timed(backend, reqs) -> float:
    backend.choice_probs(reqs[:4])  # warm-up (label probing, allocator)
    start = time.perf_counter()
    backend.choice_probs(reqs)
    return len(reqs) / (time.perf_counter() - start)


def llama_server_rate(reqs, port: int = 8399, concurrency: int = 4, threads: int | None = None) -> float:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2",
           "--n_threads", str(threads or os.cpu_count())]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/models", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        return timed(load_model("openai:smollm2", base_url=url, concurrency=concurrency), reqs)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--batch-sizes", default="16,64")
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--threads", type=int, help="torch and llama.cpp threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    reqs = requests(args.prompts)
    flops = matmul_flops()
    hf = load_model("smollm2")
    params = sum(p.numel() for p in hf.model.parameters())
    ids = [hf.tokenizer(hf.render(r), add_special_tokens=False).input_ids for r in reqs]
    tokens = sum(map(len, ids)) / len(ids)
    ((shared, _),) = prefix_groups(ids)  # one template: one group

    def unique_bound(batch: int) -> float:
        return flops / (2 * params * (tokens - shared + shared / batch))

    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"float32 GEMM {flops / 1e9:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    print(f"model: {params / 1e6:.1f}M parameters; {tokens:.1f} tokens per prompt, {shared} of them a shared "
          f"prefix; {len(reqs)} prompts\n")
    rows = []
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    for cache in (False, True):
        hf.prefix_cache = cache
        for size in sizes if cache else [1, *sizes]:
            hf.batch_size = size
            rate = timed(hf, reqs)
            rows.append((f"hf: smollm2, batch {size}" + (", prefix reuse" if cache else ""), rate, size,
                         os.getloadavg()[0]))
    if not args.no_server:
        rows.append(("llama.cpp server via openai:, concurrency 4", llama_server_rate(reqs, threads=args.threads), 1,
                     os.getloadavg()[0]))
    plain = max(rate for name, rate, size, _ in rows if size > 1 and "prefix" not in name and "server" not in name)
    print("| backend | prompts/s | vs best plain batched | of bound, all tokens | of bound, unique tokens | load |")
    print("|---|---|---|---|---|---|")
    for name, rate, size, load in rows:
        print(f"| {name} | {rate:.2f} | {rate / plain:.2f}× | {rate * 2 * params * tokens / flops:.0%} | "
              f"{rate / unique_bound(size):.0%} | {load:.1f} |")
    print(f"| compute bound, all {tokens:.0f} tokens | {flops / (2 * params * tokens):.2f} | | 100% | | |")
    for size in sizes:
        print(f"| compute bound, unique tokens at batch {size} | {unique_bound(size):.2f} | | | 100% | |")


if __name__ == "__main__":
    main()
