"""PREFS.csv validation, degenerate inputs, metrics, and the fit/simulate entry points."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from valuelab.cli import main
from valuelab.errors import DeviceError, InputError
from valuelab.fit.commands import fit_csv
from valuelab.fit.io import read_prefs, to_comparisons
from valuelab.fit.metrics import score
from valuelab.fit.simulate import simulate_csv
from valuelab.fit.thurstonian import ThurstonianModel

GOOD = "item_a,item_b,wins_a,wins_b\nx,y,3,1\ny,z,2.5,2.5\nz,x,1,4\n"


def write(tmp_path, text):
    path = tmp_path / "prefs.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, line, field, words", [
    ("item_a,item_b,wins_a,wins_b,extra\nx,y,1,1,0\n", 1, "extra", "unknown column"),
    ("item_a,item_b,wins_a\nx,y,1\n", 1, "wins_b", "missing column"),
    (GOOD + "x,z,nan,1\n", 5, "wins_a", "not a finite number"),
    (GOOD + "x,z,,1\n", 5, "wins_a", "not a finite number"),
    (GOOD + "x,z,1,-2\n", 5, "wins_b", "negative count"),
    (GOOD + "x,x,1,2\n", 5, "item_b", "compared with itself"),
    (GOOD + ",z,1,2\n", 5, "item_a", "missing item id"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, text, line, field, words):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        read_prefs(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
    assert words in str(err.value) and f"{path}:{line}" in str(err.value)


def test_zero_count_rows_are_dropped_with_warning(tmp_path):
    path = write(tmp_path, GOOD + "x,y,0,0\n")
    with pytest.warns(UserWarning, match="dropped 1 rows with zero counts \\(lines 5\\)"):
        comp = read_prefs(path)
    assert comp.n_edges == 3 and comp.wins_a.sum() + comp.wins_b.sum() == 14


def test_disconnected_graph_is_refused_or_fitted_per_component(tmp_path):
    path = write(tmp_path, GOOD + "p,q,2,1\nq,r,1,1\nr,p,0,3\ns,p,1,2\n")
    with pytest.raises(InputError, match="2 disconnected components: 4 items \\(p, q, r, ...\\); 3 items"):
        fit_csv(path, tmp_path / "u.csv")
    out = tmp_path / "u.csv"
    fit_csv(path, out, per_component=True)
    utils = pd.read_csv(out)
    assert sorted(utils.groupby("component").size()) == [3, 4]
    for _, group in utils.groupby("component"):
        assert abs(group["mean"].mean()) < 1e-9 and abs(group["mean"].std() - 1) < 1e-9


def test_item_only_in_zero_rows_is_reported_as_unconnected(tmp_path):
    path = write(tmp_path, GOOD + "x,lonely,0,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="lonely"):
            ThurstonianModel().fit(read_prefs(path))


def test_metrics_follow_reference_definitions():
    p_hat, p_obs = np.array([0.9, 0.4, 0.5, 0.2]), np.array([1.0, 0.5, 0.5, 0.6])
    m = score(p_hat, p_obs)
    assert m.accuracy == 0.5  # 0.5 counts as "A preferred" on both sides; 0.4 vs 0.5 and 0.2 vs 0.6 miss
    expected = -np.mean(p_obs * np.log(p_hat) + (1 - p_obs) * np.log(1 - p_hat))
    assert m.log_loss == pytest.approx(expected)
    assert m.avg_confidence == pytest.approx(np.mean([0.9, 0.6, 0.5, 0.8]))
    assert m.calibration_error == pytest.approx((0.1 + 0.1 + 0.0 + 0.4) / 4)


def test_simulate_then_fit_csv_round_trip(tmp_path):
    prefs, truth, out = tmp_path / "p.csv", tmp_path / "t.csv", tmp_path / "u.csv"
    info = simulate_csv(items=40, pairs=400, samples=10, seed=3, out=prefs, truth=truth)
    assert info["comparisons"] == 4000
    summary = fit_csv(prefs, out, bootstrap=20, seed=1, holdout_pairs=0.1)
    utils = pd.read_csv(out).merge(pd.read_csv(truth), on="item", suffixes=("", "_true"))
    assert list(utils.columns[:5]) == ["item", "mean", "variance", "mean_lo", "mean_hi"]
    assert utils["mean"].corr(utils["mean_true"], method="spearman") > 0.95
    assert (utils.mean_lo <= utils.mean_hi).all()
    assert 0.7 < summary["holdout"]["accuracy"] <= 1.0
    lo, hi = summary["holdout_ci"]["accuracy"]
    assert lo <= summary["holdout"]["accuracy"] <= hi
    assert to_comparisons(pd.read_csv(prefs)).n_edges == 400


def test_fit_command_prints_log_likelihood_iterations_and_convergence(tmp_path, capsys):
    prefs, out = tmp_path / "p.csv", tmp_path / "u.csv"
    simulate_csv(items=12, pairs=60, samples=5, seed=2, out=prefs)
    summary = fit_csv(prefs, out)
    assert summary["converged"] and summary["iterations"] > 0 and summary["log_likelihood"] < 0
    assert main(["fit", str(prefs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (f"log-likelihood {summary['log_likelihood']:.4f} after {summary['iterations']} iterations, converged"
            in printed), printed


@pytest.mark.parametrize("device, words", [
    pytest.param("cuda", "sees no CUDA GPU", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has a GPU")),
    ("tpu", "unknown device 'tpu'"),
    ("meta", "not supported"),
])
def test_unusable_device_is_one_clear_error(tmp_path, capsys, device, words):
    path = write(tmp_path, GOOD)
    with pytest.raises(DeviceError, match=words):
        ThurstonianModel(device=device).fit(read_prefs(path))
    assert main(["fit", str(path), "--out", str(tmp_path / "u.csv"), "--device", device]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "u.csv").exists()
