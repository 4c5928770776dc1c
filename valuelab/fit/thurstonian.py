"""Random-utility models for paired comparisons, fitted by batched truncated Newton (Newton-CG) in float64.

Models (``model=``):

- ``"thurstonian"`` (Thurstone Case III, as in Mazeika et al. 2025 "Utility Engineering"): item i has
  utility U_i ~ N(mu_i, sigma_i^2), so P(a > b) = Phi((mu_a - mu_b) / sqrt(sigma_a^2 + sigma_b^2)).
- ``"case5"`` (Thurstone Case V): the same with one shared variance, so the fit is a convex probit GLM.
- ``"bradley-terry"``: P(a > b) = sigmoid(theta_a - theta_b), i.e. utilities with i.i.d. Gumbel noise of
  variance pi^2/6, which is what ``variance_`` reports for it (before rescaling).

Fitting maximises the likelihood of aggregated soft counts (wins_a, wins_b per pair, fractional allowed)
plus weak Gaussian priors: mu ~ N(0, mu_prior_sd^2) (fixes the location and keeps an item that always wins
finite) and log sigma^2 ~ N(0, logvar_prior_sd^2) (fixes the scale of the Case III model, which the
likelihood only identifies up to an affine map). Unlike the reference's 1000 Adam steps on a mean
cross-entropy, the objective is the count-weighted log-likelihood and the optimiser runs to convergence.
The Case III objective is not convex: different starts can end in local optima a few log-likelihood
units apart, which is why the fit always starts from the (unique) Case V optimum.

Outputs follow the reference normalisation (emergent-values §3.1): means have mean 0 and unbiased sd 1
over items, and variances are divided by the same sd^2 so that predicted probabilities are unchanged.

Many fits over the same items and edges (bootstrap replicates, several respondents or templates) share
one batched problem: parameters are (B, P), per-replicate counts are (B, m), and the summed objective
is separable, so one Newton-CG run on the device solves them all (per-replicate step sizes and stopping).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from valuelab.devices import torch_device
from valuelab.fit.families import FAMILIES
from valuelab.fit.io import DATAFRAME, Comparisons, check_connected, to_comparisons

BT_VARIANCE = math.pi ** 2 / 6


@dataclass
class BatchFit:
    """B fits over the same items: normalised means and variances (B, n) and data log-likelihoods (B,)."""

    mean: np.ndarray
    variance: np.ndarray
    log_likelihood: np.ndarray
    n_iter: int
    converged: bool


def _log_probs(mu: torch.Tensor, logvar: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor,
               model: str) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(a wins) and log P(b wins) per edge, computed stably in log space."""
    diff = mu[..., a] - mu[..., b]
    if model == "bradley-terry":
        return torch.nn.functional.logsigmoid(diff), torch.nn.functional.logsigmoid(-diff)
    if model == "case5":
        z = diff / math.sqrt(2.0)
    else:
        z = diff * torch.rsqrt(torch.exp(logvar[..., a]) + torch.exp(logvar[..., b]))
    return torch.special.log_ndtr(z), torch.special.log_ndtr(-z)


def _edge_columns(ta: torch.Tensor, tb: torch.Tensor, n_items: int, model: str) -> torch.Tensor:
    """Parameter indices each edge reads, stacked: mu_a, mu_b and for Case III logvar_a, logvar_b."""
    ends = [ta, tb, ta + n_items, tb + n_items]
    return torch.cat(ends if model == "thurstonian" else ends[:2])


def _sum_over_edges(shape: torch.Size | tuple[int, int], cols: torch.Tensor, mu: torch.Tensor,
                    *rest: torch.Tensor) -> torch.Tensor:
    """Sum per-edge values (B, m) into parameters (B, P) along ``cols`` (``_edge_columns``): ``mu`` counts for
    mu_a and with its sign flipped for mu_b (it is a derivative in mu_a - mu_b), ``rest`` for the log-variances."""
    out = torch.zeros(shape, dtype=mu.dtype, device=mu.device)
    return out.index_add_(1, cols, torch.cat((mu, -mu, *rest), 1))


