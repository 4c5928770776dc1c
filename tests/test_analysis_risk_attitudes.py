"""Risk attitudes: the lottery generator, certainty equivalents by bisection through the store, and the
cumulative prospect theory fit recovering planted parameters from the synthetic agent."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from valuelab.analyses import risk_attitudes as ra
from valuelab.analyses import run_analysis
from valuelab.errors import InputError, ModelSpecError
from valuelab.models import load_model
from valuelab.models.synthetic import cpt_value, parse_prospect
from valuelab.store import Store, StoredModel

PLANTED = {"alpha": 0.8, "beta": 1.0, "lambda": 2.0, "gamma": 0.65, "delta": 1.0}
TK92 = {"alpha": 0.88, "beta": 0.88, "lambda": 2.25, "gamma": 0.61, "delta": 0.69}


def fitted(spec: str, seed: int = 0, **options):
    options = {"budget": 30, "rounds": 6, "n_boot": 100, **options}
    model = StoredModel(load_model(spec), Store(), progress=False)
    return run_analysis("risk-attitudes", model, seed=seed, **options), model


def test_lotteries_are_seeded_balanced_and_worded_for_the_agent():
    lotteries = ra.make_lotteries(30, seed=4)
    assert lotteries == ra.make_lotteries(30, seed=4)
    assert lotteries != ra.make_lotteries(30, seed=5)
    assert [sum(lot.kind == k for lot in lotteries) for k in ra.KINDS] == [10, 10, 10]
    for lot in lotteries:
        assert 0.05 <= lot.p <= 0.95 and lot.x1 != lot.x2
        if lot.kind == "gains":
            assert lot.x1 > lot.x2 >= 0
        elif lot.kind == "losses":
            assert lot.x1 < lot.x2 <= 0
        else:
            assert lot.x1 > 0 > lot.x2
        # the synthetic agent reads exactly what the model is shown
        assert parse_prospect(lot.text) == ((lot.x1, lot.p), (lot.x2, pytest.approx(1 - lot.p)))
    assert any(lot.x2 != 0 for lot in lotteries if lot.kind == "gains")  # two non-zero outcomes too
    assert ra.sure_text(-40) == "you pay $40 for certain" and parse_prospect(ra.sure_text(1250)) == ((1250, 1.0),)
    assert parse_prospect("$1,000 paid right now") is None  # other analyses' texts stay Thurstonian outcomes


@pytest.mark.parametrize("bad", [0, 8, -3, 2.5])
def test_too_few_lotteries_are_refused(bad):
    with pytest.raises(InputError, match="lotteries"):
        ra.make_lotteries(bad)


def test_bad_options_fail_early_with_a_clear_message():
    model = StoredModel(load_model("synthetic:0"), Store(), progress=False)
    with pytest.raises(InputError, match="budget 6 is below the minimum of 9 lotteries"):
        run_analysis("risk-attitudes", model, budget=6)
    with pytest.raises(InputError, match="rounds must be a whole number from 1 to 12"):
        run_analysis("risk-attitudes", model, budget=9, rounds=0)
    with pytest.raises(InputError, match="takes no option"):
        run_analysis("risk-attitudes", model, n_lotteries=9)
    assert model.counts.asked == 0
    with pytest.raises(ModelSpecError, match="unknown option 'kappa'"):
        load_model("synthetic:0,kappa=2")
    with pytest.raises(ModelSpecError, match="needs a number"):
        load_model("synthetic:0,alpha=high")


def test_cpt_value_matches_tversky_and_kahneman():
    # TK92's parameters: a 50-50 gamble for $100 is worth about $37 for certain, and a 50-50 gamble of winning or
    # losing $100 is refused (negative value); both implementations agree.
    ce = cpt_value(((100, 0.5), (0, 0.5)), TK92) ** (1 / 0.88)
    assert ce == pytest.approx(37.4, abs=0.1)
    assert ra.predict_ce(list(TK92.values()), np.array([100.0]), np.array([0.5]), np.array([0.0]))[0] == \
        pytest.approx(ce)
    assert cpt_value(((100, 0.5), (-100, 0.5)), TK92) < 0
    x1, p, x2 = np.array([300.0, -300.0, 500.0]), np.array([0.1, 0.7, 0.4]), np.array([60.0, -20.0, -200.0])
    mine = ra.predict_ce(list(TK92.values()), x1, p, x2)
    for k in range(3):
        v = cpt_value(((x1[k], p[k]), (x2[k], 1 - p[k])), TK92)
        assert mine[k] == pytest.approx(v ** (1 / 0.88) if v >= 0 else -((-v / 2.25) ** (1 / 0.88)), rel=1e-9)
    assert ra.predict_ce([1, 1, 1, 1, 1], x1, p, x2) == pytest.approx(p * x1 + (1 - p) * x2)


def test_certainty_equivalent_is_exact_for_a_probit_chooser():
    amounts = np.array([500.0, 250.0, 125.0, 187.0, 156.0])
    p_sure = norm.cdf((amounts - 170.0) / 40.0)
    assert ra.certainty_equivalent(amounts, p_sure, 0, 1000) == pytest.approx(170.0, abs=1e-9)
    assert ra.certainty_equivalent(amounts, np.ones(5), 0, 1000) < 125  # always the sure amount: below all asked
    assert ra.certainty_equivalent(amounts, np.zeros(5), 0, 1000) > 500


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_planted_prospect_theory_is_recovered(seed):
    result, _ = fitted(f"synthetic:{seed},alpha=0.8,lambda=2,gamma=0.65", seed=seed)
    inside = {name: result.metric(name).lo <= truth <= result.metric(name).hi for name, truth in PLANTED.items()}
    assert sum(inside.values()) >= 4, inside  # a 95 % interval may miss now and then, not usually
    assert inside["alpha"] and inside["gamma"] and inside["lambda"]
    assert result.metric("alpha").value == pytest.approx(0.8, abs=0.06)
    assert result.metric("gamma").value == pytest.approx(0.65, abs=0.06)
    assert 1.3 < result.metric("lambda").value < 3.0
    # prospect theory describes it far better than expected value does, and better than a random responder
    assert result.metric("rmse").value < 0.5 * result.metric("ev_rmse").value
    assert result.metric("rmse").distinguishable and result.headline.name == "rmse"


def test_an_expected_value_agent_is_neither_loss_averse_nor_weighting_chances():
    result, _ = fitted("synthetic:2", seed=2)
    for name in ("lambda", "gamma", "alpha"):
        m = result.metric(name)
        assert m.lo <= 1.0 <= m.hi, (name, m)
    assert abs(math.log(result.metric("lambda").value)) < math.log(1.5)
    assert result.metric("gamma").value == pytest.approx(1.0, abs=0.08)
    assert result.metric("ev_rmse").value < 0.05  # expected value already fits
    assert any("consistent with maximising expected value" in n or "exclude 1" in n for n in result.notes)


def test_a_rerun_asks_nothing_and_the_table_reads_beside_people(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    spec = "synthetic:1,alpha=0.88,beta=0.88,lambda=2.25,gamma=0.61,delta=0.69"
    first = run_analysis("risk-attitudes", StoredModel(load_model(spec), store, progress=False), budget=12,
                         rounds=4, n_boot=50)
    assert first.cost["prompts_asked"] == 2 * 12 * 4
    again = StoredModel(load_model(spec), store, progress=False)
    second = run_analysis("risk-attitudes", again, budget=12, rounds=4, n_boot=50)
    assert again.counts.asked == 0 and second.cost["prompts_reused"] == 2 * 12 * 4
    assert second.to_frame().equals(first.to_frame())
    # an agent planted elsewhere is another model: nothing of the first is reused
    other = StoredModel(load_model("synthetic:1"), store, progress=False)
    run_analysis("risk-attitudes", other, budget=9, rounds=1, n_boot=20)
    assert other.counts.asked == 2 * 9
    table = first.tables["Parameters"].set_index("parameter")
    assert table["people"].to_dict() == TK92 and (table["expected_value"] == 1.0).all()
    assert set(first.columns["Certainty equivalents"]) >= {"ce", "ce_cpt", "text"}
    assert all(first.columns["Parameters"].values())  # every column documented
    assert first.figures and len(first.figures[0][1].axes) == 2  # value function and weighting, one figure


def test_a_responder_who_always_names_the_first_option_determines_nothing(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))
    from docs.examples.always_first import AlwaysFirst

    result = run_analysis("risk-attitudes", StoredModel(AlwaysFirst(), Store(), progress=False), budget=9, rounds=2,
                          n_boot=20)
    assert math.isnan(result.headline.value) and result.details["n_undetermined"] == 9  # ties place no CE
    assert "do not determine" in result.notes[0]
