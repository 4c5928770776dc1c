"""Figures for framework scores: the Schwartz circle, foundation (or any tag) bars, the cultural map, the
robustness panel.

Figures are built on matplotlib's Agg canvas without pyplot, so no global backend state is touched; save them
with `fig.savefig(path)`. Every score is drawn with its interval and the uniform-random respondent's range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.figures import new_figure, styled
from valuelab.frameworks.mft import FOUNDATIONS
from valuelab.frameworks.schwartz import HIGHER_ORDER, REFINED_VALUES
from valuelab.frameworks.wvs import POLES, country_positions

BASELINE_COLOUR = "0.85"
HIGHER_ORDER_COLOURS = {"openness-to-change": "tab:orange", "self-enhancement": "tab:red",
                        "conservation": "tab:blue", "self-transcendence": "tab:green"}


def _figure(width: float, height: float, polar: bool = False) -> tuple[Figure, object]:
    return new_figure(width, height, subplot_kw={"projection": "polar"} if polar else None)


def _column(scores: pd.DataFrame, name: str) -> np.ndarray:
    return scores[name].to_numpy(float) if name in scores else np.full(len(scores), math.nan)


def schwartz_circle(scores: pd.DataFrame, title: str = "Schwartz values", label: str = "score") -> Figure:
    """The 19 refined values around a circle in circumplex order, each at its radial score.

    `scores` is indexed by refined value with columns `score` and optionally `lo`, `hi` (interval) and
    `baseline_lo`, `baseline_hi` (the random respondent's range, drawn as a grey band).
    """
    fig, ax = _figure(7, 7, polar=True)
    _circle(ax, scores, title, label)
    return fig


def _circle(ax, scores: pd.DataFrame, title: str, label: str) -> None:
    order = list(REFINED_VALUES)
    frame = scores.reindex(order)
    theta = np.linspace(0, 2 * np.pi, len(order), endpoint=False)
    closed = np.append(theta, theta[0])
    values = frame["score"].to_numpy(float)
    lo, hi = _column(frame, "lo"), _column(frame, "hi")
    base_lo, base_hi = _column(frame, "baseline_lo"), _column(frame, "baseline_hi")
    finite = np.concatenate([a[np.isfinite(a)] for a in (values, lo, hi, base_lo, base_hi)])
    reach = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-6) * 1.15
    ax.set_rlim(-reach, reach)
    ax.plot(np.linspace(0, 2 * np.pi, 200), np.zeros(200), color="0.4", lw=0.8, ls="--")
    if np.isfinite(base_lo).any():
        ax.fill_between(closed, np.append(base_lo, base_lo[0]), np.append(base_hi, base_hi[0]),
                        color=BASELINE_COLOUR, label="random respondent (95%)")
    if np.isfinite(lo).any():
        ax.fill_between(closed, np.append(lo, lo[0]), np.append(hi, hi[0]), color="tab:purple", alpha=0.2,
                        label="95% interval")
    ax.plot(closed, np.append(values, values[0]), color="tab:purple", marker="o", label=label)
    ax.set_xticks(theta)
    colours = {v: c for h, c in HIGHER_ORDER_COLOURS.items() for v in HIGHER_ORDER[h]}
    ax.set_xticklabels(order, fontsize=7)
    for tick, value in zip(ax.get_xticklabels(), order, strict=True):
        tick.set_color(colours.get(value, "0.3"))
    ax.set_title(title)
    ax.legend(loc="lower left", bbox_to_anchor=(-0.1, -0.12), fontsize=7)


def foundation_bars(scores: pd.DataFrame, title: str = "Moral foundations", label: str = "score",
                    zero: float = 0.0) -> Figure:
    """One bar per moral foundation with its interval, over the random respondent's range (grey)."""
    return tag_bars(scores, FOUNDATIONS, title, label, zero)


def tag_bars(scores: pd.DataFrame, order: Sequence[str], title: str = "", label: str = "score",
             zero: float = 0.0) -> Figure:
    """One bar per tag of a vocabulary, in `order`, with its interval over the random respondent's range (grey).

    `scores` is indexed by tag with columns `score` and optionally `lo`, `hi`, `baseline_lo`, `baseline_hi`;
    tags it lacks are left out.
    """
    fig, ax = _figure(7, 4)
    _bars(ax, scores, order, title, label, zero)
    return fig


def framework_panels(panels: Mapping[str, tuple[pd.DataFrame, Sequence[str]]], label: str = "score",
                     zero: float = 0.0, row_tags: int = 16) -> Figure:
    """Several vocabularies' bars in one figure: a panel per title -> (scores, order), drawn as `tag_bars`.

    Panels fill rows of at most `row_tags` tags, each as wide as its vocabulary is long, so short vocabularies
    share a row (Maslow's 5 needs beside the 10 virtues, the 16 emotions below them).
    """
    with styled():
        fig = Figure(figsize=(9, 3.0 * len(_rows(panels, row_tags))), layout="constrained")
        _panels(fig, panels, label, zero, row_tags)
    return fig


def circle_and_panels(refined: pd.DataFrame, panels: Mapping[str, tuple[pd.DataFrame, Sequence[str]]],
                      title: str = "Schwartz values", label: str = "score", row_tags: int = 16) -> Figure:
    """The Schwartz circle (as `schwartz_circle`) with further vocabularies' bars beside it (as
    `framework_panels`): one figure, as tall as the circle alone, for a report section that shows one."""
    with styled():
        fig = Figure(figsize=(16, 7), layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[7, 9])
        _circle(left.add_subplot(projection="polar"), refined, title, label)
        _panels(right, panels, label, 0.0, row_tags)
    return fig


def _rows(panels: Mapping[str, tuple[pd.DataFrame, Sequence[str]]], row_tags: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for title, (_, order) in panels.items():
        if rows and sum(len(panels[t][1]) for t in rows[-1]) + len(order) <= row_tags:
            rows[-1].append(title)
        else:
            rows.append([title])
    return rows


def _panels(fig, panels: Mapping[str, tuple[pd.DataFrame, Sequence[str]]], label: str, zero: float,
            row_tags: int) -> None:
    rows = _rows(panels, row_tags)
    for r, (sub, row) in enumerate(zip(np.atleast_1d(fig.subfigures(len(rows))), rows, strict=True)):
        axes = np.atleast_1d(sub.subplots(1, len(row), width_ratios=[max(len(panels[t][1]), 3) for t in row]))
        for k, (ax, title) in enumerate(zip(axes, row, strict=True)):
            scores, order = panels[title]
            _bars(ax, scores, order, title, label if k == 0 else "", zero, legend=r == 0 and k == 0, slant=True)


def _bars(ax, scores: pd.DataFrame, order: Sequence[str], title: str, label: str, zero: float,
          legend: bool = True, slant: bool | None = None) -> None:
    frame = scores.reindex([t for t in order if t in scores.index])
    x = np.arange(len(frame))
    values = frame["score"].to_numpy(float)
    base_lo, base_hi = _column(frame, "baseline_lo"), _column(frame, "baseline_hi")
    for k in range(len(frame)):
        if np.isfinite(base_lo[k]):
            ax.fill_between([k - 0.45, k + 0.45], base_lo[k], base_hi[k], color=BASELINE_COLOUR, zorder=0,
                            label="random respondent (95%)" if k == 0 else None)
    lo, hi = _column(frame, "lo"), _column(frame, "hi")
    error = np.vstack([values - lo, hi - values]) if np.isfinite(lo).any() else None
    ax.bar(x, values - zero, bottom=zero, color="tab:blue", alpha=0.8, yerr=error, capsize=3, label=label)
    ax.axhline(zero, color="0.4", lw=0.8)
    slanted = len(frame) > 8 if slant is None else slant  # long vocabularies, narrow panels: no overlap
    if slanted:
        ax.set_xticks(x, list(frame.index), rotation=35, ha="right", fontsize=7)
    else:
        ax.set_xticks(x, list(frame.index))
    ax.set_ylabel(label)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=7)
    if not np.isfinite(values).any():
        ax.text(0.5, 0.5, "not identified\n(too few dilemmas)",
                transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.4")


LABELLED_COUNTRIES = {"Sweden", "Japan", "Germany", "United States", "Great Britain", "China", "Russia", "India",
                      "Nigeria", "Brazil", "Mexico", "Pakistan", "Egypt", "Jordan", "South Korea", "Netherlands",
                      "Poland", "Argentina", "Iran", "Zimbabwe", "Czechia"}
"""The countries named on the map (all are drawn); a spread over the regions of the published map."""


def cultural_map(x: float, y: float, *, x_interval: tuple[float, float] | None = None,
                 y_interval: tuple[float, float] | None = None,
                 baseline: tuple[float, float, float, float] | None = None,
                 title: str = "Cultural map position", limit: float = 1.0, countries: bool = True) -> Figure:
    """The respondent on the Inglehart-Welzel map: x survival→self-expression, y traditional→secular-rational.

    With `countries`, a second panel beside it shows the published country positions (Gapminder's IVS
    indicators, latest wave). They are factor scores over country means (Inglehart & Welzel 2005), while the
    respondent's is a single standardised projection (or a choice weight): the two do not share a scale, so
    they are drawn side by side, never on one axis, and only the quadrants compare. `baseline` is the random
    respondent's (x_lo, x_hi, y_lo, y_hi) range, drawn as a grey box.
    """
    (neg_x, pos_x), (neg_y, pos_y) = POLES["surv-selfexp"], POLES["trad-secular"]
    fig, axes = new_figure(11 if countries else 6, 5.5 if countries else 6, ncols=2 if countries else 1)
    ax = axes[0] if countries else axes
    reach = max(limit, abs(x) * 1.2 if math.isfinite(x) else 0, abs(y) * 1.2 if math.isfinite(y) else 0)
    if baseline is not None and all(map(math.isfinite, baseline)):
        x_lo, x_hi, y_lo, y_hi = baseline
        ax.fill_between([x_lo, x_hi], y_lo, y_hi, color=BASELINE_COLOUR, label="random respondent (95%)")
    xerr = None if x_interval is None else [[x - x_interval[0]], [x_interval[1] - x]]
    yerr = None if y_interval is None else [[y - y_interval[0]], [y_interval[1] - y]]
    ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", color="tab:red", capsize=4, label="respondent")
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left")
    panels = [ax]
    if countries:
        positions = country_positions()
        right = axes[1]
        right.scatter(positions["self_expression"], positions["secular_rational"], s=10, color="tab:blue")
        for row in positions[positions["country"].isin(LABELLED_COUNTRIES)].itertuples():
            right.annotate(row.country, (row.self_expression, row.secular_rational), fontsize=6,
                           xytext=(2, 2), textcoords="offset points")
        right.set_title("Published country positions (another scale)")
        right.text(0.01, 0.01, "Gapminder IVS indicators from WVS/EVS, CC BY 4.0; latest wave",
                   transform=right.transAxes, fontsize=6, color="0.4")
        panels.append(right)
    for panel in panels:
        panel.axhline(0, color="0.5", lw=0.8)
        panel.axvline(0, color="0.5", lw=0.8)
        panel.set_xlabel(f"{neg_x}  ←→  {pos_x}")
        panel.set_ylabel(f"{neg_y}  ←→  {pos_y}")
    return fig


def robustness_figure(robustness: Mapping[str, float | None], baselines: Mapping[str, float | None]
                      | None = None, title: str = "Robustness") -> Figure:
    """The robustness numbers as horizontal bars, with the random respondent's value marked where known."""
    names = [k for k, v in robustness.items() if isinstance(v, int | float) and math.isfinite(v)]
    fig, ax = _figure(7, 0.5 * len(names) + 1.5)
    y = np.arange(len(names))
    ax.barh(y, [float(robustness[k]) for k in names], color="tab:gray")
    marked = False
    for k, name in enumerate(names):
        value = (baselines or {}).get(name)
        if isinstance(value, int | float) and math.isfinite(value):
            ax.plot([value], [k], marker="|", markersize=18, color="tab:red",
                    label=None if marked else "random respondent")
            marked = True
    ax.set_yticks(y, names)
    ax.axvline(0, color="0.4", lw=0.8)
    ax.invert_yaxis()
    ax.set_title(title)
    if marked:
        ax.legend(fontsize=7)
    return fig