def _check_model(model: str) -> None:
    if model not in FAMILIES:
        raise ValueError(f"unknown family {model!r}; choose one of {', '.join(FAMILIES)}")


INV_SQRT2 = 1 / math.sqrt(2.0)
MAX_STEP = 2.0  # largest move of one parameter per Newton step (tried 1, 2, 4, none: 2 needs fewest passes)
MAX_CG = 50  # CG iterations per Newton step
CASE5_TOL = 1e-5  # gradient tolerance of the Case V warm start (1e-4 and 1e-6 both made the whole fit slower)
FORCING = 10.0  # CG stops at relative residual min(0.5, FORCING * sqrt(max |gradient|)): loose far away, exact near
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_ndtr_pair(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log Phi(z), log Phi(-z)) from one erfc call: 3-5x faster than two ``torch.special.log_ndtr`` calls,
    which matters because the fit is dominated by elementwise work on the edges."""
    u = z.abs()
    tail = 0.5 * torch.special.erfc(u * INV_SQRT2)  # Phi(-|z|)
    log_tail = torch.log(tail)
    far = tail < 1e-280  # erfc underflows near |z| = 37: fall back to the exact routine there only
    if bool(far.any()):
        log_tail = log_tail.masked_scatter(far, torch.special.log_ndtr(-u[far]))
    log_head = torch.log1p(-tail)
    pos = z >= 0
    return torch.where(pos, log_head, log_tail), torch.where(pos, log_tail, log_head)


class _Curvature:
    """Negative log-likelihood of every edge at one point, with what Newton-CG needs from it: the gradient,
    Hessian-vector products and a block-diagonal preconditioner, all as gathers and scatters over edges.

    An edge's loss depends on its parameters only through z (the standardised difference), so its Hessian
    is h J J^T + g d2z (h, g: derivatives of the loss in z). In the edge's own coordinates (mu_a - mu_b,
    logvar_a, logvar_b) that is a symmetric 3x3 matrix ``m``, computed once per point; over all edges the
    Hessian is a weighted graph Laplacian in the means plus the log-variance terms, assembled as a sparse
    matrix by ``_HessianPattern``.
    """

    def __init__(self, x: torch.Tensor, n_items: int, cols: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor,
                 model: str) -> None:
        self.shape, self.cols, self.model = x.shape, cols, model
        n_batch, m = wa.shape
        k = 4 if model == "thurstonian" else 2
        xe = x.index_select(1, cols).view(n_batch, k, m)
        diff = xe[:, 0] - xe[:, 1]
        if model == "bradley-terry":
            p = torch.sigmoid(diff)
            self.nll = -(wa * torch.nn.functional.logsigmoid(diff) + wb * torch.nn.functional.logsigmoid(-diff))
            g, h = (wa + wb) * p - wa, (wa + wb) * p * (1 - p)
            self.jac, self.m = (torch.ones_like(diff),), (h,)
            self.g = g
            return
        if model == "case5":
            r = torch.full_like(diff, INV_SQRT2)
        else:
            va, vb = torch.exp(xe[:, 2]), torch.exp(xe[:, 3])
            r = torch.rsqrt(va + vb)
            pa = va * r * r
            pb = 1 - pa
        z = diff * r
        log_pa, log_pb = _log_ndtr_pair(z)
        self.nll = -(wa * log_pa + wb * log_pb)
        log_phi = -0.5 * z * z - LOG_SQRT_2PI
        lam_a, lam_b = torch.exp(log_phi - log_pa), torch.exp(log_phi - log_pb)
        g = wb * lam_b - wa * lam_a
        h = wa * lam_a * (z + lam_a) + wb * lam_b * (lam_b - z)
        self.g = g
        if model == "case5":
            self.jac, self.m = (r,), (h * r * r,)
            return
        # dz / d(mu_a - mu_b, logvar_a, logvar_b), and the second derivatives of z that are not zero.
        ja, jb = -0.5 * z * pa, -0.5 * z * pb
        c_a, c_b = 0.5 * r * pa, 0.5 * r * pb
        d_aa, d_bb = z * pa * (0.25 * pa - 0.5 * pb), z * pb * (0.25 * pb - 0.5 * pa)
        hr = h * r
        self.jac = (r, ja, jb)
        self.m = (hr * r, hr * ja - g * c_a, hr * jb - g * c_b,
                  h * ja * ja + g * d_aa, h * ja * jb + 0.75 * g * z * pa * pb, h * jb * jb + g * d_bb)
        self.gn = (hr * r, h * ja * ja, h * jb * jb, hr * ja, hr * jb)

    def grad(self) -> torch.Tensor:
        return _sum_over_edges(self.shape, self.cols, *(self.g * j for j in self.jac))

    def edge_blocks(self) -> torch.Tensor:
        """Each edge's Hessian in the coordinates of its own parameters (mu_a, mu_b[, logvar_a, logvar_b]),
        flattened row by row: (B, k*k, m), the layout ``_HessianPattern`` sums into a sparse matrix."""
        if self.model != "thurstonian":
            h = self.m[0]
            return torch.stack((h, -h, -h, h), 1)
        m_dd, m_da, m_db, m_aa, m_ab, m_bb = self.m
        return torch.stack((m_dd, -m_dd, m_da, m_db,
                            -m_dd, m_dd, -m_da, -m_db,
                            m_da, -m_da, m_aa, m_ab,
                            m_db, -m_db, m_ab, m_bb), 1)

    def preconditioner(self, prior: torch.Tensor, scale: torch.Tensor,
                       diagonal: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """Inverse of the block diagonal of the (scaled) Hessian plus prior: for the one-parameter models
        its ``diagonal``; for Case III a 2x2 Gauss-Newton block (mu_i, logvar_i) per item, because for an
        item that wins or loses almost everything a higher mean and a lower variance do nearly the same thing."""
        n_batch, n_par = self.shape
        if self.model != "thurstonian":
            return lambda r: r / diagonal
        n = n_par // 2
        cols = torch.cat([self.cols, self.cols[: self.cols.numel() // 2] + 2 * n])
        mm, laa, lbb, mla, mlb = self.gn
        blocks = torch.zeros(n_batch, 3 * n, dtype=mm.dtype, device=mm.device).index_add_(
            1, cols, torch.cat((mm, mm, laa, lbb, mla, -mlb), 1))
        blocks = (blocks + torch.cat((prior, torch.zeros_like(prior[:n])))) * scale[:, None]
        d_mm, d_ll, d_ml = blocks[:, :n], blocks[:, n:2 * n], blocks[:, 2 * n:]
        det = d_mm * d_ll - d_ml * d_ml
        inv_mm, inv_ll, inv_ml = d_ll / det, d_mm / det, -d_ml / det

        def apply(r: torch.Tensor) -> torch.Tensor:
            rm, rl = r[:, :n], r[:, n:]
            return torch.cat([inv_mm * rm + inv_ml * rl, inv_ml * rm + inv_ll * rl], 1)

        return apply


def _pcg(hvp: Callable[[torch.Tensor], torch.Tensor], grad: torch.Tensor,
         precond: Callable[[torch.Tensor], torch.Tensor], rtol: torch.Tensor,
         max_iter: int, radius: float = math.inf) -> tuple[torch.Tensor, int]:
    """Batched preconditioned CG for H p = -grad, stopped per replicate at residual rtol * |grad|, at the
    first direction of non-positive curvature, or where p would leave the box max|p_i| <= radius, in which
    case p stops on the box's face (Steihaug 1983, with an infinity-norm trust region). CG's early iterates
    move the well-curved directions first, so a step cut short there still makes progress everywhere."""
    p = torch.zeros_like(grad)
    r = -grad
    zr = precond(r)
    d = zr
    rz = (r * zr).sum(1)
    target = rtol * grad.norm(dim=1)
    live = r.norm(dim=1) > target
    for it in range(1, max_iter + 1):
        hd = hvp(d)
        curv = (d * hd).sum(1)
        bad = curv <= 0
        if bool((bad & live).any()):
            first = bad & live & (it == 1)
            # At the first iteration d is the preconditioned steepest descent direction: take it, inside the box.
            fallback = d * (radius / d.abs().amax(1, keepdim=True)).clamp(max=1.0)
            p = torch.where(first[:, None], fallback, p)
            live = live & ~bad
        alpha = torch.where(live, rz / torch.where(bad, 1.0, curv), 0.0)
        p_new = p + alpha[:, None] * d
        out = live & (p_new.abs().amax(1) > radius)
        if bool(out.any()):
            # Largest tau with |p_i + tau d_i| <= radius for every i (p is inside, so tau >= 0).
            reach = (radius * torch.sign(d) - p) / torch.where(d == 0, 1.0, d)
            tau = torch.where(d == 0, math.inf, reach).amin(1)
            p_new = torch.where(out[:, None], p + tau[:, None] * d, p_new)
            live = live & ~out
        p = p_new
        r = r - alpha[:, None] * hd
        live = live & (r.norm(dim=1) > target)
        if not bool(live.any()):
            return p, it
        zr = precond(r)
        rz_new = (r * zr).sum(1)
        d = zr + (rz_new / rz)[:, None] * d
        rz = rz_new
    return p, max_iter


def _near_null_modes(x: torch.Tensor, n_items: int, model: str) -> list[torch.Tensor]:
    """Directions the likelihood (nearly) ignores, where only the weak priors curve the objective: shifting
    every mean, and for Case III rescaling (mu -> c mu, sigma^2 -> c^2 sigma^2)."""
    shift = torch.zeros_like(x)
    shift[:, :n_items] = 1.0
    if model != "thurstonian":
        return [shift]
    scale = torch.zeros_like(x)
    scale[:, :n_items] = x[:, :n_items]
    scale[:, n_items:] = 2.0
    return [shift, scale]


def _with_coarse_space(precond: Callable[[torch.Tensor], torch.Tensor], hvp: Callable[[torch.Tensor], torch.Tensor],
                       modes: list[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Two-level preconditioner: the block-Jacobi one plus an exact solve on the near-null modes, which
    block Jacobi cannot see (each block is local) and which otherwise cost CG many iterations."""
    z = torch.stack(modes, 2)  # (B, P, k)
    gram = z.transpose(1, 2) @ torch.stack([hvp(v) for v in modes], 2)
    gram = 0.5 * (gram + gram.transpose(1, 2))
    # Case III curvature can be indefinite far from the optimum: a replicate whose coarse matrix is not
    # positive definite keeps block Jacobi alone, so the preconditioner stays positive definite.
    usable = torch.linalg.eigvalsh(gram).amin(1) > 0
    coarse = torch.linalg.inv_ex(gram)[0] * usable[:, None, None]  # (B, k, k)

    def apply(r: torch.Tensor) -> torch.Tensor:
        return precond(r) + (z @ (coarse @ (z.transpose(1, 2) @ r[:, :, None])))[:, :, 0]

    return apply


