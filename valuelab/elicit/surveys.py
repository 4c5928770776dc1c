"""Survey instruments: valuelab's own Schwartz, moral-foundations and cultural-map items (surveys/SCHEMA.md).

This part holds the data side: loading and validating an instrument file, and pure scoring functions
that turn per-item expected ratings into scores. Scoring keys follow the published methods, never the
copyrighted item wording: Schwartz's PVQ-RR coding instructions (Schwartz 2021; Schwartz et al. 2012)
with MRAT centring; MFQ foundation means and catch-item rule (Graham et al. 2011) on the MFQ-2
foundations (Atari et al. 2023) plus liberty (Iyer et al. 2012); the Inglehart-Welzel map items and
loadings (Inglehart & Welzel 2005, p. 49).
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import ascii_uppercase
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from valuelab.elicit.text_check import TEXT_SUBSAMPLE, off_label, text_agreement
from valuelab.errors import InputError
from valuelab.frameworks.figures import cultural_map, foundation_bars, robustness_figure, schwartz_circle
from valuelab.frameworks.mft import FOUNDATIONS
from valuelab.frameworks.schwartz import BASIC_VALUES, HIGHER_ORDER, REFINED_VALUES, circumplex_fit
from valuelab.frameworks.wvs import POLES, quadrant_countries
from valuelab.items.files import seeded_subset
from valuelab.models.base import ChoiceRequest
from valuelab.stats import RANDOM_ROBUSTNESS_DRAWS, answers_per_prompt, frame_baseline, frame_interval, jsonable
from valuelab.store import StoredModel
from valuelab.yamlfile import YamlMap, read_yaml

BUILTIN: dict[str, str] = {
    "schwartz": "schwartz-portraits.yaml",
    "mft": "moral-foundations.yaml",
    "wvs": "cultural-map.yaml",
}
"""Built-in instrument name -> file in the valuelab.surveys package."""

METHODS: dict[str, list[str]] = {
    "schwartz-mrat": list(REFINED_VALUES),
    "mft-means": FOUNDATIONS,
    "iw-projection": list(POLES),
}
"""Scoring method -> the dimension vocabulary its items must use."""

MIN_ITEMS = 3
NEAR_DUPLICATE = 0.9
DIRECTIONS = ("ascending", "descending", "unordered")
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


# ---------------------------------------------------------------- data model


@dataclass(frozen=True)
class Scale:
    """Response options in the order shown; `values` are the codes a rating is expressed in."""

    labels: tuple[str, ...]
    values: tuple[float, ...]
    direction: str

    @property
    def points(self) -> int:
        return len(self.labels)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def reflect(self, x: float) -> float:
        """Mirror a rating about the scale midpoint (how reverse-keyed items are scored)."""
        return self.low + self.high - x

    def standardise(self, x: float) -> float:
        """Map a rating onto [-1, 1] with the scale midpoint at 0."""
        return (2 * x - self.low - self.high) / (self.high - self.low)


@dataclass(frozen=True)
class Part:
    """A block of items sharing a prompt and a scale (MFT relevance and judgment)."""

    id: str
    prompt: str | None
    scale: Scale | None


@dataclass(frozen=True)
class Item:
    """One survey item; `keyed` -1 means agreement signals the opposite of its dimension."""

    id: str
    text: str
    dimension: str | None
    keyed: int
    scale: Scale
    part: str | None = None
    catch: bool = False
    expect: str | None = None
    indicator: str | None = None
    original_format: str | None = None
    line: int | None = None

    def keyed_value(self, x: float) -> float:
        """The rating turned to the dimension's direction: reverse-keyed items are reflected."""
        return x if self.keyed == 1 else self.scale.reflect(x)


@dataclass(frozen=True)
class Instrument:
    """A validated instrument: header, items with their resolved scales, and the scoring key."""

    id: str
    name: str
    construct: str
    version: str
    license: str
    prompt: str | None
    references: tuple[str, ...]
    scale: Scale | None
    parts: Mapping[str, Part]
    items: tuple[Item, ...]
    scoring: Mapping[str, Any]
    path: str

    @property
    def method(self) -> str:
        return self.scoring["method"]

    @property
    def dimensions(self) -> list[str]:
        """Dimensions the items use, in the framework's order."""
        used = {it.dimension for it in self.items}
        return [d for d in METHODS[self.method] if d in used]

    def item(self, item_id: str) -> Item:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)


