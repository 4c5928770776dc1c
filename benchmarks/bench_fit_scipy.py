"""The hand-written Newton-CG fitter against scipy's trust-region solvers on the same objective.

Run: .venv/bin/python benchmarks/bench_fit_scipy.py [--quick] [--threads 1] [--gtol 1e-9]

Problems are bench_fit.py's (same simulate() calls, sizes and seed). For each N the Thurstonian fit of
``fit_batch`` (least-squares start, Case V phase, Case III phase, all Newton-CG) is timed beside the same
pipeline with the two Newton-CG phases replaced by ``scipy.optimize.minimize(method="trust-krylov")`` or
``"trust-ncg"``. scipy gets the identical objective (likelihood plus the same weak priors, divided by the
comparison count), gradient and Hessian-vector products: a thin adapter calls the module's own
``_Curvature`` (value, gradient, per-edge Hessian blocks) and ``_HessianPattern.assemble`` (the sparse CSR
Hessian, assembled once per point; each product is one sparse matrix-vector product), converting numpy
<-> torch float64. Both start from the same least-squares start, and the Case III phase of both starts
from its own Case V optimum (the Case V tolerance is the module's CASE5_TOL). A second table times the
Case III phase alone from one shared Case V point (the hand-written Case V optimum), i.e. the solver
only. scipy stops on the 2-norm of the gradient (``gtol``); ours on its largest entry (1e-9), so scipy's
default here (1e-9 on the 2-norm) is at least as strict. ``fit_batch(tol=1e-7)`` is timed too, because
trust-krylov stops near there. Log-likelihoods are count-weighted, without prior; log-posteriors add the
priors (what every solver maximises). Times are medians of repeats, the methods taking turns in each round.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_fit import loglik
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from valuelab.fit.io import to_comparisons
from valuelab.fit.simulate import simulate
from valuelab.fit.thurstonian import (
    CASE5_TOL,
    _Curvature,
    _edge_columns,
    _ItemGraph,
    _least_squares_start,
    _newton_cg,
    fit_batch,
)

SIZES = [(510, 9510, 20), (2000, 20_000, 10), (20_000, 200_000, 10)]  # as in bench_fit.main(), where they are local
METHODS = ("trust-krylov", "trust-ncg")
TOL = 1e-9  # fit_batch's Newton-CG default (largest gradient entry)


class Problem:
    """One data set as fit_batch sets it up: tensors, priors, the shared item graph (B = 1)."""

    def __init__(self, comp, mu_prior_sd: float = 10.0, logvar_prior_sd: float = 2.0) -> None:
        f64 = torch.float64
        self.n = comp.n_items
        self.ta = torch.as_tensor(comp.a, dtype=torch.long)
        self.tb = torch.as_tensor(comp.b, dtype=torch.long)
        self.wa = torch.as_tensor(np.atleast_2d(comp.wins_a), dtype=f64)
        self.wb = torch.as_tensor(np.atleast_2d(comp.wins_b), dtype=f64)
        self.prior = torch.full((2 * self.n,), 1.0 / mu_prior_sd ** 2, dtype=f64)
        self.prior[self.n:] = 1.0 / logvar_prior_sd ** 2

    def graph(self) -> _ItemGraph:
        return _ItemGraph(self.ta, self.tb, self.n)

    def start(self, graph: _ItemGraph) -> torch.Tensor:
        return _least_squares_start(graph, self.wa, self.wb, "case5", self.prior[: self.n])

    def logpost(self, x: np.ndarray) -> float:
        """Log-likelihood plus log-prior (up to a constant): what every solver maximises, unscaled."""
        x = np.asarray(x, dtype=np.float64)
        return self.loglik(x) - 0.5 * float(self.prior[: x.size].numpy() @ (x * x))

    def loglik(self, x: np.ndarray) -> float:
        xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).view(1, -1)
        cols = _edge_columns(self.ta, self.tb, self.n, "thurstonian")
        return float(-_Curvature(xt, self.n, cols, self.wa, self.wb, "thurstonian").nll.sum())


class Objective:
    """fit_batch's per-comparison objective for one model as scipy callables fun / jac / hessp. The last
    two points are cached: scipy asks for the value, gradient and many Hessian products at one point, and
    returns to the current point after a rejected trial step. Counts evaluations of each kind."""

    def __init__(self, problem: Problem, graph: _ItemGraph, model: str) -> None:
        self.p, self.model = problem, model
        per_item = 2 if model == "thurstonian" else 1
        self.prior = problem.prior[: per_item * problem.n]
        self.cols = _edge_columns(graph.ta, graph.tb, problem.n, model)
        self.scale = 1.0 / (problem.wa.sum(1) + problem.wb.sum(1)).clamp_min(1.0)
        self.pattern = graph.pattern(per_item, 1)
        self.cache: list[dict] = []
        self.counts = {"fun": 0, "hess": 0, "hessp": 0}

    def _at(self, x: np.ndarray) -> dict:
        for entry in self.cache:
            if np.array_equal(entry["x"], x):
                return entry
        xt = torch.from_numpy(np.array(x, dtype=np.float64)).view(1, -1)
        terms = _Curvature(xt, self.p.n, self.cols, self.p.wa, self.p.wb, self.model)
        value = self.scale * (terms.nll.sum(1) + 0.5 * (self.prior * xt * xt).sum(1))
        entry = {"x": xt.numpy().ravel(), "xt": xt, "terms": terms, "value": float(value[0])}
        self.counts["fun"] += 1
        self.cache = [entry] + self.cache[:1]
        return entry

    def fun(self, x: np.ndarray) -> float:
        return self._at(x)["value"]

    def jac(self, x: np.ndarray) -> np.ndarray:
        entry = self._at(x)
        if "grad" not in entry:
            grad = (entry["terms"].grad() + self.prior * entry["xt"]) * self.scale[:, None]
            entry["grad"] = grad.numpy().ravel()
        return entry["grad"]

    def hessp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        entry = self._at(x)
        if "hvp" not in entry:
            entry["hvp"], _ = self.pattern.assemble(entry["terms"].edge_blocks(), self.prior, self.scale)
            self.counts["hess"] += 1
        self.counts["hessp"] += 1
        return entry["hvp"](torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).view(1, -1)).numpy().ravel()

    def max_grad(self, x: np.ndarray) -> float:
        return float(np.abs(self.jac(x)).max())


def scipy_phase(problem: Problem, graph: _ItemGraph, model: str, x0: np.ndarray, method: str, gtol: float,
                maxiter: int, time_limit: float) -> tuple[np.ndarray, dict]:
    obj = Objective(problem, graph, model)
    start = time.perf_counter()

    def callback(intermediate_result):  # stop a run that would blow the benchmark's time budget
        if time.perf_counter() - start > time_limit:
            raise StopIteration

    res = minimize(obj.fun, x0, jac=obj.jac, hessp=obj.hessp, method=method, callback=callback,
                   options={"gtol": gtol, "maxiter": maxiter})
    info = {"nit": int(res.nit), "status": int(res.status), "message": str(res.message),
            "max_grad": obj.max_grad(res.x), "grad_norm": float(np.linalg.norm(obj.jac(res.x))),
            **obj.counts}
    return res.x, info


def scipy_fit(problem: Problem, method: str, gtol: float, maxiter: int, time_limit: float):
    """fit_batch's pipeline with scipy as the solver of both phases."""
    graph = problem.graph()
    mu0 = problem.start(graph).numpy().ravel()
    mu, info5 = scipy_phase(problem, graph, "case5", mu0, method, max(gtol, CASE5_TOL), maxiter, time_limit)
    x0 = np.concatenate([mu, np.zeros(problem.n)])
    x, info3 = scipy_phase(problem, graph, "thurstonian", x0, method, gtol, maxiter, time_limit)
    return x, info5, info3


