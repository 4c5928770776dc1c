"""Fit time and log-likelihood: valuelab vs the reference procedure (1000 Adam steps) and choix.

Run: .venv/bin/python benchmarks/bench_fit.py [--quick] [--threads 1 2] [--no-choix]. Prints markdown
tables; each size is timed under every thread count in the same run. Data: simulated Thurstonian agents
(valuelab.fit.simulate), K draws per pair. Log-likelihoods are count-weighted sums over all comparisons
without any prior, each under its own model (Thurstonian for ours/reference, Bradley-Terry for choix).
Ours maximises likelihood plus its weak priors; the reference maximises the likelihood alone (but stops
after 1000 steps). Near-flat priors are not a usable comparison: the maximum likelihood puts items that
win or lose everything at infinity, so such a fit at N = 2000 ran 114 s and was still drifting.
"""

from __future__ import annotations

import argparse
import time

import choix
import numpy as np
import torch

from valuelab.fit.io import to_comparisons
from valuelab.fit.simulate import simulate
from valuelab.fit.thurstonian import BT_VARIANCE, fit_batch, predict_proba

CHOIX_MAX_COMPARISONS = 250_000  # choix's opt/mm loop over comparisons in Python; beyond this they take minutes


def reference_adam(n, a, b, wa, wb, epochs=1000, lr=0.01, seed=0):
    """The reference procedure (emergent-values §3): normalised parameters, mean soft-label BCE over edges,
    Adam lr 0.01 for 1000 full-batch steps from N(0, 0.01^2)."""
    gen = torch.Generator().manual_seed(seed)
    m = (torch.randn(n, generator=gen, dtype=torch.float64) * 0.01).requires_grad_()
    s = (torch.randn(n, generator=gen, dtype=torch.float64) * 0.01).requires_grad_()
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    p = torch.as_tensor(wa / (wa + wb))
    opt = torch.optim.Adam([m, s], lr=lr)
    normal = torch.distributions.Normal(0.0, 1.0)
    for _ in range(epochs):
        opt.zero_grad()
        sd = m.std() + 1e-5
        mu, var = (m - m.mean()) / sd, torch.exp(s) / (sd + 1e-5) ** 2
        p_hat = normal.cdf((mu[ta] - mu[tb]) / torch.sqrt(var[ta] + var[tb] + 1e-5))
        torch.nn.functional.binary_cross_entropy(p_hat, p).backward()
        opt.step()
    with torch.no_grad():
        sd = m.std() + 1e-5
        return ((m - m.mean()) / sd).numpy(), (torch.exp(s) / (sd + 1e-5) ** 2).numpy()


def loglik(comp, mean, variance, model):
    p = np.clip(predict_proba(mean, variance, comp.a, comp.b, model), 1e-300, 1.0)
    q = np.clip(1 - p, 1e-300, 1.0)
    return float(comp.wins_a @ np.log(p) + comp.wins_b @ np.log(q))


def timed(fn, repeats=5, long_s=5.0):
    """Median wall time of ``repeats`` calls (one call when it takes over ``long_s``), so a fit of tens of
    milliseconds is not judged by its first call's one-off costs; every method gets the same rule."""
    times = []
    while True:
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        if len(times) >= repeats or times[0] > long_s:
            return float(np.median(times)), out


def expand(comp):
    wa, wb = comp.wins_a.astype(int), comp.wins_b.astype(int)
    win = np.concatenate([np.repeat(comp.a, wa), np.repeat(comp.b, wb)])
    lose = np.concatenate([np.repeat(comp.b, wa), np.repeat(comp.a, wb)])
    return np.stack([win, lose], 1).tolist()


def bt_frame(theta):
    sd = theta.std(ddof=1)
    return (theta - theta.mean()) / sd, np.full_like(theta, BT_VARIANCE / sd ** 2)


def choix_rows(comp, with_mm):
    data = expand(comp)
    fns = {"choix lsr_pairwise": lambda: choix.lsr_pairwise(comp.n_items, data, alpha=0.01)}
    if len(data) <= CHOIX_MAX_COMPARISONS:
        fns["choix opt_pairwise (Newton-CG)"] = lambda: choix.opt_pairwise(comp.n_items, data, alpha=0.01)
    if with_mm:  # about 3 minutes at 190k comparisons
        fns["choix mm_pairwise"] = lambda: choix.mm_pairwise(comp.n_items, data, alpha=0.01)
    rows = []
    for name, fn in fns.items():
        t, theta = timed(fn)
        rows.append((name, t, loglik(comp, *bt_frame(theta), "bradley-terry")))
    return rows