# ---------------------------------------------------------------- loading and validation


def builtin_path(name: str) -> Path:
    """Path of a built-in instrument file (`schwartz`, `mft`, `wvs`)."""
    return Path(str(files("valuelab.surveys") / BUILTIN[name]))


def local_dir() -> Path:
    """`surveys/local/`: git-ignored, for licensed questionnaire text a user holds (e.g. the PVQ-RR)."""
    return Path(str(files("valuelab.surveys"))) / "local"


def load_instrument(name_or_path: str | Path) -> Instrument:
    """Load a built-in instrument by name, a user's `surveys/local/NAME.yaml` by name, or a YAML file by path,
    validating everything on the way."""
    local = local_dir() / f"{name_or_path}.yaml"
    if str(name_or_path) in BUILTIN:
        path = builtin_path(str(name_or_path))
    elif local.is_file():
        path = local
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(f"no such file, and not a built-in instrument (built in: {', '.join(BUILTIN)}) "
                             f"nor one in {local_dir()}", file=str(name_or_path))
    return _Checker(str(path)).instrument(read_yaml(path))


class _Checker:
    """Validates one instrument file; every error names the file, the line and the field."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, message: str, node: Any = None, field: str | None = None, item: str | None = None):
        line = getattr(node, "line", None)
        if item is not None:
            message = f"item {item!r}: {message}"
        raise InputError(message, file=self.file, line=line, field=field)

    def fields(self, node: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = (),
               item: str | None = None, parent: Any = None) -> None:
        if not isinstance(node, dict):
            self.fail("must be a mapping", parent, where, item)
        prefix = f"{where}." if where else ""
        for key in node:
            if key not in required and key not in optional:
                allowed = ", ".join(required + optional)
                self.fail(f"unknown field {key!r} (allowed: {allowed})", node, f"{prefix}{key}", item)
        for key in required:
            if node.get(key) in (None, ""):
                self.fail("is missing", node, f"{prefix}{key}", item)

    def text(self, node: dict, key: str, where: str, item: str | None = None) -> str | None:
        value = node.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail("must be non-empty text", node, f"{where}.{key}", item)
        return value

    def instrument(self, doc: Any) -> Instrument:
        if not isinstance(doc, dict):
            self.fail("the file must be a mapping with instrument, items and scoring")
        self.fields(doc, "", ("instrument", "items", "scoring"), ("scale", "parts"))
        head = doc["instrument"]
        self.fields(head, "instrument", ("id", "name", "construct", "version", "license"),
                    ("prompt", "references"), parent=doc)
        for key in ("id", "name", "construct", "version", "license", "prompt"):
            self.text(head, key, "instrument")
        refs = head.get("references", [])
        if not isinstance(refs, list) or not all(isinstance(r, str) and r.strip() for r in refs):
            self.fail("must be a list of citations", head, "instrument.references")
        method = self.method(doc["scoring"], doc)
        scale = self.scale(doc["scale"], "scale", doc) if "scale" in doc else None
        parts = self.parts(doc.get("parts"), doc)
        items = self.items(doc["items"], doc, method, scale, parts)
        scoring = self.scoring(doc["scoring"], method, items)
        self.counts(items, method, scoring)
        return Instrument(id=head["id"], name=head["name"], construct=head["construct"],
                          version=str(head["version"]), license=head["license"], prompt=head.get("prompt"),
                          references=tuple(refs), scale=scale, parts=parts, items=tuple(items),
                          scoring=scoring, path=self.file)

    def method(self, scoring: Any, doc: dict) -> str:
        if not isinstance(scoring, dict):
            self.fail("must be a mapping", doc, "scoring")
        method = scoring.get("method")
        if method not in METHODS:
            self.fail(f"unknown scoring method {method!r} (known: {', '.join(METHODS)})", scoring,
                      "scoring.method")
        return method

    def scale(self, node: Any, where: str, parent: Any, item: str | None = None) -> Scale:
        if isinstance(node, dict) and not node.get("labels"):
            self.fail("scale has no labels: list one per point, in order", node, f"{where}.labels", item)
        self.fields(node, where, ("points", "labels", "direction"), ("values",), item, parent)
        points, labels, direction = node["points"], node["labels"], node["direction"]
        if not isinstance(points, int) or isinstance(points, bool) or points < 2:
            self.fail(f"must be a whole number >= 2, got {points!r}", node, f"{where}.points", item)
        if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
            self.fail("must be a list of non-empty texts", node, f"{where}.labels", item)
        if len(labels) != points:
            self.fail(f"has {len(labels)} labels for {points} points", node, f"{where}.labels", item)
        if len(set(labels)) != len(labels):
            self.fail("labels must be distinct", node, f"{where}.labels", item)
        values = node.get("values", list(range(1, points + 1)))
        if (not isinstance(values, list) or len(values) != points
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)):
            self.fail(f"must be a list of {points} numbers, one per label", node, f"{where}.values", item)
        if direction not in DIRECTIONS:
            self.fail(f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}", node,
                      f"{where}.direction", item)
        steps = [b - a for a, b in zip(values, values[1:], strict=False)]
        if (direction == "ascending" and min(steps) <= 0) or (direction == "descending" and max(steps) >= 0):
            self.fail(f"values {values} are not strictly {direction}", node, f"{where}.values", item)
        if max(values) == min(values):
            self.fail("values must not all be equal", node, f"{where}.values", item)
        return Scale(tuple(labels), tuple(float(v) for v in values), direction)

    def parts(self, node: Any, doc: dict) -> dict[str, Part]:
        if node is None:
            return {}
        if not isinstance(node, dict) or not node:
            self.fail("must be a mapping of part id -> {prompt, scale}", doc, "parts")
        parts = {}
        for pid, spec in node.items():
            where = f"parts.{pid}"
            self.fields(spec, where, (), ("prompt", "scale"), parent=node)
            self.text(spec, "prompt", where)
            scale = self.scale(spec["scale"], f"{where}.scale", spec) if "scale" in spec else None
            parts[pid] = Part(str(pid), spec.get("prompt"), scale)
        return parts

    def items(self, node: Any, doc: dict, method: str, scale: Scale | None,
              parts: dict[str, Part]) -> list[Item]:
        if not isinstance(node, list) or not node:
            self.fail("must be a non-empty list of items", doc, "items")
        vocabulary, items, seen = METHODS[method], [], {}
        for i, spec in enumerate(node):
            iid = spec.get("id") if isinstance(spec, dict) else None
            if not isinstance(iid, str) or not _ID.fullmatch(iid):
                where = f"items[{i}].id"
                self.fail(f"needs an id of lower-case letters, digits and '-', got {iid!r}", spec, where)
            self.fields(spec, "items", ("id", "text"), ("dimension", "keyed", "part", "catch", "expect",
                                                        "scale", "indicator", "original_format"), iid, node)
            if iid in seen:
                self.fail(f"duplicate id (first on line {seen[iid]})", spec, "id", iid)
            seen[iid] = spec.line
            self.text(spec, "text", "items", iid)
            self.text(spec, "original_format", "items", iid)
            catch = spec.get("catch", False)
            if not isinstance(catch, bool):
                self.fail(f"must be true or false, got {catch!r}", spec, "catch", iid)
            dimension = spec.get("dimension")
            if catch:
                if dimension is not None:
                    self.fail("a catch item is not scored, so it has no dimension", spec, "dimension", iid)
                if spec.get("expect") not in ("low", "high"):
                    self.fail("a catch item needs expect: low or high", spec, "expect", iid)
            else:
                if dimension not in vocabulary:
                    known = ", ".join(vocabulary)
                    self.fail(f"unknown dimension {dimension!r} for {method} (known: {known})", spec,
                              "dimension", iid)
                if "expect" in spec:
                    self.fail("only catch items have an expected answer", spec, "expect", iid)
            keyed = spec.get("keyed", 1)
            if keyed not in (1, -1) or isinstance(keyed, bool):
                self.fail(f"keyed must be +1 or -1, got {keyed!r}", spec, "keyed", iid)
            if "indicator" in spec and method != "iw-projection":
                self.fail("only cultural-map items (iw-projection) name an indicator", spec, "indicator", iid)
            part = spec.get("part")
            if parts and part not in parts:
                self.fail(f"part must be one of {', '.join(parts)}, got {part!r}", spec, "part", iid)
            if not parts and part is not None:
                self.fail("the instrument declares no parts", spec, "part", iid)
            item_scale = self.scale(spec["scale"], "scale", spec, iid) if "scale" in spec else None
            item_scale = item_scale or (parts[part].scale if part else None) or scale
            if item_scale is None:
                self.fail("no scale: give one on the item, its part or the instrument", spec, "scale", iid)
            items.append(Item(id=iid, text=spec["text"].strip(), dimension=dimension, keyed=keyed,
                              scale=item_scale, part=part, catch=catch, expect=spec.get("expect"),
                              indicator=spec.get("indicator"), original_format=spec.get("original_format"),
                              line=spec.line))
        self.near_duplicates(items)
        return items

    def near_duplicates(self, items: list[Item]) -> None:
        """Two items that say almost the same thing would double-weight one idea."""
        norm = [" ".join(re.findall(r"[a-z0-9]+", it.text.lower())) for it in items]
        for j in range(len(items)):
            matcher = difflib.SequenceMatcher(None, "", norm[j], autojunk=False)
            for i in range(j):
                matcher.set_seq1(norm[i])
                if (matcher.real_quick_ratio() >= NEAR_DUPLICATE and matcher.quick_ratio() >= NEAR_DUPLICATE
                        and matcher.ratio() >= NEAR_DUPLICATE):
                    self.fail(f"text nearly duplicates item {items[i].id!r} (line {items[i].line})",
                              _line(items[j]), "text", items[j].id)

    def names(self, node: Any, where: str, known: list[str], parent: Any) -> list[str]:
        if not isinstance(node, list) or not node:
            self.fail("must be a non-empty list", parent, where)
        for name in node:
            if name not in known:
                self.fail(f"unknown dimension {name!r} (known: {', '.join(known)})", parent, where)
        return list(node)

    def scoring(self, node: dict, method: str, items: list[Item]) -> dict[str, Any]:
        checks: dict[str, Callable[[dict, list[Item]], dict[str, Any]]] = {
            "schwartz-mrat": self.schwartz_key, "mft-means": self.mft_key, "iw-projection": self.iw_key,
        }
        return {"method": method, "notes": self.text(node, "notes", "scoring"), **checks[method](node, items)}

    def schwartz_key(self, node: dict, items: list[Item]) -> dict[str, Any]:
        self.fields(node, "scoring", ("method", "basic", "higher_order"), ("notes",))
        refined = list(REFINED_VALUES)
        basic, higher = node["basic"], node["higher_order"]
        for key, value in (("basic", basic), ("higher_order", higher)):
            if not isinstance(value, dict):
                self.fail("must be a mapping of score -> refined values", node, f"scoring.{key}")
        for name in basic:
            if name not in BASIC_VALUES:
                self.fail(f"unknown basic value {name!r} (known: {', '.join(BASIC_VALUES)})", basic,
                          f"scoring.basic.{name}")
        keyed = {name: self.names(members, f"scoring.basic.{name}", refined, basic)
                 for name, members in basic.items()}
        pooled = [v for members in keyed.values() for v in members]
        for value in refined:
            if pooled.count(value) != 1:
                self.fail(f"refined value {value!r} must go into exactly one basic value, "
                          f"found {pooled.count(value)}", basic, "scoring.basic")
        for name in higher:
            if name not in HIGHER_ORDER:
                self.fail(f"unknown higher-order value {name!r} (known: {', '.join(HIGHER_ORDER)})", higher,
                          f"scoring.higher_order.{name}")
        return {"basic": keyed,
                "higher_order": {name: self.names(members, f"scoring.higher_order.{name}", refined, higher)
                                 for name, members in higher.items()}}

    def mft_key(self, node: dict, items: list[Item]) -> dict[str, Any]:
        self.fields(node, "scoring", ("method", "individualising", "binding", "catch_rule"), ("notes",))
        rule = node["catch_rule"]
        self.fields(rule, "scoring.catch_rule", ("low_fails_at_or_above", "high_fails_at_or_below"),
                    parent=node)
        for key, value in rule.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                self.fail(f"must be a number, got {value!r}", rule, f"scoring.catch_rule.{key}")
        return {"individualising": self.names(node["individualising"], "scoring.individualising", FOUNDATIONS,
                                              node),
                "binding": self.names(node["binding"], "scoring.binding", FOUNDATIONS, node),
                "catch_rule": dict(rule)}

    def iw_key(self, node: dict, items: list[Item]) -> dict[str, Any]:
        self.fields(node, "scoring", ("method", "indicators"), ("notes",))
        specs = node["indicators"]
        if not isinstance(specs, list) or not specs:
            self.fail("must be a non-empty list", node, "scoring.indicators")
        indicators: dict[str, dict[str, Any]] = {}
        for spec in specs:
            self.fields(spec, "scoring.indicators", ("id", "construct", "dimension", "loading"), parent=node)
            iid, where = spec["id"], f"scoring.indicators.{spec['id']}"
            if iid in indicators:
                self.fail(f"duplicate indicator {iid!r}", spec, where)
            if spec["dimension"] not in POLES:
                self.fail(f"unknown dimension {spec['dimension']!r} (known: {', '.join(POLES)})", spec,
                          f"{where}.dimension")
            if not isinstance(spec["loading"], int | float) or not 0 < spec["loading"] <= 1:
                self.fail(f"must be a number in (0, 1], got {spec['loading']!r}", spec, f"{where}.loading")
            members = [it for it in items if it.indicator == iid]
            if not members:
                self.fail("no item names this indicator", spec, where)
            indicators[iid] = {"construct": spec["construct"], "dimension": spec["dimension"],
                               "loading": float(spec["loading"]), "items": [it.id for it in members]}
        for it in items:
            if it.indicator not in indicators:
                self.fail(f"indicator must be one of {', '.join(indicators)}, got {it.indicator!r}",
                          _line(it), "indicator", it.id)
            if it.dimension != indicators[it.indicator]["dimension"]:
                self.fail(f"dimension {it.dimension!r} differs from its indicator's "
                          f"({indicators[it.indicator]['dimension']!r})", _line(it), "dimension", it.id)
        return {"indicators": indicators}

    def counts(self, items: list[Item], method: str, scoring: dict[str, Any]) -> None:
        """Every dimension scored needs at least MIN_ITEMS items (for Schwartz: positively keyed ones)."""
        named = {it.dimension for it in items if not it.catch}
        named |= {v for key in ("basic", "higher_order") for members in scoring.get(key, {}).values()
                  for v in members}
        named |= set(scoring.get("individualising", [])) | set(scoring.get("binding", []))
        for dim in sorted(named):
            used = [it for it in items
                    if it.dimension == dim and (method != "schwartz-mrat" or it.keyed == 1)]
            if len(used) < MIN_ITEMS:
                kind = "positively keyed items" if method == "schwartz-mrat" else "items"
                first = _line(used[0]) if used else None
                self.fail(f"dimension {dim!r} has {len(used)} {kind}; at least {MIN_ITEMS} are needed",
                          first, "dimension")


def _line(it: Item) -> YamlMap:
    node = YamlMap()
    node.line = it.line
    return node


# ---------------------------------------------------------------- scoring


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


# ---------------------------------------------------------------- elicitation

SURVEY_TEMPLATE = "{prompt}\n\n{text}\n\n{options}\n\nReply with the {what} of one option only."
"""Our wording for one rating item; the options are listed with their labels in the order shown."""
DEFAULT_PROMPT = "Please answer the following question about yourself."
SHOWN = ("forward", "reversed")
SCORERS: dict[str, Callable[..., pd.DataFrame]] = {
    "schwartz-mrat": score_schwartz, "mft-means": score_mft, "iw-projection": score_wvs,
}
HEADLINE_LEVELS: dict[str, tuple[str, ...]] = {
    "schwartz-mrat": ("refined", "basic", "higher-order", "summary"),
    "mft-means": ("foundation", "index", "summary"),
    "iw-projection": ("indicator", "dimension"),
}
"""Score rows reported with intervals and baselines, per scoring method."""


def scale_labels(points: int) -> tuple[str, ...]:
    """Answer labels "1".."N", or letters beyond nine points: every label must be one token."""
    return tuple(str(k) for k in range(1, points + 1)) if points <= 9 else tuple(ascii_uppercase[:points])


def item_request(instrument: Instrument, item: Item, shown: str, system: str | None = None) -> ChoiceRequest:
    """One item with its scale listed forward (as in the file) or reversed; `options` are the codes shown."""
    order = list(range(item.scale.points))
    if shown == "reversed":
        order.reverse()
    labels = scale_labels(item.scale.points)
    part = instrument.parts.get(item.part) if item.part else None
    prompt = (part.prompt if part and part.prompt else instrument.prompt) or DEFAULT_PROMPT
    options = "\n".join(f"{label}. {item.scale.labels[k]}" for label, k in zip(labels, order, strict=True))
    text = SURVEY_TEMPLATE.format(prompt=prompt, text=item.text, options=options,
                                  what="number" if labels[0].isdigit() else "letter")
    return ChoiceRequest(text, tuple(f"{item.scale.values[k]:g}" for k in order), system, labels, item.text)


def elicit_survey(model: StoredModel, instrument: Instrument, items: Sequence[Item] | None = None,
                  system: str | None = None) -> pd.DataFrame:
    """Ask every item with its scale forward and reversed, through the store; one tidy row per prompt.

    `rating` is the expected code under the label probabilities (renormalised over the labels);
    `off_label` is the share of refusals (sample mode) or the probability on other tokens (log-prob).
    """
    asked = [(it, shown, item_request(instrument, it, shown, system))
             for it in (instrument.items if items is None else items) for shown in SHOWN]
    results = model.choice_probs([r for *_, r in asked])
    rows = []
    for (it, shown, request), result in zip(asked, results, strict=True):
        rows.append({"item_id": it.id, "dimension": it.dimension, "part": it.part, "keyed": it.keyed,
                     "catch": it.catch, "direction": shown,
                     "rating": result.expected_value([float(v) for v in request.options]),
                     "first_code": float(request.options[0]), "low": it.scale.low, "high": it.scale.high,
                     "mass": result.mass, "off_label": off_label(result), "refusals": result.n_refusal,
                     "answers": sum(result.counts or []) + result.n_refusal, "mode": result.mode})
    return pd.DataFrame(rows)


def aggregate_ratings(responses: pd.DataFrame) -> pd.DataFrame:
    """Per item: the rating averaged over the two directions, and how much the direction moved it.

    `order_effect` is |forward − reversed| as a share of the scale range; `primacy` is signed, > 0 when
    the rating leans towards whichever option was shown first.
    """
    wide = responses.pivot_table(index="item_id", columns="direction", values="rating", sort=False)
    first = responses[responses["direction"] == "forward"].set_index("item_id")
    span = first["high"] - first["low"]
    toward_first = np.sign(first["first_code"] - (first["high"] + first["low"]) / 2)
    out = pd.DataFrame({"rating": wide[list(SHOWN)].mean(axis=1), "forward": wide["forward"],
                        "reversed": wide["reversed"]})
    out["order_effect"] = (out["forward"] - out["reversed"]).abs() / span
    out["primacy"] = (out["forward"] - out["reversed"]) * toward_first / span
    out["off_label"] = responses.groupby("item_id", sort=False)["off_label"].mean()
    return out.reset_index()


def resample_ratings(instrument: Instrument, ratings: dict[str, float],
                     rng: np.random.Generator) -> dict[str, float]:
    """A stratified item bootstrap that keeps item ids, so the unchanged scoring functions score the resample.

    Each item takes the answer of a random item measuring the same thing on the same scale (same dimension
    or cultural-map indicator, part and keying); a stratum of one item (a catch item, most map indicators)
    keeps its answer and gets no interval.
    """
    strata: dict[tuple, list[str]] = {}
    for it in instrument.items:
        if it.id in ratings:
            measured = it.indicator or it.dimension
            key = ("catch", it.id) if it.catch else (measured, it.part, it.keyed, it.scale)
            strata.setdefault(key, []).append(it.id)
    return {iid: ratings[members[rng.integers(len(members))]]
            for members in strata.values() for iid in members}


def random_ratings(instrument: Instrument, item_ids: Sequence[str], answers: int,
                   rng: np.random.Generator) -> dict[str, float]:
    """Ratings of a uniform-random respondent: the mean of `answers` codes drawn uniformly per direction."""
    return {iid: float(np.mean(rng.choice(instrument.item(iid).scale.values, 2 * answers)))
            for iid in item_ids}


def _headline(instrument: Instrument, frame: pd.DataFrame) -> pd.Series:
    kept = frame[frame["level"].isin(HEADLINE_LEVELS[instrument.method])]
    return pd.Series(kept["score"].to_numpy(float), index=pd.MultiIndex.from_frame(kept[["level", "name"]]))


def survey_robustness(ratings: pd.DataFrame, responses: pd.DataFrame) -> dict[str, float]:
    """The run-level robustness numbers of a set of survey responses."""
    return {"order_effect": float(ratings["order_effect"].mean()),
            "primacy": float(ratings["primacy"].mean()), "refusal_rate": float(responses["off_label"].mean())}


@dataclass
class SurveyResult:
    """A survey run: tidy responses, per-item ratings, scores with intervals and baselines, robustness."""

    instrument: str
    method: str
    model: dict[str, str]
    responses: pd.DataFrame
    ratings: pd.DataFrame
    scores: pd.DataFrame
    circumplex: dict[str, Any] | None
    robustness: dict[str, Any]
    robustness_baseline: dict[str, Any]
    calls: dict[str, int]

    def to_frame(self) -> pd.DataFrame:
        """The headline table: level, name, score, lo, hi, baseline, baseline_lo, baseline_hi, n_items."""
        return self.scores

    def to_dict(self) -> dict[str, Any]:
        scores: dict[str, dict[str, Any]] = {}
        for row in self.scores.to_dict("records"):
            scores.setdefault(row["level"], {})[row["name"]] = {
                "score": row["score"], "ci": [row["lo"], row["hi"]], "baseline": row["baseline"],
                "baseline_range": [row["baseline_lo"], row["baseline_hi"]], "n_items": row["n_items"]}
        extra = {}
        if self.method == "iw-projection":
            dims = self.level("dimension")
            quadrant = quadrant_countries(tuple(dims.loc["surv-selfexp", ["lo", "hi"]]),
                                          tuple(dims.loc["trad-secular", ["lo", "hi"]]))
            extra["map_quadrant_countries"] = quadrant
            extra["map_quadrant_note"] = (
                "undetermined: an interval includes 0" if quadrant is None else
                "published country positions in the same quadrant (a qualitative reading: different scales)")
        return jsonable({"instrument": self.instrument, "method": self.method, "model": self.model,
                           "n_items": len(self.ratings), "prompts": len(self.responses), "calls": self.calls,
                           "scores": scores, "circumplex": self.circumplex, "robustness": self.robustness,
                           "robustness_baseline": self.robustness_baseline, **extra})

    def level(self, name: str) -> pd.DataFrame:
        return self.scores[self.scores["level"] == name].set_index("name")

    def figures(self) -> dict[str, Figure]:
        """The instrument's framework figure (circle, bars or map) and the robustness panel."""
        title = f"{self.instrument}: {self.model.get('model', '')}"
        figures = {"robustness": robustness_figure({k: v for k, v in self.robustness.items() if k != "text"},
                                                   self.robustness_baseline, f"Robustness ({title})")}
        if self.method == "schwartz-mrat":
            figures["schwartz_circle"] = schwartz_circle(self.level("refined"), title, "centred score (MRAT)")
        elif self.method == "mft-means":
            figures["foundation_bars"] = foundation_bars(self.level("foundation"), title, "foundation score",
                                                         zero=2.5)
        else:
            dims = self.level("dimension")
            x, y = dims.loc["surv-selfexp"], dims.loc["trad-secular"]
            figures["cultural_map"] = cultural_map(
                float(x["score"]), float(y["score"]), x_interval=(x["lo"], x["hi"]),
                y_interval=(y["lo"], y["hi"]), title=title,
                baseline=(x["baseline_lo"], x["baseline_hi"], y["baseline_lo"], y["baseline_hi"]))
        return figures


