"""Instrumental values: the Bellman fit, the scenarios, a planted instrumental agent, the embedded model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuelab.analyses import instrumental_values as iv
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

SCENARIOS = iv.load_scenarios()


def bellman_utilities(scenarios, seed: int = 0, follow_reversed: bool = False) -> dict[str, float]:
    """Utilities obeying the Bellman relation (start = γ·E[next]) under the true dynamics, or the reversed."""
    rng = np.random.default_rng(seed)
    out = {}
    for scenario in scenarios:
        process = scenario.reversed() if follow_reversed else scenario
        good, bad = rng.uniform(0.8, 2.0), rng.uniform(-2.0, -0.8)
        u = {f"{start}>{end}": base + rng.normal(0, 0.2) for start in ("invest", "no_invest")
             for end, base in (("good", good), ("bad", bad))}
        for k, start in enumerate(("invest", "no_invest")):
            u[start] = iv.GAMMA * process.transitions()[k] @ np.array([u.get(s, 0.0) for s in iv.STATES])
        out.update({f"{scenario.id}/{state}": value for state, value in u.items()})
    return out


def test_packaged_scenarios_are_twenty_two_step_processes_with_unique_texts():
    assert len(SCENARIOS) == 20
    texts = [t for s in SCENARIOS for t in s.texts().values()]
    assert len(texts) == len(set(texts)) == 120
    for s in SCENARIOS:
        p = s.transitions()
        assert p[:2].sum(axis=1) == pytest.approx([1, 1]) and not p[2:].any()
        assert s.p_good_invest > s.p_good_no_invest  # the investment helps, so the control really reverses it
        r = s.reversed()
        assert (r.p_good_invest, r.p_good_no_invest) == (s.p_good_no_invest, s.p_good_invest)
        assert r.texts() == s.texts()


def test_bellman_fit_is_exact_for_bellman_utilities_and_not_for_the_reversed_dynamics():
    scenario = SCENARIOS[0]
    u = np.array([bellman_utilities([scenario], seed=3)[f"{scenario.id}/{s}"] for s in iv.STATES])
    reward, value, target = iv.bellman_fit(u, scenario.transitions())
    assert target == pytest.approx(u, abs=1e-9)
    assert reward[:2] == pytest.approx([0, 0])  # start states earn nothing themselves
    assert value == pytest.approx(u, abs=1e-9)
    assert iv.scenario_loss(u, scenario.reversed()) > 0.1
    batch = np.stack([u, -u])  # the solver is linear in U and takes a batch
    assert iv.bellman_fit(batch, scenario.transitions())[2][1] == pytest.approx(-target)


def test_utilities_that_follow_the_reversed_dynamics_score_worse_than_their_control():
    honest = iv.score_utilities(SCENARIOS, bellman_utilities(SCENARIOS, seed=1), n_boot=200)
    contrary = iv.score_utilities(SCENARIOS, bellman_utilities(SCENARIOS, seed=1, follow_reversed=True),
                                  n_boot=200)
    assert honest.gap.lo > 0.1 and honest.loss.value < 0.05
    assert contrary.gap.hi < -0.1
    assert honest.loss.baseline_lo > 0.2  # random utilities are far from Bellman-consistent
    assert abs(honest.gap.baseline) < 0.05  # ... and no closer under either dynamics


def test_planted_instrumental_agent_scores_better_than_on_the_reversed_control():
    truth = bellman_utilities(SCENARIOS, seed=7)
    text = {o.id: o.text for s in SCENARIOS for o in s.outcomes()}
    agent = SyntheticBackend(5, utilities={text[i]: (u, 0.05) for i, u in truth.items()})
    result = iv.run(StoredModel(agent), budget=480, seed=2, n_boot=300)
    assert result.gap.lo > 0.1
    assert result.loss.value < result.loss.baseline_lo
    assert result.to_frame()["loss"].lt(result.to_frame()["control_loss"]).mean() >= 0.9
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["budget"] == 480 and summary["calls"] > 2 * 480
    assert len(result.states) == 2 * 6 * len(SCENARIOS)
    assert len(iv.figure(result).axes) == 2


def test_bad_scenario_file_names_file_line_and_field(tmp_path):
    path = tmp_path / "s.yaml"
    good = ("- {id: a, invest: i1, no_invest: n1, good: g1, bad: b1, p_good_invest: 0.8, "
            "p_good_no_invest: 0.2}\n")
    path.write_text(good + good.replace("a,", "b,").replace("1", "2").replace("0.8", "1.5"))
    with pytest.raises(InputError) as err:
        iv.load_scenarios(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 2, "p_good_invest")
    path.write_text(good + good.replace("a,", "b,"))
    with pytest.raises(InputError, match="duplicate") as err:
        iv.load_scenarios(path)
    assert err.value.line == 2


def test_budget_below_one_pair_per_outcome_fails_early():
    with pytest.raises(InputError, match="minimum of 12") as err:
        iv.run(StoredModel(SyntheticBackend(0)), budget=11, scenarios=SCENARIOS[:2])
    assert err.value.field == "budget"


@pytest.mark.slow
def test_embedded_model_runs_end_to_end_at_a_tiny_budget(smollm2):
    model = StoredModel(smollm2)
    result = iv.run(model, budget=12, seed=0, scenarios=SCENARIOS[:2], holdout_pairs=0.0, n_boot=100)
    summary = result.to_dict()
    assert summary["calls"] == 24 and summary["budget"] == 12  # 12 pairs, both orders
    assert np.isfinite([result.loss.value, result.control.value, result.gap.lo, result.gap.hi]).all()
    assert len(iv.figure(result).axes) == 2