class _ItemGraph:
    """Sparsity of the item-by-item Hessian: the diagonal plus both directions of every compared pair,
    in CSR order. Worked out once per fit (one sort of 4m + n keys) and shared by the least-squares start,
    the Case V phase and the Case III phase, whose parameter Hessians it expands into."""

    def __init__(self, ta: torch.Tensor, tb: torch.Tensor, n_items: int) -> None:
        diag = torch.arange(n_items, device=ta.device) * (n_items + 1)
        # Entry keys of (a,a), (a,b), (b,a), (b,b) per edge, then the diagonal (where the prior goes).
        keys = torch.cat(((ta * (n_items + 1)), ta * n_items + tb, tb * n_items + ta, tb * (n_items + 1), diag))
        unique, entry = torch.unique(keys, return_inverse=True)
        self.edge_entry, self.diag_entry = entry[:-n_items].view(4, -1), entry[-n_items:]
        self.row, self.col = unique // n_items, unique % n_items
        self.degree = torch.bincount(self.row, minlength=n_items)  # entries per row, diagonal included
        self.row_start = torch.cumsum(self.degree, 0) - self.degree
        self.ta, self.tb, self.n_items, self.nnz = ta, tb, n_items, unique.numel()
        self._patterns: dict[tuple[int, int], _HessianPattern] = {}

    def pattern(self, per_item: int, n_batch: int) -> _HessianPattern:
        """The parameter Hessian's pattern for ``per_item`` parameters per item, built once per fit."""
        if (per_item, n_batch) not in self._patterns:
            self._patterns[per_item, n_batch] = _HessianPattern(self, per_item, n_batch)
        return self._patterns[per_item, n_batch]


