"""Random-utility models for paired comparisons, fitted by batched full-batch L-BFGS in float64.

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

Outputs follow the reference normalisation (emergent-values §3.1): means have mean 0 and unbiased sd 1
over items, and variances are divided by the same sd^2 so that predicted probabilities are unchanged.

Many fits over the same items and edges (bootstrap replicates, several respondents or templates) share
one batched problem: parameters are (B, P), per-replicate counts are (B, m), and the summed objective
is separable, so one L-BFGS run on the device solves them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from valuelab.fit.io import DATAFRAME, Comparisons, check_connected, to_comparisons

MODELS = ("thurstonian", "case5", "bradley-terry")
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


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


def _edge_terms(x: torch.Tensor, n_items: int, ta: torch.Tensor, tb: torch.Tensor, wa: torch.Tensor,
                wb: torch.Tensor, model: str) -> tuple[torch.Tensor, ...]:
    """Per-edge negative log-likelihood (B, m), and its gradient (B, m, k) and Hessian (B, m, k, k) with
    respect to the edge's k parameters [mu_a, mu_b(, logvar_a, logvar_b)], derived by hand (the loss is
    convex in the standardised difference z; the Case III curvature adds the term g * d2z)."""
    mu = x[:, :n_items]
    diff = mu[:, ta] - mu[:, tb]
    if model == "bradley-terry":
        nll = -(wa * torch.nn.functional.logsigmoid(diff) + wb * torch.nn.functional.logsigmoid(-diff))
        p = torch.sigmoid(diff)
        g, h = (wa + wb) * p - wa, (wa + wb) * p * (1 - p)
        one = torch.ones_like(diff)
        jac = torch.stack([one, -one], -1)
        return nll, g[..., None] * jac, h[..., None, None] * jac[..., :, None] * jac[..., None, :], diff
    if model == "case5":
        r = torch.full_like(diff, 1 / math.sqrt(2.0))
    else:
        va, vb = torch.exp(x[:, n_items:][:, ta]), torch.exp(x[:, n_items:][:, tb])
        r = torch.rsqrt(va + vb)
        pa, pb = va * r * r, vb * r * r
    z = diff * r
    log_pa, log_pb = torch.special.log_ndtr(z), torch.special.log_ndtr(-z)
    nll = -(wa * log_pa + wb * log_pb)
    log_phi = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
    lam_a, lam_b = torch.exp(log_phi - log_pa), torch.exp(log_phi - log_pb)
    g = wb * lam_b - wa * lam_a
    h = wa * lam_a * (z + lam_a) + wb * lam_b * (lam_b - z)
    if model == "case5":
        jac = torch.stack([r, -r], -1)
        return nll, g[..., None] * jac, h[..., None, None] * jac[..., :, None] * jac[..., None, :], diff
    jac = torch.stack([r, -r, -0.5 * z * pa, -0.5 * z * pb], -1)
    zero = torch.zeros_like(z)
    c_a, c_b = 0.5 * r * pa, 0.5 * r * pb
    d_aa, d_bb, d_ab = z * pa * (0.25 * pa - 0.5 * pb), z * pb * (0.25 * pb - 0.5 * pa), 0.75 * z * pa * pb
    d2z = torch.stack([
        torch.stack([zero, zero, -c_a, -c_b], -1),
        torch.stack([zero, zero, c_a, c_b], -1),
        torch.stack([-c_a, c_a, d_aa, d_ab], -1),
        torch.stack([-c_b, c_b, d_ab, d_bb], -1)], -2)
    hess = h[..., None, None] * jac[..., :, None] * jac[..., None, :] + g[..., None, None] * d2z
    return nll, g[..., None] * jac, hess, diff


def _newton(x: torch.Tensor, n_items: int, ta: torch.Tensor, tb: torch.Tensor, wa: torch.Tensor,
            wb: torch.Tensor, model: str, mu_prec: float, lv_prec: float, tol: float,
            max_iter: int) -> tuple[torch.Tensor, int]:
    """Damped Newton with a dense (B, P, P) Hessian: a few iterations where L-BFGS needs hundreds.

    The Case III objective is not convex, so the Hessian gets Levenberg damping until its Cholesky
    factorisation succeeds, and each step is backtracked until the objective decreases.
    """
    n_batch, n_par = x.shape
    k = 4 if model == "thurstonian" else 2
    cols = [ta, tb, ta + n_items, tb + n_items][:k]
    idx = torch.stack(cols, -1)  # (m, k)
    flat = (idx[:, :, None] * n_par + idx[:, None, :]).reshape(-1)
    prior = torch.full((n_par,), mu_prec, dtype=x.dtype, device=x.device)
    prior[n_items:] = lv_prec
    scale = (1.0 / (wa.sum(1) + wb.sum(1)).clamp_min(1.0))[:, None]
    eye = torch.eye(n_par, dtype=x.dtype, device=x.device)

    def objective(x: torch.Tensor) -> torch.Tensor:
        nll = _edge_terms(x, n_items, ta, tb, wa, wb, model)[0].sum(1)
        return scale[:, 0] * (nll + 0.5 * (prior * x * x).sum(1))

    damping = torch.zeros(n_batch, dtype=x.dtype, device=x.device)
    value = objective(x)
    for it in range(1, max_iter + 1):
        _, g_e, h_e, _ = _edge_terms(x, n_items, ta, tb, wa, wb, model)
        grad = (prior * x).index_add(1, idx.reshape(-1), g_e.reshape(n_batch, -1)) * scale
        active = grad.abs().amax(1) > tol  # converged replicates stay put
        if not bool(active.any()):
            return x, it - 1
        hess = torch.zeros(n_batch, n_par * n_par, dtype=x.dtype, device=x.device)
        hess.index_add_(1, flat, h_e.reshape(n_batch, -1))
        hess = (hess.view(n_batch, n_par, n_par) + torch.diag(prior)) * scale[:, :, None]
        damping = damping * 0.1
        while True:
            chol, info = torch.linalg.cholesky_ex(hess + damping[:, None, None] * eye)
            bad = info > 0
            if not bool(bad.any()):
                break
            damping = torch.where(bad, torch.clamp(damping * 10, min=1e-8), damping)
        step = -torch.cholesky_solve(grad[..., None], chol)[..., 0] * active[:, None]
        alpha = torch.ones(n_batch, dtype=x.dtype, device=x.device)
        for _ in range(40):
            trial = x + alpha[:, None] * step
            new = objective(trial)
            worse = new > value + 1e-14 * value.abs()
            if not bool(worse.any()):
                break
            alpha = torch.where(worse, alpha * 0.5, alpha)
        x, value = trial, torch.minimum(new, value)
    return x, max_iter


def _lbfgs(x: torch.Tensor, n_items: int, ta: torch.Tensor, tb: torch.Tensor, wa: torch.Tensor,
           wb: torch.Tensor, model: str, mu_prec: float, lv_prec: float, tol: float, max_iter: int,
           history_size: int = 50) -> tuple[torch.Tensor, int]:
    """Minimise the summed negative log-posterior of all replicates from ``x`` with L-BFGS (for problems
    whose dense Hessian would not fit in memory)."""
    # Each replicate's objective is divided by its own total count, so one gradient tolerance fits all sizes.
    scale = 1.0 / (wa.sum(1) + wb.sum(1)).clamp_min(1.0)
    x = x.clone().requires_grad_(True)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        mu = x[:, :n_items]
        logvar = x[:, n_items:] if model == "thurstonian" else None
        log_pa, log_pb = _log_probs(mu, logvar, ta, tb, model)
        nll = -(wa * log_pa + wb * log_pb).sum(1) + 0.5 * mu_prec * (mu * mu).sum(1)
        if logvar is not None:
            nll = nll + 0.5 * lv_prec * (logvar * logvar).sum(1)
        loss = (nll * scale).sum()
        loss.backward()
        return loss

    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=tol,
                            tolerance_change=1e-15, history_size=history_size, line_search_fn="strong_wolfe")
    opt.step(closure)
    return x.detach(), int(opt.state[x]["n_iter"])


def fit_batch(n_items: int, a: np.ndarray, b: np.ndarray, wins_a: np.ndarray, wins_b: np.ndarray, *,
              model: str = "thurstonian", device: str | torch.device = "cpu", mu_prior_sd: float = 10.0,
              logvar_prior_sd: float = 2.0, tol: float | None = None, max_iter: int = 3000,
              method: str = "auto", dense_limit: int = 2_000_000) -> BatchFit:
    """Fit B independent problems that share items and edges; counts are (m,) or (B, m).

    ``method="newton"`` uses dense Hessians (B * P^2 floats), ``"lbfgs"`` only gradients; ``"auto"`` picks
    Newton while B * P^2 <= ``dense_limit``. ``tol`` bounds the largest gradient entry of the
    per-comparison objective (default 1e-9 for Newton, 1e-7 for L-BFGS, whose line search stalls
    below that). The Thurstonian fit starts from a rough Case V optimum.
    """
    _check_model(model)
    dev = torch.device(device)
    f64 = torch.float64
    ta = torch.as_tensor(a, dtype=torch.long, device=dev)
    tb = torch.as_tensor(b, dtype=torch.long, device=dev)
    wa = torch.as_tensor(np.atleast_2d(wins_a), dtype=f64, device=dev)
    wb = torch.as_tensor(np.atleast_2d(wins_b), dtype=f64, device=dev)
    n_batch = wa.shape[0]
    n_par = 2 * n_items if model == "thurstonian" else n_items
    if method == "auto":
        method = "newton" if n_batch * n_par ** 2 <= dense_limit else "lbfgs"
    if method not in ("newton", "lbfgs"):
        raise ValueError(f"unknown method {method!r}; choose auto, newton or lbfgs")
    solve = _newton if method == "newton" else _lbfgs
    if tol is None:
        tol = 1e-9 if method == "newton" else 1e-7
    priors = (1.0 / mu_prior_sd ** 2, 1.0 / logvar_prior_sd ** 2)
    x = torch.zeros(n_batch, n_par, dtype=f64, device=dev)
    n_iter = 0
    if model == "thurstonian":
        x[:, :n_items], n_iter = solve(x[:, :n_items], n_items, ta, tb, wa, wb, "case5", *priors,
                                       max(tol, 1e-5), max_iter)
    x, more = solve(x, n_items, ta, tb, wa, wb, model, *priors, tol, max_iter)
    n_iter += more
    with torch.no_grad():
        loglik = -_edge_terms(x, n_items, ta, tb, wa, wb, model)[0].sum(1)
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
    method: str = "auto"
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
