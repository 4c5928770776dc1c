"""Survey scoring: pure functions that turn per-item expected ratings into framework scores; no model is asked.

Scoring keys follow the published methods, never the copyrighted item wording: Schwartz's PVQ-RR coding
instructions (Schwartz 2021; Schwartz et al. 2012) with MRAT centring; MFQ foundation means and catch-item rule
(Graham et al. 2011) on the MFQ-2 foundations (Atari et al. 2023) plus liberty (Iyer et al. 2012); the
Inglehart-Welzel map items and loadings (Inglehart & Welzel 2005, p. 49). Instruments are loaded and validated
by `valuelab.items.surveys`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import pandas as pd

from valuelab.errors import InputError
from valuelab.items.surveys import Instrument, load_instrument
from valuelab.items.vocabularies import POLES


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _instrument(instrument: Instrument | None, name: str, method: str) -> Instrument:
    inst = instrument if instrument is not None else load_instrument(name)
    if inst.method != method:
        raise InputError(f"instrument {inst.id!r} is scored by {inst.method}, not {method}", file=inst.path,
                         field="scoring.method")
    return inst


def _ratings(inst: Instrument, ratings: Mapping[str, float]) -> dict[str, float]:
    """Check ratings against the instrument; a missing or NaN rating (a refusal) is left out of the means."""
    known = {it.id: it for it in inst.items}
    checked: dict[str, float] = {}
    for iid, value in ratings.items():
        if iid not in known:
            raise InputError(f"no item {iid!r} in instrument {inst.id!r}", file=inst.path, field=iid)
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise InputError(f"rating {value!r} for item {iid!r} is not a number", field=iid) from None
        if math.isnan(x):
            continue
        scale = known[iid].scale
        if not scale.low <= x <= scale.high:
            raise InputError(f"rating {x:g} for item {iid!r} is outside its scale "
                             f"{scale.low:g}..{scale.high:g}", field=iid)
        checked[iid] = x
    return checked


def _acquiescence(inst: Instrument, r: dict[str, float]) -> tuple[float, int]:
    """Yes-saying: the [0, 1] positions of an item group and of its reverse-keyed items, summed, minus 1.

    A consistent respondent answers the two in opposite ways (0); one who agrees with everything
    scores up to +1, one who disagrees with everything down to -1. Groups share dimension and part.
    """
    groups: dict[tuple[str | None, str | None], dict[int, list[float]]] = {}
    for it in inst.items:
        if not it.catch and it.id in r:
            position = (r[it.id] - it.scale.low) / (it.scale.high - it.scale.low)
            groups.setdefault((it.dimension, it.part), {1: [], -1: []})[it.keyed].append(position)
    paired = [g for g in groups.values() if g[1] and g[-1]]
    return (_mean([_mean(g[1]) + _mean(g[-1]) - 1 for g in paired]),
            sum(len(g[1]) + len(g[-1]) for g in paired))


def score_schwartz(ratings: Mapping[str, float], instrument: Instrument | None = None) -> pd.DataFrame:
    """Schwartz value scores from expected ratings (item id -> rating on the instrument's scale).

    Following the PVQ-RR key: value means over the positively keyed portraits, MRAT = the mean over all
    of them, centred score = raw - MRAT (never divided by the SD); the 10 basic and 4 higher-order
    values pool the items of their refined values. Reverse-keyed contrast items are reflected and
    reported on their own (level "contrast") and in the acquiescence index, so that they cannot
    distort MRAT. Columns: level (refined, basic, higher-order, contrast, summary), name,
    score (centred), raw, n_items.
    """
    inst = _instrument(instrument, "schwartz", "schwartz-mrat")
    r = _ratings(inst, ratings)
    forward = [it for it in inst.items if it.keyed == 1 and it.id in r]
    mrat = _mean([r[it.id] for it in forward])
    rows = []

    def add(level: str, name: str, values: list[float]) -> None:
        raw = _mean(values)
        rows.append({"level": level, "name": name, "score": raw - mrat, "raw": raw, "n_items": len(values)})

    def pooled(refined: list[str]) -> list[float]:
        return [r[it.id] for it in forward if it.dimension in refined]

    for value in inst.dimensions:
        add("refined", value, pooled([value]))
    for name, members in inst.scoring["basic"].items():
        add("basic", name, pooled(members))
    for name, members in inst.scoring["higher_order"].items():
        add("higher-order", name, pooled(members))
    for value in inst.dimensions:
        contrast = [it for it in inst.items if it.keyed == -1 and it.dimension == value]
        if contrast:
            add("contrast", value, [it.keyed_value(r[it.id]) for it in contrast if it.id in r])
    rows.append({"level": "summary", "name": "mrat", "score": mrat, "raw": mrat, "n_items": len(forward)})
    acquiescence, n = _acquiescence(inst, r)
    rows.append({"level": "summary", "name": "acquiescence", "score": acquiescence, "raw": acquiescence,
                 "n_items": n})
    return pd.DataFrame(rows, columns=["level", "name", "score", "raw", "n_items"])


def score_mft(ratings: Mapping[str, float], instrument: Instrument | None = None) -> pd.DataFrame:
    """Moral-foundation scores from expected ratings (item id -> rating on the item's scale).

    Foundation score = mean of its relevance and judgment items, reverse-keyed ones reflected (as in
    MFQ scoring); individualising - binding = mean(care, equality) - mean(loyalty, authority, purity)
    (Graham et al. 2009). Catch items are not scored: a low-expected one fails at or above the rule's
    threshold, a high-expected one at or below it (the MFQ-30 rule). Columns: level (foundation, index,
    catch, summary), name, score, n_items, passed (catch rows only).
    """
    inst = _instrument(instrument, "mft", "mft-means")
    r = _ratings(inst, ratings)
    rows, means, counts = [], {}, {}

    def add(level: str, name: str, score: float, n: int, passed: bool | None = None) -> None:
        rows.append({"level": level, "name": name, "score": score, "n_items": n, "passed": passed})

    for foundation in inst.dimensions:
        values = [it.keyed_value(r[it.id]) for it in inst.items if it.dimension == foundation and it.id in r]
        means[foundation], counts[foundation] = _mean(values), len(values)
        add("foundation", foundation, means[foundation], len(values))
    individualising, binding = inst.scoring["individualising"], inst.scoring["binding"]
    add("index", "individualising-minus-binding",
        _mean([means[f] for f in individualising]) - _mean([means[f] for f in binding]),
        sum(counts[f] for f in individualising + binding))
    rule, verdicts = inst.scoring["catch_rule"], []
    for it in (it for it in inst.items if it.catch):
        if it.id not in r:
            add("catch", it.id, math.nan, 0)
            continue
        x = r[it.id]
        if it.expect == "low":
            passed = x < rule["low_fails_at_or_above"]
        else:
            passed = x > rule["high_fails_at_or_below"]
        verdicts.append(passed)
        add("catch", it.id, x, 1, passed)
    add("summary", "catch", _mean([float(v) for v in verdicts]), len(verdicts),
        all(verdicts) if verdicts else None)
    acquiescence, n = _acquiescence(inst, r)
    add("summary", "acquiescence", acquiescence, n)
    return pd.DataFrame(rows, columns=["level", "name", "score", "n_items", "passed"])


def score_wvs(ratings: Mapping[str, float], instrument: Instrument | None = None) -> pd.DataFrame:
    """Cultural-map position from expected ratings (item id -> rating in the item's original codes).

    Each item is recoded to the keyed direction (reflected when keyed -1, so higher always points to
    secular-rational or self-expression) and standardised to [-1, 1] about its scale midpoint. An
    indicator is the mean of its items (the autonomy index Y003 has four); a dimension score is the
    unweighted mean of its five indicators. This is a simplified projection for one respondent, not
    the official map coordinates, which are factor scores over country means (Inglehart & Welzel 2005).
    Columns: level (item, indicator, dimension), name, dimension, indicator, raw (original code, or
    for a composite indicator the signed sum of its codes, i.e. the IVS index), recoded, score, n_items.
    """
    inst = _instrument(instrument, "wvs", "iw-projection")
    r = _ratings(inst, ratings)
    rows, scores = [], {}
    for code, spec in inst.scoring["indicators"].items():
        members = [inst.item(iid) for iid in spec["items"]]
        standardised = []
        for it in members:
            x = r.get(it.id, math.nan)
            recoded = it.keyed_value(x)
            standardised.append(it.scale.standardise(recoded))
            rows.append({"level": "item", "name": it.id, "dimension": it.dimension, "indicator": code,
                         "raw": x, "recoded": recoded, "score": standardised[-1], "n_items": int(it.id in r)})
        if len(members) == 1:
            raw, recoded = rows[-1]["raw"], rows[-1]["recoded"]
        else:
            raw = recoded = sum(it.keyed * r.get(it.id, math.nan) for it in members)
        scores[code] = _mean(standardised)
        rows.append({"level": "indicator", "name": code, "dimension": spec["dimension"], "indicator": code,
                     "raw": raw, "recoded": recoded, "score": scores[code],
                     "n_items": sum(it.id in r for it in members)})
    for dimension in POLES:
        values = [s for code, s in scores.items()
                  if inst.scoring["indicators"][code]["dimension"] == dimension and not math.isnan(s)]
        rows.append({"level": "dimension", "name": dimension, "dimension": dimension, "indicator": None,
                     "raw": math.nan, "recoded": math.nan, "score": _mean(values), "n_items": len(values)})
    return pd.DataFrame(rows, columns=["level", "name", "dimension", "indicator", "raw", "recoded", "score",
                                       "n_items"])


SCORERS: dict[str, Callable[..., pd.DataFrame]] = {
    "schwartz-mrat": score_schwartz, "mft-means": score_mft, "iw-projection": score_wvs,
}
"""Scoring method -> its scoring function."""
