"""Thurstonian / Case V / Bradley-Terry fits: recovery, agreement with choix, invariances, batching."""

import choix
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from valuelab.fit.bootstrap import bootstrap
from valuelab.fit.io import to_comparisons
from valuelab.fit.simulate import random_agent, random_pairs, simulate
from valuelab.fit.thurstonian import (
    FAMILIES,
    ThurstonianModel,
    _Curvature,
    _edge_columns,
    _HessianPattern,
    _ItemGraph,
    _log_probs,
    fit_batch,
)


@pytest.fixture(scope="module")
def dense():
    """120 items, 2400 pairs (40 per item), 20 draws each: enough to identify per-item variances."""
    return simulate(120, 2400, 20, seed=7)


def truth_of(agent, items):
    order = [agent.items.index(i) for i in items]
    return agent.mean[order], agent.variance[order]


def test_recovers_means_and_variances(dense):
    prefs, agent = dense
    fit = ThurstonianModel().fit(prefs)
    mean, variance = truth_of(agent, fit.items_)
    assert fit.converged_
    assert spearmanr(fit.mean_, mean)[0] >= 0.98
    assert abs(fit.mean_.mean()) < 1e-9 and abs(fit.mean_.std(ddof=1) - 1) < 1e-9
    # Variances are on the normalised scale: compare with the truth divided by the true means' sd^2.
    assert pearsonr(np.log(fit.variance_), np.log(variance / mean.std(ddof=1) ** 2))[0] >= 0.6


@pytest.mark.parametrize("model", ["case5", "bradley-terry"])
def test_recovers_means_simple_models(dense, model):
    prefs, agent = dense
    fit = ThurstonianModel(model=model).fit(prefs)
    assert spearmanr(fit.mean_, truth_of(agent, fit.items_)[0])[0] >= 0.98


def expand(comp):
    """Integer counts as choix's [winner, loser] list."""
    data = []
    for a, b, wa, wb in zip(comp.a, comp.b, comp.wins_a.astype(int), comp.wins_b.astype(int), strict=True):
        data += [[a, b]] * wa + [[b, a]] * wb
    return data


@pytest.fixture(scope="module")
def noisy():
    """Noisy choices, so that no item wins or loses all its comparisons and the MLE exists."""
    rng = np.random.default_rng(4)
    agent = random_agent(40, seed=4, noise=1.5)
    return to_comparisons(agent.sample(*random_pairs(40, 400, rng), 10, rng))


def test_bradley_terry_matches_choix(noisy):
    comp = noisy
    alpha = 0.01  # choix penalises alpha * ||theta||^2, i.e. a N(0, 1 / (2 alpha)) prior
    theta = choix.opt_pairwise(comp.n_items, expand(comp), alpha=alpha, tol=1e-10)
    ours = fit_batch(comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b, model="bradley-terry",
                     mu_prior_sd=(2 * alpha) ** -0.5)
    ref = (theta - theta.mean()) / theta.std(ddof=1)
    assert np.abs(ours.mean[0] - ref).max() < 1e-5
    # ilsr's alpha is not a Gaussian prior, so compare maximum-likelihood estimates instead.
    lsr = choix.ilsr_pairwise(comp.n_items, expand(comp), alpha=1e-12, tol=1e-12)
    mle = fit_batch(comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b, model="bradley-terry",
                    mu_prior_sd=1e5)
    assert np.abs(mle.mean[0] - (lsr - lsr.mean()) / lsr.std(ddof=1)).max() < 1e-4


def test_case5_matches_choix_probit(noisy):
    comp = noisy
    # choix has no probit MAP; its EP posterior mean (P = Phi(theta_a - theta_b), prior variance 1/alpha)
    # differs from our MAP (P = Phi((mu_a - mu_b) / sqrt 2)) only by the EP-versus-mode gap.
    ep_mean, _ = choix.ep_pairwise(comp.n_items, expand(comp), alpha=0.01, model="probit")
    ours = fit_batch(comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b, model="case5",
                     mu_prior_sd=(2 / 0.01) ** 0.5)
    ref = (ep_mean - ep_mean.mean()) / ep_mean.std(ddof=1)
    assert pearsonr(ours.mean[0], ref)[0] > 0.99999
    assert np.abs(ours.mean[0] - ref).max() < 0.01