def compare(n_items, n_pairs, samples, threads, with_choix=True, with_mm=False):
    prefs, _ = simulate(n_items, n_pairs, samples, seed=1)
    comp = to_comparisons(prefs)
    args = (comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b)
    print(f"\n### N = {n_items}, {comp.n_edges} pairs, {int(comp.wins_a.sum() + comp.wins_b.sum())} comparisons\n")
    print("| threads | method | time (s) | log-likelihood | time ratio vs ours | logL minus ours |")
    print("|---|---|---|---|---|---|")
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        rows = []
        t, fit = timed(lambda: fit_batch(*args))
        ours_t, ours_ll = t, float(fit.log_likelihood[0])
        rows.append(("valuelab thurstonian (Newton-CG)", t, ours_ll))
        t, (mu, var) = timed(lambda: reference_adam(*args))
        rows.append(("reference Adam x1000 (thurstonian)", t, loglik(comp, mu, var, "thurstonian")))
        t, bt = timed(lambda: fit_batch(*args, model="bradley-terry", mu_prior_sd=(2 * 0.01) ** -0.5))
        bt_t, bt_ll = t, float(bt.log_likelihood[0])
        rows.append(("valuelab bradley-terry", t, bt_ll))
        rows.append(("valuelab case5", *(lambda r: (r[0], float(r[1].log_likelihood[0])))(
            timed(lambda: fit_batch(*args, model="case5")))))
        if with_choix and n_threads == threads[0]:
            rows += choix_rows(comp, with_mm)
        for name, t, ll in rows:
            base_t, base_ll = (bt_t, bt_ll) if ("choix" in name or "bradley" in name) else (ours_t, ours_ll)
            print(f"| {n_threads} | {name} | {t:.3f} | {ll:.1f} | {t / base_t:.1f}x | {ll - base_ll:+.1f} |",
                  flush=True)


def scaling(limit_s=60.0):
    print("\n### Thurstonian fit time vs N (10 N pairs, 10 draws each)\n")
    print("| N | pairs | method | time (s) |\n|---|---|---|---|")
    sizes, times = [], []
    n = 500
    while True:
        prefs, _ = simulate(n, 10 * n, 10, seed=2)
        comp = to_comparisons(prefs)
        t, fit = timed(lambda comp=comp: fit_batch(comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b))
        print(f"| {n} | {comp.n_edges} | newton-cg | {t:.2f} |", flush=True)
        sizes.append(n)
        times.append(t)
        if t > limit_s / 2.5 or n >= 64_000:
            break
        n *= 2
    big = [i for i, n in enumerate(sizes) if n >= 2000] or list(range(len(sizes)))
    slope = np.polyfit(np.log([sizes[i] for i in big]), np.log([times[i] for i in big]), 1)[0]
    largest = sizes[-1] * (limit_s / times[-1]) ** (1 / slope)
    print(f"\ntime ~ N^{slope:.2f} (N >= 2000); largest N within {limit_s:.0f} s ~ {largest:,.0f} "
          f"(extrapolated from N = {sizes[-1]})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only the smallest comparison")
    parser.add_argument("--mm", action="store_true", help="also time choix mm_pairwise at N = 510")
    parser.add_argument("--no-choix", action="store_true", help="skip choix (opt takes minutes)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts to time side by side; the scaling table uses the first")
    parser.add_argument("--no-scaling", action="store_true")
    opts = parser.parse_args()
    print(f"torch {torch.__version__}, float64 CPU, threads {opts.threads}")
    sizes = [(510, 9510, 20)] + ([] if opts.quick else [(2000, 20_000, 10), (20_000, 200_000, 10)])
    for n_items, n_pairs, samples in sizes:
        compare(n_items, n_pairs, samples, opts.threads, not opts.no_choix, opts.mm and n_items == 510)
    if not (opts.quick or opts.no_scaling):
        torch.set_num_threads(opts.threads[0])
        scaling()


if __name__ == "__main__":
    main()