def ours_case3(problem: Problem, graph: _ItemGraph, x0: np.ndarray) -> tuple[np.ndarray, int]:
    """The hand-written Case III phase exactly as fit_batch runs it."""
    x, n_iter = _newton_cg(torch.from_numpy(x0.copy()).view(1, -1), graph, problem.wa, problem.wb,
                           "thurstonian", problem.prior, TOL, 3000)
    return x.numpy().ravel(), n_iter


def ours_case5_point(problem: Problem, graph: _ItemGraph) -> np.ndarray:
    mu, _ = _newton_cg(problem.start(graph), graph, problem.wa, problem.wb, "case5", problem.prior[: problem.n],
                       max(TOL, CASE5_TOL), 3000)
    return np.concatenate([mu.numpy().ravel(), np.zeros(problem.n)])


def describe(info: dict) -> str:
    flag = "" if info["status"] == 0 else f", status {info['status']}: {info['message']}"
    return (f"{info['nit']} it, {info['fun']} f, {info['hess']} H, {info['hessp']} Hv, "
            f"max|g| {info['max_grad']:.1e}{flag}")


def interleaved(fns: dict, repeats: int) -> dict:
    """Median wall time of ``repeats`` calls of each function, the functions taking turns within each round,
    so load from other jobs on this shared machine drifts over all of them alike. Returns {name: (s, out)}."""
    times: dict = {name: [] for name in fns}
    outs: dict = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: (float(np.median(times[name])), outs[name]) for name in fns}


