"""The one item-file reader: YAML lists of items in `valuelab/data/<analysis>/` (or a user's file), loaded with
line numbers so every error names the file, the item's line and the field; and seeded subsets of items."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from valuelab.errors import InputError
from valuelab.yamlfile import read_yaml


def data_file(analysis: str, name: str) -> Path:
    """A packaged data file, `valuelab/data/<analysis>/<name>`."""
    return Path(str(files("valuelab") / "data" / analysis / name))


def item_error(message: str, file: str, node: Any = None, field: str | None = None) -> InputError:
    """The error every item-file validator raises: the message, the file, the line of `node` (a mapping read by
    `valuelab.yamlfile.read_yaml` knows its line) and the field."""
    return InputError(message, file=file, line=getattr(node, "line", None), field=field)


def load_items(path: str | Path, fields: dict[str, type | tuple[type, ...]],
               optional: frozenset[str] = frozenset()) -> list[tuple[int, dict]]:
    """(line, item) pairs from a YAML list of mappings; checks required fields, types and unknown keys."""
    path = Path(path)
    doc = read_yaml(path)
    if not isinstance(doc, list) or not doc:
        raise InputError("expected a non-empty YAML list of items", file=str(path), line=1)
    items = []
    for item in doc:
        if not isinstance(item, dict):
            raise InputError(f"expected a mapping with fields {', '.join(fields)}, got {type(item).__name__}",
                             file=str(path))
        line = item.line
        for key, value in item.items():
            if key not in fields:
                raise InputError(f"unknown field; allowed: {', '.join(fields)}", file=str(path), line=line,
                                 field=str(key))
            if not isinstance(value, fields[key]) or isinstance(value, bool):
                raise InputError(f"wrong type {type(value).__name__}", file=str(path), line=line, field=key)
        for key in fields:
            if key not in item and key not in optional:
                raise InputError("missing field", file=str(path), line=line, field=key)
        items.append((line, item))
    return items


def check_unique(values: list[tuple[int, str]], file: str, field: str) -> None:
    """Fail on the second occurrence of any value (values are (line, value) pairs)."""
    seen: dict[str, int] = {}
    for line, value in values:
        if value in seen:
            raise InputError(f"duplicate {value!r} (first on line {seen[value]})", file=file, line=line,
                             field=field)
        seen[value] = line


def seeded_subset(items: Sequence, limit: int | None, seed: int, what: str, minimum: int = 1) -> list:
    """`limit` of `items` drawn with `seed`, in their original order (all of them when `limit` is None)."""
    items = list(items)
    if limit is None:
        return items
    if limit < minimum:
        raise InputError(f"limit must be at least {minimum} {what}, got {limit}", field="limit")
    if limit >= len(items):
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in keep]