def run_survey(model: StoredModel, instrument: str | Path = "schwartz", *, limit: int | None = None,
               seed: int = 0, system: str | None = None, n_boot: int = 200, n_random: int = 200,
               text_subsample: int = TEXT_SUBSAMPLE) -> SurveyResult:
    """Ask an instrument (each item forward and reversed) and score it with its own key.

    `instrument` is a built-in name, a name in `surveys/local/`, or a YAML path. `limit` asks a seeded
    random subset of items (scores then rest on fewer items; see `n_items`). Intervals are a stratified item
    bootstrap (`n_boot`); the baseline a uniform-random respondent with as many answers per prompt as the
    model.
    """
    inst = load_instrument(instrument)
    items = seeded_subset(inst.items, limit, seed, "items", minimum=0)
    before = (model.counts.asked, model.counts.reused)
    responses = elicit_survey(model, inst, items, system)
    ratings = aggregate_ratings(responses)
    observed = {iid: r for iid, r in zip(ratings["item_id"], ratings["rating"], strict=True)
                if np.isfinite(r)}
    score = SCORERS[inst.method]
    full = score(observed, inst)
    point = _headline(inst, full)
    rng = np.random.default_rng(seed)
    boot = pd.DataFrame([_headline(inst, score(resample_ratings(inst, observed, rng), inst))
                         for _ in range(n_boot)])
    per_prompt = answers_per_prompt(model.mode, model.n_samples)
    null = pd.DataFrame([_headline(inst, score(random_ratings(inst, list(observed), per_prompt, rng), inst))
                         for _ in range(n_random)])
    n_items = full.set_index(["level", "name"])["n_items"]
    scores = pd.concat([point.rename("score"), frame_interval(boot), frame_baseline(null), n_items], axis=1,
                       join="inner")
    scores = scores.rename_axis(["level", "name"]).reset_index()
    scores.loc[scores["n_items"] < 2, ["lo", "hi"]] = np.nan  # one item: nothing to resample
    if inst.method == "iw-projection":  # a dimension is the mean of its indicators: resample those instead
        scores = _indicator_intervals(scores, inst, rng, n_boot)
    circumplex = None
    if inst.method == "schwartz-mrat":
        refined = scores[scores["level"] == "refined"].set_index("name")["score"]
        circumplex = circumplex_fit(refined.to_dict(), seed=seed)
    robustness: dict[str, Any] = survey_robustness(ratings, responses) | {"paraphrase_spread": None}
    summary = full[full["level"] == "summary"].set_index("name")["score"] if "summary" in set(full["level"]) \
        else pd.Series(dtype=float)
    robustness["acquiescence"] = float(summary["acquiescence"]) if "acquiescence" in summary else None
    if "catch" in summary:
        robustness["catch_passed"] = float(summary["catch"])
    text = text_agreement(model, [item_request(inst, it, shown, system) for it in items for shown in SHOWN],
                          n=text_subsample, seed=seed)
    robustness |= {"text_agreement": text["agreement"], "text": text}
    draws = []
    for _ in range(RANDOM_ROBUSTNESS_DRAWS):
        fake = responses.assign(rating=[float(np.mean(rng.choice(inst.item(i).scale.values, per_prompt)))
                                        for i in responses["item_id"]], off_label=0.0)
        draws.append(survey_robustness(aggregate_ratings(fake), fake))
    return SurveyResult(inst.id, inst.method, dict(model.identity), responses, ratings, scores, circumplex,
                        robustness, pd.DataFrame(draws).mean().to_dict(),
                        {"asked": model.counts.asked - before[0], "reused": model.counts.reused - before[1]})