def run_size(n_items: int, n_pairs: int, samples: int, opts) -> tuple[dict, dict]:
    prefs, _ = simulate(n_items, n_pairs, samples, seed=1)
    comp = to_comparisons(prefs)
    problem = Problem(comp)
    graph = problem.graph()
    n_comp = int(comp.wins_a.sum() + comp.wins_b.sum())
    repeats = opts.repeats_big if n_items > 5000 else opts.repeats
    args = (comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b)
    print(f"\n## N = {n_items:,}, {comp.n_edges:,} pairs, {n_comp:,} comparisons (median of {repeats})", flush=True)

    # The hand-written fit's own end point (fit_batch returns normalised parameters, not the raw optimum):
    # the same code path as fit_batch, so the same point.
    x5 = ours_case5_point(problem, graph)
    x_ours, it3 = ours_case3(problem, graph, x5)
    ll_ours, lp_ours = problem.loglik(x_ours), problem.logpost(x_ours)
    check = Objective(problem, graph, "thurstonian")

    def scipy_whole(method):
        return lambda: scipy_fit(problem, method, opts.gtol, opts.maxiter, opts.time_limit)

    def scipy_case3(method):
        return lambda: scipy_phase(problem, graph, "thurstonian", x5, method, opts.gtol, opts.maxiter,
                                   opts.time_limit)

    whole = interleaved({"ours": lambda: fit_batch(*args), "ours 1e-7": lambda: fit_batch(*args, tol=1e-7),
                         **{m: scipy_whole(m) for m in METHODS}}, repeats)
    alone = interleaved({"ours": lambda: ours_case3(problem, graph, x5), **{m: scipy_case3(m) for m in METHODS}},
                        repeats)

    fit = whole["ours"][1]
    ll_norm = loglik(comp, fit.mean[0], fit.variance[0], "thurstonian")  # bench_fit's logL of normalised output
    print(f"ours: {whole['ours'][0]:.3f} s, logL {ll_ours:.3f} (fit_batch {float(fit.log_likelihood[0]):.3f}, "
          f"from normalised output {ll_norm:.3f}), log-posterior {lp_ours:.3f}, {fit.n_iter} Newton steps "
          f"({fit.n_iter - it3} Case V + {it3} Case III), max|g| {check.max_grad(x_ours):.1e}", flush=True)
    loose = whole["ours 1e-7"][1]
    print(f"ours, tol 1e-7: {whole['ours 1e-7'][0]:.3f} s, logL {float(loose.log_likelihood[0]) - ll_ours:+.2e} vs "
          f"ours, {loose.n_iter} Newton steps", flush=True)
    full = {"n": n_items, "comp": n_comp, "ours": whole["ours"][0], "ours_it": fit.n_iter,
            "loose": whole["ours 1e-7"][0]}
    for method in METHODS:
        t, (x, info5, info3) = whole[method]
        ll, lp = problem.loglik(x), problem.logpost(x)
        full[method] = (t, ll - ll_ours, lp - lp_ours, info5, info3)
        print(f"{method}: {t:.3f} s, logL {ll - ll_ours:+.2e} and log-posterior {lp - lp_ours:+.2e} vs ours, "
              f"max|x - ours| {float(np.abs(x - x_ours).max()):.1e}; Case V {describe(info5)}; "
              f"Case III {describe(info3)}", flush=True)

    t_o, (x_o, it_o) = alone["ours"]
    phase = {"n": n_items, "ours": t_o, "ours_it": it_o}
    print(f"Case III alone, ours: {t_o:.3f} s, {it_o} Newton steps", flush=True)
    for method in METHODS:
        t, (x, info) = alone[method]
        ll, lp = problem.loglik(x), problem.logpost(x)
        phase[method] = (t, ll - ll_ours, lp - lp_ours, info)
        print(f"Case III alone, {method}: {t:.3f} s, logL {ll - ll_ours:+.2e} and log-posterior {lp - lp_ours:+.2e} "
              f"vs ours, max|x - ours| {float(np.abs(x - x_o).max()):.1e}; {describe(info)}", flush=True)
    return full, phase


