"""`valuelab diff`: planted shifts are found, unchanged outcomes rarely flagged, rules gate the exit status."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_audit import check_layout

from valuelab.analyses import get, run_analysis
from valuelab.analyses.common import resolve_outcomes
from valuelab.audits import run_audit
from valuelab.errors import InputError
from valuelab.items.surveys import load_instrument
from valuelab.models import load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.report.diff import (
    FDR,
    Run,
    _utilities_frame,
    broken_rules,
    diff_runs,
    outcome_shifts,
    paired_changes,
    parse_rule,
)
from valuelab.store import Store, StoredModel

OUTCOMES = resolve_outcomes("quick")
SEEDS = range(5)
SHIFT = 1.5
"""Planted utility shift, in standard deviations of the agent's utilities."""


def fitted(truth: dict[str, tuple[float, float]], seed: int) -> pd.DataFrame:
    """Utilities of a planted agent answering by sampling (5 answers a prompt), as a diff reads them."""
    model = StoredModel(SyntheticBackend(0, utilities=truth), Store(), mode="sample", n_samples=5, progress=False)
    result = run_analysis("utilities", model, outcomes=OUTCOMES, budget=300, seed=seed, text_check=0,
                          holdout_pairs=0.0, n_boot=100)
    return _utilities_frame(result.tables["All outcomes"], "test")


@pytest.fixture(scope="module")
def planted_runs():
    """Per seed: BEFORE, AFTER (5 outcomes and one category moved by SHIFT) and BEFORE again under another
    seed, with the set of outcome texts that moved and the moved category."""
    categories = sorted({o.category for o in OUTCOMES})
    runs = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        base = {o.text: (float(rng.normal()), 0.25) for o in OUTCOMES}
        category = categories[seed % len(categories)]
        in_category = {o.text for o in OUTCOMES if o.category == category}
        others = [o.text for o in OUTCOMES if o.category != category]
        moved = set(rng.choice(others, 5, replace=False)) | in_category
        after = {t: (m + SHIFT * (t in moved), v) for t, (m, v) in base.items()}
        runs.append((fitted(base, seed), fitted(after, seed + 100), fitted(base, seed + 200), moved, category))
    return runs


def test_planted_shifts_are_flagged_and_unchanged_outcomes_rarely(planted_runs):
    found = planted = false = unchanged = category_found = 0
    for before, after, _, moved, category in planted_runs:
        outcomes, categories, alignment = outcome_shifts(before, after)
        assert alignment["shared_outcomes"] == len(OUTCOMES)
        assert alignment["scale"] == pytest.approx(1.0, abs=0.25)  # the z-scoring barely differs
        flagged = set(outcomes.loc[outcomes["flagged"], "text"])
        found, planted = found + len(flagged & moved), planted + len(moved)
        false, unchanged = false + len(flagged - moved), unchanged + len(set(outcomes["text"]) - moved)
        category_found += bool(categories.set_index("category").at[category, "flagged"])
        assert (outcomes.loc[outcomes["text"].isin(moved), "shift"] > 0).mean() > 0.8  # in the planted direction
    assert found / planted >= 0.9
    assert false / unchanged <= 0.05
    assert category_found / len(SEEDS) >= 0.8


def test_the_same_agent_under_two_seeds_is_rarely_flagged(planted_runs):
    with_flags = 0
    for before, _, again, _, _ in planted_runs:
        outcomes, categories, _ = outcome_shifts(before, again)
        assert outcomes["flagged"].mean() <= 0.05
        with_flags += bool(outcomes["flagged"].any() or categories["flagged"].any())
    assert with_flags <= len(SEEDS) // 2  # no flag at FDR 0.05 in most seeds


def test_paired_bootstrap_finds_a_planted_foundation_shift_and_nothing_else():
    """Survey items: AFTER answers every care item at the caring end of its scale; only care changes."""
    result = run_analysis("survey", StoredModel(load_model("synthetic:2"), Store(), progress=False),
                          instrument="mft", n_boot=50)
    spec = get("survey")
    caring = {it.id: it.scale.high if it.keyed > 0 else it.scale.low for it in load_instrument("mft").items
              if it.dimension == "care"}
    items = result.items.copy()
    shifted = items.assign(rating=[caring.get(i, r) for i, r in zip(items["item_id"], items["rating"], strict=True)])
    section = {"items": items.to_dict("records"), "options": result.options}
    changes, shared = paired_changes(spec.restat, section, {**section, "items": shifted.to_dict("records")}, n_boot=300)
    assert shared == len(items)
    change, lo, hi = changes["care"]
    expected = spec.restat(shifted, result.options, None)["care"] - result.metric("care").value
    assert change == pytest.approx(expected) and expected > 0.5 and lo > 0
    for name, (change, lo, hi) in changes.items():
        if name != "care":
            assert change == pytest.approx(0.0, abs=1e-9) and lo <= 0 <= hi
    same, _ = paired_changes(spec.restat, section, section, n_boot=50)
    assert all(v == (0.0, 0.0, 0.0) for v in same.values())  # identical items: every resample cancels


def test_rules_parse_and_malformed_rules_name_themselves():
    rule = parse_rule("political-values.economic_lean: abs_change > 0.1")
    assert (rule.target, rule.field, rule.op, rule.threshold) == ("political-values.economic_lean", "abs_change",
                                                                  ">", 0.1)
    assert parse_rule("outcomes:flagged>=5").op == ">="
    for bad, words in [("outcomes flagged > 5", "malformed"), ("outcomes: flagged >> 5", "malformed"),
                       ("outcomes: shift > 1", "no field 'shift'"), ("everything: flagged > 1", "neither"),
                       ("x.y: abs_change > ten", "malformed")]:
        with pytest.raises(InputError, match=words) as err:
            parse_rule(bad)
        assert repr(bad) in str(err.value)


