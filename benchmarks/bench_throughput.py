"""Forced-choice throughput of the embedded model, next to the machine's compute bound.

Measures, side by side in one run on the same prompts (pairs from the quick outcome set, reference template):
- the hf: backend one prompt at a time (the baseline) and batched at several batch sizes;
- the llama.cpp server through the openai: backend;
- the compute bound: measured float32 matrix-multiply FLOP/s ÷ (2 × parameters × prompt tokens per prompt), the
  issue's definition, and the tighter bound from the FLOPs a forward pass really needs here: the embedding table is a
  lookup, not a matmul, and the LM head runs once per prompt (`logits_to_keep=1`), so
  2 × non-embedding parameters × tokens + 2 × vocabulary × hidden size.

    .venv/bin/python benchmarks/bench_throughput.py [--prompts 96] [--no-server]

Prints a markdown table; the numbers go into benchmarks/README.md.
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


def llama_server_rate(reqs, port: int = 8399, concurrency: int = 4) -> float:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2", "--n_threads", str(os.cpu_count())]
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
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--no-server", action="store_true")
    args = parser.parse_args()

    reqs = requests(args.prompts)
    flops = matmul_flops()
    hf = load_model("smollm2")
    params = sum(p.numel() for p in hf.model.parameters())
    embedding = hf.model.get_input_embeddings().weight.numel()
    tokens = sum(len(hf.tokenizer(hf.render(r), add_special_tokens=False).input_ids) for r in reqs) / len(reqs)
    bound = flops / (2 * params * tokens)
    tight = flops / (2 * (params - embedding) * tokens + 2 * embedding)
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"float32 GEMM {flops / 1e9:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    print(f"model: {params / 1e6:.1f}M parameters; {tokens:.1f} prompt tokens per prompt; {len(reqs)} prompts\n")
    rows = []
    baseline = None
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        hf.batch_size = size
        rate = timed(hf, reqs)
        baseline = baseline or rate
        rows.append((f"hf: smollm2, batch {size}", rate))
    if not args.no_server:
        rows.append(("llama.cpp server via openai:, concurrency 4", llama_server_rate(reqs)))
    print("| backend | prompts/s | vs batch 1 | of bound (2·params·tokens) | of bound (FLOPs needed) |")
    print("|---|---|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.2f} | {rate / baseline:.2f}× | {rate / bound:.0%} | {rate / tight:.0%} |")
    print(f"| compute bound, 2 × params × tokens | {bound:.2f} | | 100% | |")
    print(f"| compute bound, FLOPs needed (non-embedding matmuls, LM head once) | {tight:.2f} | | | 100% |")


if __name__ == "__main__":
    main()
