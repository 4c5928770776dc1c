"""Scoring in valuelab.frameworks: the circumplex check, the conditional logit, DailyDilemmas' percentages,
the random-respondent baseline and the figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from valuelab.frameworks.aristotle import VIRTUES
from valuelab.frameworks.dilemmas import (
    fit_weights,
    random_choices,
    score_choices,
    selected_minus_neglected,
    tag_differences,
)
from valuelab.frameworks.figures import (
    circle_and_panels,
    cultural_map,
    foundation_bars,
    framework_panels,
    robustness_figure,
    schwartz_circle,
    tag_bars,
)
from valuelab.frameworks.maslow import MASLOW_NEEDS
from valuelab.frameworks.plutchik import EMOTIONS, PRIMARY_EMOTIONS
from valuelab.frameworks.schwartz import REFINED_VALUES, circumplex_fit
from valuelab.items.dilemmas import TAG_LEVELS, TAG_VOCABULARIES, Action, Dilemma, dilemmas_frame, load_dilemmas
from valuelab.stats import frame_interval, jsonable

ORDER = list(REFINED_VALUES)


@pytest.fixture(scope="module")
def actions() -> pd.DataFrame:
    return dilemmas_frame(load_dilemmas("everyday"))


def test_circumplex_fit_finds_a_sinusoidal_profile_and_its_peak():
    peak = ORDER.index("universalism-concern")
    profile = {v: math.cos(2 * math.pi * (k - peak) / len(ORDER)) for k, v in enumerate(ORDER)}
    fit = circumplex_fit(profile, n_permutations=200)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["peak"] == "universalism-concern"
    assert fit["p_value"] < 0.01


def test_circumplex_fit_of_a_scrambled_profile_is_weak():
    rng = np.random.default_rng(3)
    fit = circumplex_fit(dict(zip(ORDER, rng.normal(size=len(ORDER)), strict=True)), n_permutations=200)
    assert fit["r2"] < 0.5
    assert fit["p_value"] > 0.05
    assert math.isnan(circumplex_fit({"hedonism": 1.0})["r2"])


def test_conditional_logit_recovers_planted_weights(actions):
    truth = {"care": 1.5, "loyalty": -1.0, "liberty": 0.5}
    diffs = tag_differences(actions, "mft", TAG_LEVELS["mft"])
    beta = np.array([truth.get(t, 0.0) for t in diffs.columns])
    p_a = pd.Series(1 / (1 + np.exp(-(diffs.to_numpy() @ beta))), index=diffs.index)
    weights = fit_weights(p_a, diffs)
    for tag in TAG_LEVELS["mft"]:
        assert weights[tag] == pytest.approx(truth.get(tag, 0.0), abs=1e-4)


def test_tag_differences_are_a_minus_b():
    frame = pd.DataFrame([
        {"dilemma_id": "d1", "action": "a", "mft": ("care",)},
        {"dilemma_id": "d1", "action": "b", "mft": ("loyalty", "care")},
    ])
    diffs = tag_differences(frame, "mft", ["care", "loyalty", "purity"])
    assert diffs.loc["d1"].tolist() == [0.0, -1.0, 0.0]


def test_selected_minus_neglected_matches_the_dailydilemmas_formula():
    frame = pd.DataFrame([
        {"dilemma_id": "d1", "action": "a", "mft": ("care",)},
        {"dilemma_id": "d1", "action": "b", "mft": ("loyalty",)},
        {"dilemma_id": "d2", "action": "a", "mft": ("loyalty",)},
        {"dilemma_id": "d2", "action": "b", "mft": ("care", "purity")},
    ])
    # d1: a chosen (care selected, loyalty neglected); d2: b chosen (care, purity selected; loyalty neglected)
    table = selected_minus_neglected(pd.Series([1.0, 0.0], index=["d1", "d2"]), frame, "mft",
                                     ["care", "loyalty", "purity", "authority"])
    assert table.loc["care", "smn"] == 100.0
    assert table.loc["loyalty", "smn"] == -100.0
    assert table.loc["purity", "smn"] == 100.0
    assert math.isnan(table.loc["authority", "smn"])
    soft = selected_minus_neglected(pd.Series([0.75, 0.5], index=["d1", "d2"]), frame, "mft", ["care"])
    assert soft.loc["care", "selected"] == pytest.approx(0.75 + 0.5)
    assert soft.loc["care", "smn"] == pytest.approx(100 * (1.25 - 0.75) / 2)


def test_random_respondent_scores_flat_within_its_interval(actions):
    ids = pd.Index(actions["dilemma_id"].unique())
    p_a = pd.Series(random_choices(len(ids), 60, np.random.default_rng(7)), index=ids)
    levels = {k: TAG_LEVELS[k] for k in ("higher_order", "mft")}
    scores = score_choices(p_a, actions, levels, random_answers=60, n_boot=60, n_random=60)
    assert set(scores["level"]) == set(levels)
    covers_zero = (scores["weight_lo"] < 0) & (scores["weight_hi"] > 0)
    assert covers_zero.mean() >= 0.8  # 95 % intervals: about one in twenty may miss
    assert (scores["weight"].abs() < 0.3).all()
    inside = (scores["smn"] >= scores["smn_baseline_lo"]) & (scores["smn"] <= scores["smn_baseline_hi"])
    assert inside.mean() >= 0.8


def test_planted_choices_put_the_planted_tag_on_top(actions):
    diffs = tag_differences(actions, "higher_order", TAG_LEVELS["higher_order"])
    p_a = pd.Series(np.where(diffs["self-transcendence"] > 0, 0.95,
                             np.where(diffs["self-transcendence"] < 0, 0.05, 0.5)), index=diffs.index)
    scores = score_choices(p_a, actions, {"higher_order": TAG_LEVELS["higher_order"]}, random_answers=60,
                           n_boot=40, n_random=40).set_index("tag")
    assert scores["weight"].idxmax() == "self-transcendence"
    top = scores.loc["self-transcendence"]
    assert top["weight_lo"] > top["weight_baseline_hi"]
    assert scores["smn"].idxmax() == "self-transcendence"


def random_dilemmas(n: int, seed: int = 0) -> list[Dilemma]:
    """In-memory dilemmas with random tags at every level (no validation: scoring takes any tags)."""
    rng = np.random.default_rng(seed)

    def tags(framework: str) -> tuple[str, ...]:
        vocabulary = TAG_VOCABULARIES[framework]
        return tuple(str(t) for t in rng.choice(vocabulary, rng.integers(1, 3), replace=False))

    return [Dilemma(f"r-{k}", "everyday", "work", "You decide.", "Do you?", ("Will you?", "Should you?"),
                    tuple(Action(side, f"{side}{k}", *(tags(f) for f in TAG_VOCABULARIES)) for side in "ab"),
                    ("you",), False) for k in range(n)]


def test_maslow_virtue_and_emotion_levels_leave_the_other_scores_unchanged():
    """The new levels are scored like the foundations, and adding them moves no earlier number: the bootstrap
    resamples and the random respondents are drawn the same, whatever the levels."""
    actions = dilemmas_frame(random_dilemmas(50))
    p_a = pd.Series(np.random.default_rng(1).uniform(size=50), index=[f"r-{k}" for k in range(50)])
    earlier = {k: v for k, v in TAG_LEVELS.items() if k not in ("maslow", "aristotle", "plutchik")}
    assert list(earlier) == ["schwartz", "basic", "higher_order", "mft", "wvs"]
    options = {"random_answers": 6, "n_boot": 30, "n_random": 20, "seed": 4}
    before = score_choices(p_a, actions, earlier, **options)
    after = score_choices(p_a, actions, TAG_LEVELS, **options)
    pd.testing.assert_frame_equal(after[after["level"].isin(list(earlier))].reset_index(drop=True), before)
    new = after[~after["level"].isin(list(earlier))]
    assert list(new["level"].unique()) == ["maslow", "aristotle", "plutchik"]
    assert list(new.query("level == 'maslow'")["tag"]) == MASLOW_NEEDS
    assert new[["weight_lo", "weight_baseline_lo", "smn_lo"]].notna().all().all()


def test_maslow_virtue_and_emotion_vocabularies():
    assert MASLOW_NEEDS == ["physiological", "safety", "love-belonging", "esteem", "self-actualization"]
    assert len(VIRTUES) == len(set(VIRTUES)) == 10 and "righteous-indignation" in VIRTUES
    assert EMOTIONS[:8] == PRIMARY_EMOTIONS and len(set(EMOTIONS)) == 16
    for framework, vocabulary in (("maslow", MASLOW_NEEDS), ("aristotle", VIRTUES), ("plutchik", EMOTIONS)):
        assert TAG_VOCABULARIES[framework] == TAG_LEVELS[framework] == vocabulary


def test_interval_ignores_nan_columns():
    draws = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [math.nan] * 3})
    table = frame_interval(draws)
    assert table.loc["x", "lo"] < table.loc["x", "hi"]
    assert math.isnan(table.loc["y", "lo"])
    assert jsonable({"a": np.float64(math.nan), "b": [np.int64(2)]}) == {"a": None, "b": [2]}


def test_figures_render(tmp_path):
    refined = pd.DataFrame({"score": np.linspace(-1, 1, len(ORDER)), "lo": -1.5, "hi": 1.5,
                            "baseline_lo": -0.2, "baseline_hi": 0.2}, index=ORDER)
    foundations = pd.DataFrame({"score": [3.0, 2.0], "lo": [2.5, 1.5], "hi": [3.5, 2.5]},
                               index=["care", "loyalty"])
    figures = [schwartz_circle(refined), foundation_bars(foundations, zero=2.5),
               cultural_map(0.3, -0.2, x_interval=(0.1, 0.5), y_interval=(-0.4, 0.0),
                            baseline=(-0.1, 0.1, -0.1, 0.1)),
               robustness_figure({"order_effect": 0.1, "acquiescence": None}, {"order_effect": 0.2}),
               tag_bars(pd.DataFrame({"score": [0.5, -0.2]}, index=["esteem", "safety"]), MASLOW_NEEDS)]
    emotions = pd.DataFrame({"score": np.linspace(-1, 1, 16), "lo": -2.0, "hi": 2.0, "baseline_lo": -0.3,
                             "baseline_hi": 0.3}, index=EMOTIONS)
    panels = framework_panels({"Maslow": (emotions.iloc[:0], MASLOW_NEEDS), "Plutchik": (emotions, EMOTIONS)})
    assert [len(ax.get_xticklabels()) for ax in panels.axes] == [0, 16]
    beside = circle_and_panels(refined, {"Maslow": (emotions.iloc[:0], MASLOW_NEEDS), "Aristotle": (
        emotions.iloc[:0], VIRTUES), "Plutchik": (emotions, EMOTIONS)})
    assert len(beside.axes) == 4 and beside.axes[0].name == "polar"  # Maslow and Aristotle share a row
    figures += [panels, beside]
    for k, fig in enumerate(figures):
        assert isinstance(fig, Figure)
        fig.savefig(tmp_path / f"{k}.png")
        assert (tmp_path / f"{k}.png").stat().st_size > 1000