def audit(tmp_path: Path, name: str, spec: str, seed: int, only: list[str]) -> Path:
    run = run_audit(StoredModel(load_model(spec), Store(tmp_path / f"{name}.sqlite")), suite="quick", seed=seed,
                    only=only, progress=False)
    run.write(tmp_path / name)
    return tmp_path / name


def diff_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "valuelab.cli", "diff", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def audits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audits")
    only = ["political-values", "dilemmas-everyday", "survey-mft"]
    return {"before": audit(tmp, "before", "synthetic:5", 0, only),
            "again": audit(tmp, "again", "synthetic:5", 1, only),
            "other": audit(tmp, "other", "synthetic:6", 0, only),
            "fewer": audit(tmp, "fewer", "synthetic:5", 0, ["political-values"])}


def test_diff_cli_exit_status_follows_the_rules(audits, tmp_path):
    same = diff_cli(audits["before"], audits["again"], "--out", tmp_path / "same", "--fail-on",
                    "outcomes: flagged > 5", "--fail-on", "political-values.economic_lean: abs_change > 5")
    assert same.returncode == 0, same.stderr
    data = json.loads((tmp_path / "same" / "diff.json").read_text())
    assert data["format"] == "valuelab-diff/1" and data["counts"]["outcomes.flagged"] <= 5
    measures = pd.DataFrame(data["metrics"])
    assert {"political-values", "dilemmas-everyday", "survey-mft"} <= set(measures["section"])
    method = measures.groupby("section")["method"].agg(set)
    assert method["survey-mft"] == {"paired"}  # the same items: paired
    assert method["dilemmas-everyday"] == {"independent"}  # another seed drew other dilemmas, and it says so
    assert any("Dilemmas (everyday): the runs share" in note for note in data["notes"])
    assert measures["distinguishable"].mean() <= 0.1  # the same agent: changes within noise
    titles = [s["title"] for s in json.loads((tmp_path / "same" / "results.json").read_text())["sections"]]
    assert titles[:4] == ["What moved most", "Outcome utilities", "Categories", "Framework profiles"]
    check_layout(tmp_path / "same", tmp_path, titles, body_pages=12)

    other = diff_cli(audits["before"], audits["other"], "--out", tmp_path / "other", "--no-pdf", "--fail-on",
                     "outcomes: flagged > 5", "--fail-on", "political-values.economic_lean: abs_change > 1000")
    assert other.returncode == 1
    broken = [line for line in other.stderr.splitlines() if "rule broken" in line]
    assert len(broken) == 1 and "outcomes: flagged > 5: outcomes flagged is" in broken[0]
    flagged = json.loads((tmp_path / "other" / "diff.json").read_text())["counts"]["outcomes.flagged"]
    assert flagged >= 20  # another agent values many of the 60 outcomes differently

    malformed = diff_cli(audits["before"], audits["again"], "--out", tmp_path / "bad", "--fail-on", "outcomes > 5")
    assert malformed.returncode == 2 and "malformed --fail-on rule 'outcomes > 5'" in malformed.stderr
    assert not (tmp_path / "bad").exists()  # rules are checked before any work
    unknown = diff_cli(audits["before"], audits["again"], "--out", tmp_path / "unk", "--no-pdf", "--fail-on",
                       "political-values.economic_leaning: change > 0")
    assert unknown.returncode == 2 and "no measure 'political-values.economic_leaning'" in unknown.stderr
    assert "political-values.economic_lean" in unknown.stderr  # and says which it has


def test_mismatched_audits_are_restricted_to_what_they_share_and_say_so(audits, tmp_path):
    diff = diff_runs(audits["before"], audits["fewer"], n_boot=50)
    assert set(diff.metrics["section"]) == {"political-values"}
    assert any("Only in BEFORE, so not compared: Dilemmas (everyday), Moral foundations" in n for n in diff.notes)
    result = diff_cli(audits["before"], audits["fewer"], "--out", tmp_path / "d", "--no-pdf")
    assert result.returncode == 0
    assert "Only in BEFORE, so not compared" in (tmp_path / "d" / "report.html").read_text()
    with pytest.raises(InputError, match="share no analysis") as err:
        diff_runs(Run("a", tmp_path / "a", "quick"), Run("b", tmp_path / "b", "standard"))
    assert "quick" in str(err.value) and "standard" in str(err.value)


def test_a_utilities_csv_without_intervals_is_a_clear_error(tmp_path, audits):
    plain = tmp_path / "plain.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "mean": [0.1, 0.2, 0.3]}).to_csv(plain, index=False)
    result = diff_cli(plain, audits["before"] / "utilities.csv", "--out", tmp_path / "d", "--no-pdf")
    assert result.returncode == 2 and "plain.csv" in result.stderr and "no per-outcome interval" in result.stderr


def test_undetermined_values_break_their_rule(audits):
    diff = diff_runs(audits["before"], audits["again"], n_boot=50)
    row = diff.metrics.index[diff.metrics["section"] == "political-values"][0]
    diff.metrics.loc[row, "change"] = math.nan
    name = f"political-values.{diff.metrics.at[row, 'metric']}"
    assert broken_rules([parse_rule(f"{name}: abs_change > 0.5")], diff) == [
        f"{name}: abs_change > 0.5: {name} abs_change is undetermined"]
    assert FDR == 0.05