def table(rows_full: list, rows_phase: list) -> None:
    print("\n### Whole fit (least-squares start, Case V, Case III)\n")
    print("| N | comparisons | ours s | trust-krylov s | trust-ncg s | krylov / ours | ncg / ours | "
          "logL − ours: krylov / ncg | log-posterior − ours: krylov / ncg | max abs gradient: krylov / ncg | "
          "iterations ours / krylov / ncg (V + III) | Hv products krylov / ncg | ours at tol 1e-7 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows_full:
        tk, dk, pk, k5, k3 = r["trust-krylov"]
        tn, dn, pn, n5, n3 = r["trust-ncg"]
        print(f"| {r['n']:,} | {r['comp']:,} | {r['ours']:.3f} | {tk:.3f} | {tn:.3f} | {tk / r['ours']:.1f}x | "
              f"{tn / r['ours']:.1f}x | {dk:+.1e} / {dn:+.1e} | {pk:+.1e} / {pn:+.1e} | "
              f"{k3['max_grad']:.0e} / {n3['max_grad']:.0e} | "
              f"{r['ours_it']} / {k5['nit']} + {k3['nit']} / {n5['nit']} + {n3['nit']} | "
              f"{k5['hessp'] + k3['hessp']} / {n5['hessp'] + n3['hessp']} | {r['loose']:.3f} |")
    print("\n### Case III phase alone, every solver from the hand-written Case V optimum\n")
    print("| N | ours s | trust-krylov s | trust-ncg s | krylov / ours | ncg / ours | logL − ours: krylov / ncg | "
          "log-posterior − ours: krylov / ncg | iterations ours / krylov / ncg | Hv products krylov / ncg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows_phase:
        tk, dk, pk, ik = r["trust-krylov"]
        tn, dn, pn, i_n = r["trust-ncg"]
        print(f"| {r['n']:,} | {r['ours']:.3f} | {tk:.3f} | {tn:.3f} | {tk / r['ours']:.1f}x | {tn / r['ours']:.1f}x | "
              f"{dk:+.1e} / {dn:+.1e} | {pk:+.1e} / {pn:+.1e} | {r['ours_it']} / {ik['nit']} / {i_n['nit']} | "
              f"{ik['hessp']} / {i_n['hessp']} |")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="only N = 510")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    parser.add_argument("--gtol", type=float, default=TOL, help="scipy's tolerance on the gradient's 2-norm")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls at N = 510 and 2,000 (median)")
    parser.add_argument("--repeats-big", type=int, default=3, help="timed calls at N = 20,000 (median)")
    parser.add_argument("--maxiter", type=int, default=1000, help="scipy trust-region iterations per phase")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per scipy phase before giving up")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    # scipy's vector work runs in numpy's OpenBLAS, which otherwise starts a thread per core (on this 2-core
    # machine trust-ncg then took 2x the CPU time and no less wall time): hold it to the same thread count.
    threadpool_limits(limits=opts.threads)
    import scipy

    started = time.perf_counter()
    print(f"torch {torch.__version__}, scipy {scipy.__version__}, float64 CPU, {opts.threads} torch thread(s), "
          f"scipy gtol {opts.gtol:g} (2-norm), ours tol {TOL:g} (max entry)")
    rows_full, rows_phase = [], []
    for size in SIZES[:1] if opts.quick else SIZES:
        full, phase = run_size(*size, opts)
        rows_full.append(full)
        rows_phase.append(phase)
    table(rows_full, rows_phase)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