@pytest.mark.parametrize("model", FAMILIES)
def test_sparse_hessian_equals_autograd(model):
    """The Newton-CG Hessian, assembled from per-edge blocks into the shared sparse pattern, is the exact
    Hessian of the negative log-posterior, also with a pair listed twice (in both orders) and two replicates."""
    gen = torch.Generator().manual_seed(0)
    n_items = 6
    ta = torch.tensor([0, 1, 2, 3, 0, 4, 1, 5, 3])
    tb = torch.tensor([1, 2, 3, 0, 2, 5, 0, 1, 4])  # (0, 1) and (1, 0) both appear
    wa = torch.rand(2, 9, generator=gen, dtype=torch.float64) * 5
    wb = torch.rand(2, 9, generator=gen, dtype=torch.float64) * 5
    n_par = 2 * n_items if model == "thurstonian" else n_items
    x = torch.randn(2, n_par, generator=gen, dtype=torch.float64) * 0.7
    prior = torch.linspace(0.1, 0.3, n_par, dtype=torch.float64)
    scale = torch.tensor([0.5, 2.0], dtype=torch.float64)
    graph = _ItemGraph(ta, tb, n_items)
    terms = _Curvature(x, n_items, _edge_columns(ta, tb, n_items, model), wa, wb, model)
    pattern = _HessianPattern(graph, 2 if model == "thurstonian" else 1, 2)
    hvp, diagonal = pattern.assemble(terms.edge_blocks(), prior, scale)
    for r in range(2):
        def objective(v, r=r):
            log_pa, log_pb = _log_probs(v[:n_items], v[n_items:] if model == "thurstonian" else None, ta, tb, model)
            return scale[r] * (-(wa[r] * log_pa + wb[r] * log_pb).sum() + 0.5 * (prior * v * v).sum())

        expected = torch.autograd.functional.hessian(objective, x[r])
        basis = torch.zeros(2, n_par, n_par, dtype=torch.float64)
        basis[r] = torch.eye(n_par, dtype=torch.float64)
        assembled = torch.stack([hvp(basis[:, :, j])[r] for j in range(n_par)], 1)
        assert torch.allclose(assembled, expected, atol=1e-10)
        assert torch.allclose(diagonal[r], torch.diagonal(expected), atol=1e-10)


def test_newton_and_lbfgs_agree():
    prefs, _ = simulate(50, 500, 10, seed=5)
    comp = to_comparisons(prefs)
    args = (comp.n_items, comp.a, comp.b, comp.wins_a, comp.wins_b)
    newton, lbfgs = fit_batch(*args, method="newton-cg"), fit_batch(*args, method="lbfgs")
    assert np.abs(newton.mean - lbfgs.mean).max() < 1e-3
    assert abs(newton.log_likelihood[0] - lbfgs.log_likelihood[0]) < 1e-2


def test_batched_replicates_equal_single_fits():
    prefs, _ = simulate(30, 150, 8, seed=6)
    comp = to_comparisons(prefs)
    wa = np.stack([comp.wins_a, comp.wins_b, comp.wins_a + 1])
    wb = np.stack([comp.wins_b, comp.wins_a, comp.wins_b])
    batch = fit_batch(comp.n_items, comp.a, comp.b, wa, wb)
    for r in range(3):
        single = fit_batch(comp.n_items, comp.a, comp.b, wa[r], wb[r])
        assert np.abs(batch.mean[r] - single.mean[0]).max() < 1e-6
    # Swapping every outcome mirrors the utilities.
    assert np.abs(batch.mean[0] + batch.mean[1]).max() < 1e-6


def test_relabel_and_swap_sides_are_invariant():
    prefs, _ = simulate(40, 400, 10, seed=8)
    base = ThurstonianModel().fit(prefs).to_frame().set_index("item")
    rename = {item: f"z{hash(item) % 10**9:09d}_{item}" for item in base.index}
    relabelled = prefs.assign(item_a=prefs.item_a.map(rename), item_b=prefs.item_b.map(rename))
    other = ThurstonianModel().fit(relabelled).to_frame()
    other["item"] = other["item"].map({v: k for k, v in rename.items()})
    other = other.set_index("item").loc[base.index]
    assert np.abs(other["mean"] - base["mean"]).max() < 1e-6
    swapped = prefs.rename(columns={"item_a": "item_b", "item_b": "item_a", "wins_a": "wins_b",
                                    "wins_b": "wins_a"})
    again = ThurstonianModel().fit(swapped).to_frame().set_index("item").loc[base.index]
    assert np.abs(again["mean"] - base["mean"]).max() < 1e-9


def test_duplicated_data_same_optimum_tighter_intervals():
    prefs, _ = simulate(30, 200, 10, seed=9)
    once, twice = to_comparisons(prefs), to_comparisons(pd.concat([prefs, prefs], ignore_index=True))
    a = ThurstonianModel(mu_prior_sd=1e3, logvar_prior_sd=1e3).fit(once)
    b = ThurstonianModel(mu_prior_sd=1e3, logvar_prior_sd=1e3).fit(twice)
    assert np.abs(a.mean_ - b.mean_).max() < 1e-4
    width = [(lambda f: (f.mean_hi - f.mean_lo).mean())(bootstrap(c, 30, seed=1).to_frame())
             for c in (once, twice)]
    assert width[1] < 0.85 * width[0]


def test_item_that_always_wins_stays_finite():
    rows = [("champ", f"x{i}", 10, 0) for i in range(5)] + [(f"x{i}", f"x{i + 1}", 6, 4) for i in range(4)]
    prefs = pd.DataFrame(rows, columns=["item_a", "item_b", "wins_a", "wins_b"])
    for model in ("thurstonian", "case5", "bradley-terry"):
        fit = ThurstonianModel(model=model).fit(prefs)
        assert np.isfinite(fit.mean_).all() and np.isfinite(fit.variance_).all()
        assert fit.items_[int(np.argmax(fit.mean_))] == "champ"
