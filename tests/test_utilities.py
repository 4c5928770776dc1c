"""Outcome utilities end to end: synthetic agents with known utilities, the embedded model, the OpenAI path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from valuelab.elicit.outcomes import Outcome, load_outcomes
from valuelab.errors import InputError
from valuelab.fit.utilities import elicit_utilities
from valuelab.models import load_model
from valuelab.store import Store, StoredModel

QUICK = load_outcomes("quick")


def truth_spearman(agent, result) -> float:
    truth = [agent.utility(text)[0] for text in result.utilities["text"]]
    return spearmanr(truth, result.utilities["mean"]).statistic


def test_recovers_known_utilities_with_both_orders_and_a_realistic_budget():
    agent = load_model("synthetic:11", position_bias=0.5, noise=0.5)
    result = elicit_utilities(StoredModel(agent), QUICK, budget=300, seed=3)
    assert truth_spearman(agent, result) >= 0.95
    assert result.metrics["pairs_trained"] == 300
    assert result.metrics["position_bias"] > 0.1  # reported, not hidden
    assert result.metrics["heldout_accuracy"] > 0.85
    assert result.utilities["mean"].mean() == pytest.approx(0, abs=1e-6)
    assert result.utilities["mean"].std(ddof=1) == pytest.approx(1, abs=1e-3)


def test_random_responder_shows_the_paper_random_baselines():
    """A 50/50 responder sampled K=10 times per order (the paper's protocol): held-out accuracy ≈ 50.3%,
    average confidence ≈ 58.7% (Mazeika et al. 2025; E max(p, 1−p) for Binomial(20, ½)/20 is 0.588)."""
    outcomes = [Outcome(f"o{i}", f"outcome {i}", "x") for i in range(40)]
    indifferent = load_model("synthetic:0", utilities={o.text: (0.0, 1.0) for o in outcomes})
    model = StoredModel(indifferent, mode="sample", n_samples=10)
    result = elicit_utilities(model, outcomes, budget=300, holdout_pairs=0.2)
    assert result.metrics["heldout_accuracy"] == pytest.approx(0.5, abs=0.1)
    assert result.metrics["average_confidence"] == pytest.approx(0.588, abs=0.015)


def test_same_seed_same_pairs_and_rerun_asks_nothing(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = elicit_utilities(StoredModel(load_model("synthetic:2"), store), QUICK[:20], budget=60, seed=5)
    model = StoredModel(load_model("synthetic:2"), store)
    second = elicit_utilities(model, QUICK[:20], budget=60, seed=5)
    pd.testing.assert_frame_equal(first.preferences, second.preferences)
    assert model.counts.asked == 0 and second.metrics["prompts_asked"] == second.metrics["requests"] == 0


def test_sample_mode_counts_votes_and_refusals():
    agent = load_model("synthetic:4", refusal_rate=0.2)
    model = StoredModel(agent, mode="sample", n_samples=5)
    result = elicit_utilities(model, QUICK[:15], budget=40, holdout_pairs=0)
    assert result.metrics["mode"] == "sample"
    prompts = result.metrics["prompts_asked"]
    assert prompts == result.metrics["prompts"] and result.metrics["samples"] == 5 * prompts  # 5 samples each
    assert result.metrics["requests"] == 5 * prompts  # one request per sample (the agent counts none itself)
    assert result.metrics["refusal_rate"] == pytest.approx(0.2, abs=0.07)
    assert (result.preferences["wins_a"] + result.preferences["wins_b"] <= 10).all()
    assert truth_spearman(agent, result) > 0.7


def test_bootstrap_intervals_cover_the_estimate():
    result = elicit_utilities(StoredModel(load_model("synthetic:9")), QUICK[:25], budget=120, bootstrap_samples=40)
    u = result.utilities
    assert (u["mean_lo"] <= u["mean_hi"]).all()
    assert ((u["mean_lo"] - 0.3 <= u["mean"]) & (u["mean"] <= u["mean_hi"] + 0.3)).all()


def test_too_few_or_duplicate_outcomes_are_refused():
    model = StoredModel(load_model("synthetic:1"))
    with pytest.raises(InputError, match="at least 3 outcomes"):
        elicit_utilities(model, QUICK[:2])
    with pytest.raises(InputError, match="below the minimum of 10"):
        elicit_utilities(model, QUICK[:10], budget=5)
    with pytest.raises(InputError, match="duplicate outcome id"):
        elicit_utilities(model, [QUICK[0], QUICK[1], QUICK[0]])


@pytest.mark.slow
def test_cli_on_the_embedded_model(tmp_path, cli_env):
    out = tmp_path / "run"
    outcomes = tmp_path / "twelve.jsonl"
    outcomes.write_text("".join(json.dumps({"id": o.id, "text": o.text, "category": o.category}) + "\n"
                                for o in QUICK[::5]))
    proc = subprocess.run([sys.executable, "-m", "valuelab.cli", "utilities", "smollm2", "--outcomes", str(outcomes),
                           "--out", str(out), "--budget", "14", "--holdout-pairs", "0.1", "--text-check", "6"],
                          capture_output=True, text=True, env=cli_env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    utilities = pd.read_csv(out / "utilities.csv")
    assert list(utilities.columns) == ["id", "text", "category", "mean", "variance"] and len(utilities) == 12
    prefs = pd.read_csv(out / "preferences.csv")
    assert {"p_a", "p_a_forward", "p_a_backward", "mass", "mode", "split"} <= set(prefs.columns)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs_trained"] == 14 and metrics["pairs_held_out"] == 6
    assert metrics["prompts_asked"] == 2 * len(prefs) + 6 == 46  # both orders of 20 pairs, 6 free-text answers
    assert metrics["samples"] == 6 and metrics["requests"] == 46  # one free-text sample each; one request each
    assert metrics["text_checked"] == 6 and 0 <= metrics["text_agreement"] <= 1
    assert 0 <= metrics["heldout_accuracy"] <= 1
    assert 0.2 < metrics["position_bias"] < 0.5  # SmolLM2-135M leans hard toward "A"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["model"].startswith("smollm2:") and manifest["label_token_ids"]
    assert manifest["counts"]["prompts_asked"] == 46 and manifest["counts"]["samples"] == 6


@pytest.mark.server
def test_over_the_openai_path(llama_server, tmp_path):
    model = StoredModel(load_model("openai:smollm2", base_url=llama_server), Store(tmp_path / "s.sqlite"))
    result = elicit_utilities(model, QUICK[:8], budget=10, holdout_pairs=0)
    assert result.metrics["pairs_trained"] == 10 and result.metrics["mode"] == "logprob"
    assert len(result.utilities) == 8 and np.isfinite(result.utilities["mean"]).all()