class _HessianPattern:
    """The Hessian's sparsity is fixed by the comparison graph, so the map from per-edge blocks to the
    entries of one block-diagonal CSR matrix (a block per replicate) is worked out once per fit from the
    shared ``_ItemGraph``; each Newton step then assembles the matrix with one index_add, and a
    Hessian-vector product is one sparse matrix-vector product instead of a dozen gathers, scatters and
    elementwise passes over the edges. With ``per_item`` parameters per item (1: means; 2: means and
    log-variances, stored as [all means, all log-variances]) every item entry becomes a per_item^2 block."""

    def __init__(self, graph: _ItemGraph, per_item: int, n_batch: int) -> None:
        n, nnz, dev = graph.n_items, graph.nnz, graph.row.device
        n_par = per_item * n
        # Rows of kind s (0: means, 1: log-variances) start after s * per_item * nnz values; within the row
        # of item i, the columns of kind t start t * degree[i] after the row's start per_item * row_start[i].
        row_start, row_degree = graph.row_start[graph.row], graph.degree[graph.row]
        base = per_item * row_start + (torch.arange(nnz, device=dev) - row_start)
        col = torch.empty(per_item * per_item * nnz, dtype=torch.long, device=dev)
        for s in range(per_item):
            for t in range(per_item):
                col[s * per_item * nnz + t * row_degree + base] = graph.col + t * n
        # Edge blocks are laid out row by row over (kind 0 of a, of b, kind 1 of a, of b, ...), see
        # edge_blocks: row r is side r % 2 of kind r // 2, and edge_entry holds (a,a), (a,b), (b,a), (b,b).
        k, degree = 2 * per_item, (graph.degree[graph.ta], graph.degree[graph.tb])
        edge_base = base[graph.edge_entry]
        self.slot = torch.cat([(r // 2) * per_item * nnz + (c // 2) * degree[r % 2] + edge_base[2 * (r % 2) + c % 2]
                               for r in range(k) for c in range(k)])
        self.diag_slot = torch.cat([s * per_item * nnz + s * graph.degree + base[graph.diag_entry]
                                    for s in range(per_item)])
        row_lengths = (per_item * graph.degree).repeat(per_item * n_batch)
        self.crow = torch.cat((torch.zeros(1, dtype=torch.long, device=dev), row_lengths.cumsum(0)))
        self.col = (col[None, :] + torch.arange(n_batch, device=dev)[:, None] * n_par).reshape(-1)
        self.nnz, self.shape = col.numel(), (n_batch, n_par)

    def assemble(self, blocks: torch.Tensor, prior: torch.Tensor,
                 scale: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
        """The product v -> A v and the diagonal of A = scale * (H + diag(prior)) for every replicate, H
        summed from per-edge ``blocks`` (B, k*k, m) as laid out by ``_Curvature.edge_blocks``."""
        n_batch, n_par = self.shape
        values = torch.zeros(n_batch, self.nnz, dtype=blocks.dtype, device=blocks.device)
        values.index_add_(1, self.slot, blocks.reshape(n_batch, -1))
        values[:, self.diag_slot] += prior
        values *= scale[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            matrix = torch.sparse_csr_tensor(self.crow, self.col, values.reshape(-1),
                                             (n_batch * n_par, n_batch * n_par))
        return (lambda v: (matrix @ v.reshape(-1)).view(n_batch, n_par)), values[:, self.diag_slot]


def _newton_cg(x: torch.Tensor, graph: _ItemGraph, wa: torch.Tensor, wb: torch.Tensor, model: str,
               prior: torch.Tensor, tol: float, max_iter: int) -> tuple[torch.Tensor, int]:
    """Truncated Newton: inexact Newton steps from preconditioned CG on Hessian-vector products, with a
    forcing term that tightens as the gradient shrinks (Eisenstat & Walker 1996) and Armijo backtracking.
    Each step costs a few passes over the edges, so it scales like L-BFGS but needs far fewer steps."""
    n_items = graph.n_items
    cols = _edge_columns(graph.ta, graph.tb, n_items, model)
    scale = 1.0 / (wa.sum(1) + wb.sum(1)).clamp_min(1.0)
    pattern = graph.pattern(2 if model == "thurstonian" else 1, x.shape[0])

    def evaluate(x: torch.Tensor) -> tuple[_Curvature, torch.Tensor]:
        terms = _Curvature(x, n_items, cols, wa, wb, model)
        return terms, scale * (terms.nll.sum(1) + 0.5 * (prior * x * x).sum(1))

    terms, value = evaluate(x)
    for it in range(1, max_iter + 1):
        grad = (terms.grad() + prior * x) * scale[:, None]
        gmax = grad.abs().amax(1)
        active = gmax > tol
        if not bool(active.any()):
            return x, it - 1
        hvp, diagonal = pattern.assemble(terms.edge_blocks(), prior, scale)
        precond = _with_coarse_space(terms.preconditioner(prior, scale, diagonal), hvp,
                                     _near_null_modes(x, n_items, model))
        # Bound each coordinate's move: the prior alone curves the parameters of an item that wins (or loses)
        # everything, so an unsafeguarded step there is huge and the line search then crawls.
        step, _ = _pcg(hvp, grad, precond, (FORCING * gmax.sqrt()).clamp(max=0.5), MAX_CG, MAX_STEP)
        step = step * active[:, None]
        slope = (grad * step).sum(1)
        alpha = torch.ones_like(value)
        for _ in range(40):
            trial_terms, trial = evaluate(x + alpha[:, None] * step)
            short = trial > value + 1e-4 * alpha * slope
            if not bool(short.any()):
                break
            alpha = torch.where(short, 0.5 * alpha, alpha)
        else:
            return x, it  # no decrease possible at machine precision
        x, terms, value = x + alpha[:, None] * step, trial_terms, trial
    return x, max_iter


def _lbfgs(x: torch.Tensor, graph: _ItemGraph, wa: torch.Tensor, wb: torch.Tensor, model: str,
           prior: torch.Tensor, tol: float, max_iter: int, history_size: int = 50) -> tuple[torch.Tensor, int]:
    """Minimise the summed negative log-posterior of all replicates from ``x`` with autograd L-BFGS."""
    n_items, ta, tb = graph.n_items, graph.ta, graph.tb
    # Each replicate's objective is divided by its own total count, so one gradient tolerance fits all sizes.
    scale = 1.0 / (wa.sum(1) + wb.sum(1)).clamp_min(1.0)
    x = x.clone().requires_grad_(True)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logvar = x[:, n_items:] if model == "thurstonian" else None
        log_pa, log_pb = _log_probs(x[:, :n_items], logvar, ta, tb, model)
        nll = -(wa * log_pa + wb * log_pb).sum(1) + 0.5 * (prior * x * x).sum(1)
        loss = (nll * scale).sum()
        loss.backward()
        return loss

    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=tol,
                            tolerance_change=1e-15, history_size=history_size, line_search_fn="strong_wolfe")
    opt.step(closure)
    return x.detach(), int(opt.state[x]["n_iter"])


def _least_squares_start(graph: _ItemGraph, wa: torch.Tensor, wb: torch.Tensor, model: str,
                         prior: torch.Tensor) -> torch.Tensor:
    """Means from Thurstone's least-squares method (Mosteller 1951): each pair's smoothed win share is
    mapped through the inverse link to a utility difference, and the differences are reconciled by a
    weighted least-squares (graph Laplacian) solve, weighted by each pair's Fisher information at that
    share. One linear solve puts items that win or lose nearly everything near their final place, which
    Newton steps from zero approach only slowly (the likelihood's tail is nearly flat there)."""
    n = wa + wb
    share = (wa + 0.5) / (n + 1.0)
    if model == "bradley-terry":
        diff = torch.logit(share)
        weight = n * share * (1 - share)
    else:
        z = torch.special.ndtri(share)
        diff = z / INV_SQRT2
        weight = n * 0.5 * torch.exp(-z * z) / (2 * math.pi) / (share * (1 - share))
    rhs = _sum_over_edges((wa.shape[0], graph.n_items), torch.cat((graph.ta, graph.tb)), weight * diff)
    one = torch.ones(wa.shape[0], dtype=wa.dtype, device=wa.device)
    laplacian, diagonal = graph.pattern(1, wa.shape[0]).assemble(
        torch.stack((weight, -weight, -weight, weight), 1), prior, one)
    precond = _with_coarse_space(lambda r: r / diagonal, laplacian, [torch.ones_like(rhs)])
    mu, _ = _pcg(laplacian, -rhs, precond, torch.full_like(one, 1e-3), MAX_CG)
    return mu


def fit_batch(n_items: int, a: np.ndarray, b: np.ndarray, wins_a: np.ndarray, wins_b: np.ndarray, *,
              model: str = "thurstonian", device: str | torch.device = "cpu", mu_prior_sd: float = 10.0,
              logvar_prior_sd: float = 2.0, tol: float | None = None, max_iter: int = 3000,
              method: str = "newton-cg") -> BatchFit:
    """Fit B independent problems that share items and edges; counts are (m,) or (B, m).

    ``method="newton-cg"`` (truncated Newton on Hessian-vector products) or ``"lbfgs"`` (autograd, kept as
    an independent cross-check). ``tol`` bounds the largest gradient entry of the per-comparison objective
    (default 1e-9 for Newton-CG, 1e-7 for L-BFGS, whose line search stalls below that). The Thurstonian
    fit starts from the Case V optimum, which is convex and so cheap and safe to reach.
    """
    _check_model(model)
    if method not in ("newton-cg", "lbfgs"):
        raise ValueError(f"unknown method {method!r}; choose newton-cg or lbfgs")
    dev = torch_device(device)
    f64 = torch.float64
    ta = torch.as_tensor(a, dtype=torch.long, device=dev)
    tb = torch.as_tensor(b, dtype=torch.long, device=dev)
    wa = torch.as_tensor(np.atleast_2d(wins_a), dtype=f64, device=dev)
    wb = torch.as_tensor(np.atleast_2d(wins_b), dtype=f64, device=dev)
    n_batch = wa.shape[0]
    n_par = 2 * n_items if model == "thurstonian" else n_items
    if tol is None:
        tol = 1e-9 if method == "newton-cg" else 1e-7
    prior = torch.full((n_par,), 1.0 / mu_prior_sd ** 2, dtype=f64, device=dev)
    prior[n_items:] = 1.0 / logvar_prior_sd ** 2
    x = torch.zeros(n_batch, n_par, dtype=f64, device=dev)
    graph = _ItemGraph(ta, tb, n_items)
    solve = _newton_cg if method == "newton-cg" else _lbfgs
    x[:, :n_items] = _least_squares_start(graph, wa, wb, model, prior[:n_items])
    n_iter = 0
    if model == "thurstonian":
        x[:, :n_items], n_iter = solve(x[:, :n_items], graph, wa, wb, "case5", prior[:n_items],
                                       max(tol, CASE5_TOL), max_iter)
    x, more = solve(x, graph, wa, wb, model, prior, tol, max_iter)
    n_iter += more
    loglik = -_Curvature(x, n_items, _edge_columns(ta, tb, n_items, model), wa, wb, model).nll.sum(1)
    mu = x[:, :n_items]
    if model == "thurstonian":
        raw_var = torch.exp(x[:, n_items:])
    else:
        raw_var = torch.full_like(mu, 1.0 if model == "case5" else BT_VARIANCE)
    centre, sd = mu.mean(1, keepdim=True), mu.std(1, keepdim=True).clamp_min(1e-12)
    mean, variance = (mu - centre) / sd, raw_var / sd ** 2
    return BatchFit(mean.cpu().numpy(), variance.cpu().numpy(), loglik.cpu().numpy(), n_iter,
                    more < max_iter)


def predict_proba(mean: np.ndarray, variance: np.ndarray, a: np.ndarray, b: np.ndarray,
                  model: str = "thurstonian") -> np.ndarray:
    """P(a beats b) from normalised means and variances (works for every model, see module docstring)."""
    from scipy.special import expit, ndtr

    diff = mean[..., a] - mean[..., b]
    spread = variance[..., a] + variance[..., b]
    if model == "bradley-terry":
        # Variances are pi^2/6 / sd^2, so pi / sqrt(3 * spread) recovers the logistic scale sd.
        return expit(diff * math.pi / np.sqrt(3.0 * spread))
    return ndtr(diff / np.sqrt(spread))


@dataclass
class ThurstonianModel:
    """Estimator: ``ThurstonianModel(model=...).fit(prefs)`` sets ``items_``, ``mean_``, ``variance_``."""

    model: str = "thurstonian"
    device: str = "cpu"
    mu_prior_sd: float = 10.0
    logvar_prior_sd: float = 2.0
    tol: float | None = None
    max_iter: int = 3000
    method: str = "newton-cg"
    items_: tuple[str, ...] = field(default=(), init=False)
    mean_: np.ndarray = field(default=None, init=False, repr=False)
    variance_: np.ndarray = field(default=None, init=False, repr=False)
    log_likelihood_: float = field(default=float("nan"), init=False)
    n_iter_: int = field(default=0, init=False)
    converged_: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        _check_model(self.model)

    def fit(self, prefs: pd.DataFrame | Comparisons, allow_disconnected: bool = False) -> ThurstonianModel:
        """Fit to a preference frame (validated) or to ``Comparisons``. A disconnected graph is refused
        unless allowed; then only the prior ties the components' locations together (active learning
        tolerates that in early rounds)."""
        comp = prefs if isinstance(prefs, Comparisons) else to_comparisons(prefs, DATAFRAME)
        if not allow_disconnected:
            check_connected(comp)
        res = fit_batch(comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b, **self.fit_options())
        self.items_ = comp.items
        self.mean_, self.variance_ = res.mean[0], res.variance[0]
        self.log_likelihood_, self.n_iter_, self.converged_ = float(res.log_likelihood[0]), res.n_iter, \
            res.converged
        return self

    def fit_options(self) -> dict:
        return {"model": self.model, "device": self.device, "mu_prior_sd": self.mu_prior_sd,
                "logvar_prior_sd": self.logvar_prior_sd, "tol": self.tol, "max_iter": self.max_iter,
                "method": self.method}

    def predict_proba(self, item_a: np.ndarray, item_b: np.ndarray) -> np.ndarray:
        """P(item_a beats item_b) for arrays of item indices."""
        return predict_proba(self.mean_, self.variance_, np.asarray(item_a), np.asarray(item_b), self.model)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"item": list(self.items_), "mean": self.mean_, "variance": self.variance_})
