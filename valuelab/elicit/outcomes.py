"""Outcome sets: the short world states whose utilities `valuelab utilities` elicits.

An outcome is one sentence describing a state of the world, as in Mazeika et al. (2025), "Utility
Engineering" (§1.1 of our reference notes; App. A.4 of the paper). Built-in sets live in
`valuelab/data/outcomes/*.jsonl`; users can also pass their own file as our JSONL, a CSV with a `text`
column, or the `{category: [text, ...]}` JSON layout of the emergent-values code
(`shared_options/options_hierarchical.json`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from valuelab.errors import InputError

DEFAULT_CATEGORY = "uncategorized"
JSONL_FIELDS = ("id", "text", "category")
NEAR_DUPLICATE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Outcome:
    """One outcome: a stable id (used as the key everywhere), the sentence shown to the model, a category."""

    id: str
    text: str
    category: str = DEFAULT_CATEGORY


def _builtin_dir() -> Path:
    return Path(str(files("valuelab") / "data" / "outcomes"))


def builtin_sets() -> list[str]:
    """Names of the outcome sets shipped with valuelab (`core`, `quick`, ...)."""
    return sorted(p.stem for p in _builtin_dir().glob("*.jsonl"))


def load_outcomes(name_or_path: str | Path) -> list[Outcome]:
    """Load a built-in set by name, or a user file (.jsonl, .csv, .json); fail early on any bad item."""
    path = Path(name_or_path)
    if str(name_or_path) in builtin_sets():
        path = _builtin_dir() / f"{name_or_path}.jsonl"
    elif not path.is_file():
        raise InputError(
            f"no such file, and not a built-in outcome set (built in: {', '.join(builtin_sets())}); "
            "give a set name or a .jsonl, .csv or .json file", file=str(name_or_path))
    readers = {".jsonl": _read_jsonl, ".csv": _read_csv, ".json": _read_json}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"unknown file type {path.suffix or '(no suffix)'!r}: use .jsonl, .csv or .json",
                         file=str(path))
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason} at byte {err.start})", file=str(path)) from None
    return _validate(reader(raw, str(path)), str(path))


def outcomes_frame(outcomes: str | Path | Sequence[Outcome]) -> pd.DataFrame:
    """The outcomes as a DataFrame with columns id, text, category (the left half of utilities.csv)."""
    if isinstance(outcomes, str | Path):
        outcomes = load_outcomes(outcomes)
    return pd.DataFrame([asdict(o) for o in outcomes], columns=list(JSONL_FIELDS))


# Each reader yields (line, id or None, text, category or None); _validate checks and fills them in.
_Item = tuple[int, str | None, object, str | None]


def _read_jsonl(raw: str, file: str) -> Iterator[_Item]:
    # Strict about fields: our own format, so an unknown key is a typo (e.g. "catgory"), not metadata.
    for line, row in enumerate(raw.splitlines(), 1):
        if not row.strip():
            continue
        try:
            obj = json.loads(row)
        except json.JSONDecodeError as err:
            raise InputError(f"bad JSON: {err.msg} (column {err.colno})", file=file, line=line) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object with fields {', '.join(JSONL_FIELDS)}, got "
                             f"{type(obj).__name__}", file=file, line=line)
        for key in obj:
            if key not in JSONL_FIELDS:
                raise InputError(f"unknown field; allowed fields are {', '.join(JSONL_FIELDS)}",
                                 file=file, line=line, field=key)
        for key in ("id", "category"):
            if key in obj and not isinstance(obj[key], str):
                raise InputError(f"must be a string, got {type(obj[key]).__name__}",
                                 file=file, line=line, field=key)
        yield line, obj.get("id"), obj.get("text"), obj.get("category")


def _read_csv(raw: str, file: str) -> Iterator[_Item]:
    # Lenient about extra columns: CSVs usually come from spreadsheets that carry other columns along.
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise InputError(f"the header needs a 'text' column (found: {', '.join(reader.fieldnames or [])})",
                         file=file, line=1)
    for row in reader:
        yield reader.line_num, row.get("id") or None, row["text"], row.get("category") or None


class _Pairs(list):
    """A JSON object kept as its (key, value) pairs, so repeated keys and document order survive."""


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _read_json(raw: str, file: str) -> Iterator[_Item]:
    try:
        doc = json.loads(raw, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as err:
        raise InputError(f"bad JSON: {err.msg} (column {err.colno})", file=file, line=err.lineno) from None
    # In a valid document of strings only, the string literals in the raw text are the keys and items
    # in document order, which gives each item its line number.
    lines = iter([raw.count("\n", 0, m.start()) + 1 for m in _JSON_STRING.finditer(raw)])
    shape = "expected {category: [outcome text, ...]} or a list of outcome texts"
    if isinstance(doc, _Pairs):
        seen: set[str] = set()
        for category, texts in doc:
            key_line = next(lines)
            if category in seen:
                raise InputError("category appears twice", file=file, line=key_line, field=category)
            seen.add(category)
            if not isinstance(texts, list) or isinstance(texts, _Pairs):
                raise InputError(f"{shape}: this category is not a list", file=file, line=key_line,
                                 field=category)
            yield from _json_items(texts, category, lines, file, key_line)
    elif isinstance(doc, list):
        yield from _json_items(doc, None, lines, file, None)
    else:
        raise InputError(f"{shape}, got {type(doc).__name__}", file=file, line=1)


def _json_items(texts: list, category: str | None, lines: Iterator[int], file: str,
                key_line: int | None) -> Iterator[_Item]:
    # A non-string item has no string literal to give its line, so the error names the category's line.
    for k, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise InputError(f"item {k} is {type(text).__name__}, not a string", file=file, line=key_line,
                             field=category)
        yield next(lines), None, text, category


def _slug(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-") or DEFAULT_CATEGORY


def _validate(items: Iterable[_Item], file: str) -> list[Outcome]:
    """Check texts and ids, and give ids to items without one as `<category-slug>-NNN`."""
    outcomes: list[Outcome] = []
    id_lines: dict[str, int] = {}
    text_lines: dict[str, int] = {}
    per_category: Counter[str] = Counter()
    for line, oid, text, category in items:
        if text is None:
            raise InputError("missing outcome text", file=file, line=line, field="text")
        if not isinstance(text, str):
            raise InputError(f"must be a string, got {type(text).__name__}", file=file, line=line,
                             field="text")
        text = " ".join(text.split())
        if not text:
            raise InputError("outcome text is empty", file=file, line=line, field="text")
        category = (category or "").strip() or DEFAULT_CATEGORY
        per_category[category] += 1
        oid = (oid or "").strip() or f"{_slug(category)}-{per_category[category]:03d}"
        if oid in id_lines:
            raise InputError(f"duplicate id {oid!r} (first on line {id_lines[oid]})", file=file, line=line,
                             field="id")
        key = text.casefold()
        if key in text_lines:
            raise InputError(f"duplicate text (first on line {text_lines[key]}): {text!r}", file=file,
                             line=line, field="text")
        id_lines[oid], text_lines[key] = line, line
        outcomes.append(Outcome(oid, text, category))
    if not outcomes:
        raise InputError("no outcomes in this file", file=file)
    return outcomes


# Near-duplicates: cosine similarity of character 3-gram counts over content words with stop words
# removed and plural/tense endings stripped. On our hand-written paraphrase pairs this separated
# paraphrases from distinct outcomes better than token-set Jaccard, 2-grams or 4-grams.
_STOP_WORDS = frozenset(
    "a an the of to in on for and or at by with from is are was be been your you their its it as that this "
    "into than over per all every".split())
_WORD = re.compile(r"[a-z0-9$%°]+(?:[',.][a-z0-9]+)*")
_QUANTITY = re.compile(r"\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
                       r"million|billion|trillion|half|quarter|dozen)\b")


def _content_words(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]
    stems = []
    for word in words:
        for suffix in ("ing", "ed", "es", "s", "ly"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        stems.append(word)
    return stems


def similarity_matrix(texts: Sequence[str]) -> np.ndarray:
    """Pairwise near-duplicate scores in [0, 1] (1 = same content words)."""
    vocab: dict[str, int] = {}
    rows, cols, counts = [], [], []
    for i, text in enumerate(texts):
        padded = f" {' '.join(_content_words(text))} "
        for gram, n in Counter(padded[k:k + 3] for k in range(len(padded) - 2)).items():
            rows.append(i)
            cols.append(vocab.setdefault(gram, len(vocab)))
            counts.append(n)
    grams = sp.csr_matrix((counts, (rows, cols)), shape=(len(texts), len(vocab)), dtype=float)
    norms = np.sqrt(grams.multiply(grams).sum(axis=1)).A1
    grams = sp.diags(1 / np.where(norms > 0, norms, 1)) @ grams
    return (grams @ grams.T).toarray()


def near_duplicates(outcomes: Sequence[Outcome], threshold: float = NEAR_DUPLICATE_THRESHOLD,
                    ) -> list[tuple[Outcome, Outcome, float]]:
    """Pairs scoring at or above `threshold`, highest first.

    Pairs that state different quantities ("$10" / "$1,000", "one million" / "one billion") are rungs of
    a ladder, not duplicates, and are skipped.
    """
    scores = similarity_matrix([o.text for o in outcomes])
    quantities = [sorted(_QUANTITY.findall(o.text.lower())) for o in outcomes]
    pairs = [(outcomes[i], outcomes[j], float(scores[i, j]))
             for i, j in zip(*np.nonzero(np.triu(scores >= threshold, k=1)), strict=True)
             if quantities[i] == quantities[j]]
    return sorted(pairs, key=lambda pair: -pair[2])
