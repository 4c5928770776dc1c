"""Convergence: reference files, correlations with intervals, matrices, planted agents, SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from valuelab.analyses import convergence
from valuelab.elicit.outcomes import load_outcomes
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

OUTCOMES = load_outcomes("quick")[:30]


def series(values, ids=None):
    values = np.asarray(values, dtype=float)
    return pd.Series(values, index=ids or [f"o{k}" for k in range(len(values))])


def test_read_utilities_accepts_id_or_item(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("id,text,mean\na,x,1.5\nb,y,-0.5\n")
    assert convergence.read_utilities(path).to_dict() == {"a": 1.5, "b": -0.5}
    path.write_text("item,mean,variance\na,2,1\nb,3,1\n")
    assert convergence.read_utilities(path).to_dict() == {"a": 2.0, "b": 3.0}


@pytest.mark.parametrize("text, line, field, message", [
    ("id,score\na,1\n", 1, "mean", "missing column 'mean'"),
    ("name,mean\na,1\n", 1, "id", "missing column"),
    ("id,mean\na,1\nb,oops\n", 3, "mean", "finite number"),
    ("id,mean\na,1\nb,nan\n", 3, "mean", "finite number"),
    ("id,mean\na,1\n,2\n", 3, "id", "empty outcome id"),
    ("id,mean\na,1\nb,2\na,3\n", 4, "id", "duplicate id 'a' \\(first on line 2\\)"),
])
def test_malformed_reference_files_name_file_line_and_field(tmp_path, text, line, field, message):
    path = tmp_path / "ref.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        convergence.read_utilities(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
    with pytest.raises(InputError, match="file not found"):
        convergence.read_utilities(tmp_path / "missing.csv")


def test_correlation_of_identical_noisy_and_independent_utilities():
    rng = np.random.default_rng(0)
    u = series(rng.normal(size=200))
    same = convergence.correlate(u, u, n_boot=100)
    assert same["pearson_r"].value == pytest.approx(1.0) and same["spearman_rho"].value == pytest.approx(1.0)
    noisy = convergence.correlate(u, u + series(rng.normal(scale=0.5, size=200)), n_boot=200)
    r = noisy["pearson_r"]
    assert r.lo < r.value < r.hi and r.value == pytest.approx(1 / np.sqrt(1.25), abs=0.05)
    assert r.baseline == pytest.approx(0.0, abs=0.03) and r.baseline_hi == pytest.approx(0.14, abs=0.04)
    independent = convergence.correlate(u, series(rng.normal(size=200)), n_boot=100)["pearson_r"]
    assert independent.baseline_lo <= independent.value <= independent.baseline_hi


def test_only_shared_ids_are_compared():
    u = series([1, 2, 3, 4], ["a", "b", "c", "d"])
    v = series([10, 30, 20, 40, 99], ["a", "c", "b", "d", "e"])  # the same order once aligned by id
    out = convergence.correlate(u, v, n_boot=20)
    assert out["n_shared"] == 4 and out["spearman_rho"].value == pytest.approx(1.0)
    with pytest.raises(InputError, match="share 2 outcome ids"):
        convergence.correlate(u, series([1, 2], ["a", "b"]))


def test_matrix_over_several_sets():
    rng = np.random.default_rng(1)
    base = rng.normal(size=50)
    named = {"m1": series(base), "m2": series(base + rng.normal(scale=0.3, size=50)),
             "m3": pd.DataFrame({"id": [f"o{k}" for k in range(50)], "mean": rng.normal(size=50)})}
    result = convergence.compare(named, n_boot=50)
    m = result.pearson_matrix
    assert list(m.index) == ["m1", "m2", "m3"] and np.allclose(m.to_numpy(), m.to_numpy().T)
    assert np.allclose(np.diag(m), 1.0) and m.loc["m1", "m2"] > 0.9 and abs(m.loc["m1", "m3"]) < 0.4
    assert len(result.pairs) == 3 and result.headline == ("m1", "m2")
    json.dumps(result.to_dict())


def test_agents_sharing_utilities_converge_and_strangers_do_not(tmp_path):
    truth = {o.text: (float(np.random.default_rng(k).normal()), 0.05) for k, o in enumerate(OUTCOMES)}
    from valuelab.fit.utilities import elicit_utilities

    twin = elicit_utilities(StoredModel(SyntheticBackend(7, utilities=truth)), OUTCOMES)
    stranger = elicit_utilities(StoredModel(SyntheticBackend(99)), OUTCOMES)
    reference = tmp_path / "reference.csv"
    pd.DataFrame({"id": [o.id for o in OUTCOMES], "mean": [truth[o.text][0] for o in OUTCOMES]}).to_csv(
        reference, index=False)
    model = StoredModel(SyntheticBackend(0, utilities=truth))
    result = convergence.run(model, outcomes=OUTCOMES, reference=reference,
                             others={"twin": twin, "stranger": stranger.utilities}, n_boot=200)
    assert result.headline == ("synthetic:0", "reference")
    assert result.pearson_r.value > 0.95 and result.pearson_r.lo > result.pearson_r.baseline_hi
    m = result.pearson_matrix
    assert m.loc["synthetic:0", "twin"] > 0.95
    assert result.spearman_matrix.loc["stranger", "synthetic:0"] < 0.5
    assert result.calls > 0


def test_run_needs_something_to_compare_with():
    with pytest.raises(InputError, match="reference"):
        convergence.run(StoredModel(SyntheticBackend(0)), outcomes=OUTCOMES)


def test_figure_draws(tmp_path):
    rng = np.random.default_rng(2)
    named = {"a": series(rng.normal(size=20)), "b": series(rng.normal(size=20))}
    result = convergence.compare(named, n_boot=10)
    fig = convergence.figure(result)
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "convergence.png")


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2, tmp_path):
    outcomes = OUTCOMES[:5]
    reference = tmp_path / "reference.csv"
    reference.write_text("id,mean\n" + "".join(f"{o.id},{k}\n" for k, o in enumerate(outcomes)))
    result = convergence.run(StoredModel(smollm2), outcomes=outcomes, reference=reference, budget=5,
                             n_boot=100)
    assert result.calls > 0 and int(result.pairs.loc[0, "n_shared"]) == 5
    assert -1.0 <= result.pearson_r.value <= 1.0


def test_cli_compares_with_a_reference_and_refuses_it_elsewhere(tmp_path, capsys):
    from valuelab.cli import main

    outcomes = load_outcomes("quick")[:10]
    items = tmp_path / "items.csv"
    items.write_text("id,text\n" + "".join(f"{o.id},\"{o.text}\"\n" for o in outcomes))
    agent = SyntheticBackend(8)
    reference = tmp_path / "reference.csv"  # the agent's own planted means: convergence must be near 1
    reference.write_text("id,mean\n" + "".join(f"{o.id},{agent.utility(o.text)[0]}\n" for o in outcomes))
    args = ["analyze", "convergence", "synthetic:8", "--outcomes", str(items), "--reference", str(reference),
            "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "out" / "convergence.json").read_text())
    assert summary["headline"] == "pearson_r" and summary["metrics"][0]["value"] > 0.9
    capsys.readouterr()
    assert main(["analyze", "transitivity", "synthetic:8", "--reference", str(reference),
                 "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "analysis 'transitivity' takes no option --reference" in capsys.readouterr().err