def _indicator_intervals(scores: pd.DataFrame, inst: Instrument, rng: np.random.Generator,
                         n_boot: int) -> pd.DataFrame:
    """Cultural-map dimension intervals from resampling its indicators (most indicators are a single item)."""
    indicators = scores[scores["level"] == "indicator"].set_index("name")["score"].dropna()
    spec = inst.scoring["indicators"]
    for dimension in POLES:
        values = indicators[[spec[code]["dimension"] == dimension for code in indicators.index]].to_numpy()
        if len(values):
            means = [float(np.mean(values[rng.integers(0, len(values), len(values))])) for _ in range(n_boot)]
            row = (scores["level"] == "dimension") & (scores["name"] == dimension)
            scores.loc[row, ["lo", "hi"]] = np.percentile(means, [2.5, 97.5]) if means else np.nan
    return scores


def figure(result: SurveyResult) -> Figure:
    """The headline figure of a survey run: its framework figure."""
    return next(fig for name, fig in result.figures().items() if name != "robustness")


# ---------------------------------------------------------------- command line


def check(targets: list[str]) -> int:
    """Validate instruments (all built-ins when none given); print one line each; 1 if any fails."""
    status = 0
    for target in targets or list(BUILTIN):
        try:
            inst = load_instrument(target)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        reverse = sum(it.keyed == -1 for it in inst.items)
        catch = sum(it.catch for it in inst.items)
        print(f"{inst.path}: {inst.id} {inst.version}: {len(inst.items)} items, "
              f"{len(inst.dimensions)} dimensions, {reverse} reverse-keyed, {catch} catch: ok")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valuelab.elicit.surveys",
                                     description="Survey instruments shipped with valuelab.")
    sub = parser.add_subparsers(dest="command", required=True)
    check_cmd = sub.add_parser("check", help="validate the built-in instruments, or the given ones")
    check_cmd.add_argument("targets", nargs="*", help="built-in names (schwartz, mft, wvs) or YAML files")
    args = parser.parse_args(argv)
    return check(args.targets)


if __name__ == "__main__":
    sys.exit(main())
