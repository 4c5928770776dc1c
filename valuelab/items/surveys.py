"""Survey instruments: valuelab's own Schwartz, moral-foundations and cultural-map items (surveys/SCHEMA.md).

The data side: an instrument's data model, loading a built-in, local or user's file, and validation that names
the file, line and field of every error. Validate from the command line with
`python -m valuelab.items.surveys check [NAME_OR_FILE ...]`. Scoring is in `valuelab.frameworks.surveys`,
asking in `valuelab.elicit.surveys`, the analysis in `valuelab.analyses.surveys`.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from valuelab.errors import InputError
from valuelab.items.files import item_error
from valuelab.items.vocabularies import BASIC_VALUES, FOUNDATIONS, HIGHER_ORDER, POLES, REFINED_VALUES
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
        if item is not None:
            message = f"item {item!r}: {message}"
        raise item_error(message, self.file, node, field)

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
    parser = argparse.ArgumentParser(prog="python -m valuelab.items.surveys",
                                     description="Survey instruments shipped with valuelab.")
    sub = parser.add_subparsers(dest="command", required=True)
    check_cmd = sub.add_parser("check", help="validate the built-in instruments, or the given ones")
    check_cmd.add_argument("targets", nargs="*", help="built-in names (schwartz, mft, wvs) or YAML files")
    args = parser.parse_args(argv)
    return check(args.targets)


if __name__ == "__main__":
    sys.exit(main())
