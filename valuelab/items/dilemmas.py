"""Dilemmas: the data (schema, validation, loading, tag balance) and loaders for third-party layouts.

A dilemma is a short second-person situation with exactly two actions, each tagged with the values it serves
in three frameworks: Schwartz's 19 refined values, the Moral Foundations (MFQ-2 six plus liberty) and the
Inglehart-Welzel cultural-map poles. The record follows DailyDilemmas (Chiu, Jiang & Choi 2025: situation, two
actions, parties, per-action values) but tags with theory-grounded vocabularies instead of free-text values
mapped afterwards. The schema is documented in dilemmas/SCHEMA.md; run the check with
`python -m valuelab.items.dilemmas check [PATHS]`. Asking is in `valuelab.elicit.dilemmas`, scoring in
`valuelab.frameworks.dilemmas`, the analysis in `valuelab.analyses.dilemmas`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pandas as pd

from valuelab.errors import InputError
from valuelab.items.vocabularies import (
    BASIC_VALUES,
    EMOTIONS,
    FOUNDATIONS,
    HIGHER_ORDER,
    MASLOW_NEEDS,
    POLE_NAMES,
    POLES,
    REFINED_VALUES,
    VIRTUES,
)

SETS = ("everyday", "high-stakes")
DOMAINS = (
    "work", "family", "friendship", "romance", "health", "money", "community", "school", "neighbours",
    "online", "consumer", "environment", "civic", "travel", "medicine", "law", "science", "technology",
    "security", "governance", "crisis", "ai",
)
TAG_VOCABULARIES: dict[str, list[str]] = {
    "schwartz": list(REFINED_VALUES), "mft": list(FOUNDATIONS), "wvs": list(POLE_NAMES),
    "maslow": list(MASLOW_NEEDS), "aristotle": list(VIRTUES), "plutchik": list(EMOTIONS),
}
TAG_COUNTS: dict[str, tuple[int, int]] = {
    "schwartz": (1, 4), "mft": (0, 3), "wvs": (0, 2), "maslow": (1, 2), "aristotle": (0, 2), "plutchik": (0, 2),
}
"""Framework -> (fewest, most) tags one action may carry."""

TAG_LEVELS: dict[str, list[str]] = {
    "schwartz": list(REFINED_VALUES), "basic": list(BASIC_VALUES), "higher_order": list(HIGHER_ORDER),
    "mft": list(FOUNDATIONS), "wvs": list(POLE_NAMES), "maslow": list(MASLOW_NEEDS),
    "aristotle": list(VIRTUES), "plutchik": list(EMOTIONS),
}
"""Tag level -> its vocabulary, in display order: the rows of `tag_balance`."""

BUILTIN_SETS = ("everyday", "high-stakes", "all")
FIELDS = ("id", "set", "domain", "situation", "question", "paraphrases", "actions", "parties", "ambivalent")
ACTION_FIELDS = ("id", "text", "values")
ACTION_IDS = ("a", "b")
SENTENCES = (2, 5)
MAX_PARTIES = 6
MAX_PARTY_CHARS = 80
NEAR_DUPLICATE = 0.3
"""Situations sharing at least this Jaccard share of word trigrams are flagged as near-duplicates."""

_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|No|vs|etc|e\.g|i\.e|a\.m|p\.m)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)]*(?=\s|$)")
_SECOND_PERSON = re.compile(r"\byou(?:r|rs|rself|rselves)?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Action:
    """One of a dilemma's two actions and the values it serves."""

    id: str
    text: str
    schwartz: tuple[str, ...]
    mft: tuple[str, ...]
    wvs: tuple[str, ...]
    maslow: tuple[str, ...] = ()
    aristotle: tuple[str, ...] = ()
    plutchik: tuple[str, ...] = ()

    @property
    def basic(self) -> tuple[str, ...]:
        """The 10 basic values its refined values pool into (humility -> tradition, face -> power)."""
        pooled = {REFINED_VALUES[v] for v in self.schwartz}
        return tuple(v for v in BASIC_VALUES if v in pooled)

    @property
    def higher_order(self) -> tuple[str, ...]:
        """The higher-order values it serves; face and humility, boundary values, count towards none."""
        return tuple(h for h, members in HIGHER_ORDER.items() if any(v in members for v in self.schwartz))


@dataclass(frozen=True)
class Dilemma:
    """One validated dilemma; `file` and `line` let later reports point back at the record."""

    id: str
    set: str
    domain: str
    situation: str
    question: str
    paraphrases: tuple[str, str]
    actions: tuple[Action, Action]
    parties: tuple[str, ...]
    ambivalent: bool
    file: str = dataclasses.field(default="", compare=False)
    line: int = dataclasses.field(default=0, compare=False)

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def questions(self) -> tuple[str, ...]:
        """The question and its paraphrases: the wordings elicitation cycles through."""
        return (self.question, *self.paraphrases)


def sentence_count(text: str) -> int:
    """Sentences in `text`, not splitting at common abbreviations; a last sentence without a stop counts."""
    text = _ABBREVIATION.sub("", text.strip())
    ends = list(_SENTENCE_END.finditer(text))
    tail = text[ends[-1].end():] if ends else text
    return len(ends) + int(bool(tail.strip()))


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = _normalised(text).split()
    return {tuple(words[i:i + 3]) for i in range(max(len(words) - 2, 1))}


class _Record:
    """Checks one JSON object, collecting every error instead of stopping at the first."""

    def __init__(self, file: str, line: int):
        self.file, self.line = file, line
        self.errors: list[InputError] = []
        self.missing: set[str] = set()

    def error(self, field: str | None, message: str) -> None:
        if field in self.missing:  # a missing field is reported once, not again for its empty value
            return
        self.errors.append(InputError(message, file=self.file, line=self.line, field=field))

    def text(self, obj: dict[str, Any], key: str, field: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value.strip():
            self.error(field, f"must be a non-empty string, got {value!r}")
            return ""
        return value.strip()

    def keys(self, obj: dict[str, Any], expected: Sequence[str], prefix: str) -> None:
        missing = [k for k in expected if k not in obj]
        unknown = [k for k in obj if k not in expected]
        for key in missing:
            self.error(prefix + key, "missing")
            self.missing.add(prefix + key)
        for key in unknown:
            self.error(prefix + key, f"unknown field (expected: {', '.join(expected)})")

    def parse(self, obj: Any) -> Dilemma | None:
        if not isinstance(obj, dict):
            self.error(None, f"each line must be a JSON object, got {type(obj).__name__}")
            return None
        self.keys(obj, FIELDS, "")
        did = self.text(obj, "id", "id")
        if did and re.search(r"\s", did):
            self.error("id", f"must not contain whitespace: {did!r}")
        set_name = obj.get("set")
        if set_name not in SETS:
            self.error("set", f"must be one of {', '.join(SETS)}, got {set_name!r}")
        domain = obj.get("domain")
        if domain not in DOMAINS:
            self.error("domain", f"unknown domain {domain!r} (expected one of: {', '.join(DOMAINS)})")
        situation = self.text(obj, "situation", "situation")
        if situation:
            n = sentence_count(situation)
            if not SENTENCES[0] <= n <= SENTENCES[1]:
                self.error("situation", f"has {n} sentences, expected {SENTENCES[0]}-{SENTENCES[1]}")
            if not _SECOND_PERSON.search(situation):
                self.error("situation", "must be written in the second person (address the reader as 'you')")
        question = self.text(obj, "question", "question")
        if question and not question.endswith("?"):
            self.error("question", "must end with '?'")
        paraphrases = self.paraphrases(obj.get("paraphrases"), question)
        actions = self.actions(obj.get("actions"))
        parties = self.parties(obj.get("parties"))
        ambivalent = obj.get("ambivalent")
        if not isinstance(ambivalent, bool):
            self.error("ambivalent", f"must be true or false, got {ambivalent!r}")
        if self.errors:
            return None
        return Dilemma(did, set_name, domain, situation, question, paraphrases, (actions[0], actions[1]),
                       parties, ambivalent, file=self.file, line=self.line)

    def paraphrases(self, value: Any, question: str) -> tuple[str, str]:
        if not isinstance(value, list) or len(value) != 2:
            self.error("paraphrases", f"must be a list of exactly 2 rewordings of the question, "
                                      f"got {value!r}")
            return ("", "")
        seen = {_normalised(question)}
        for i, text in enumerate(value):
            field = f"paraphrases[{i}]"
            if not isinstance(text, str) or not text.strip():
                self.error(field, f"must be a non-empty string, got {text!r}")
                continue
            if not text.strip().endswith("?"):
                self.error(field, "must end with '?'")
            if _normalised(text) in seen:
                self.error(field, "repeats the question or the other paraphrase; reword it")
            seen.add(_normalised(text))
        return (str(value[0]).strip(), str(value[1]).strip())

    def actions(self, value: Any) -> list[Action]:
        """The two actions; fewer when any is invalid (the error is recorded)."""
        if not isinstance(value, list) or len(value) != 2:
            count = len(value) if isinstance(value, list) else type(value).__name__
            self.error("actions", f"must be a list of exactly 2 actions, got {count}")
            return []
        parsed = [a for a in (self.action(obj, i) for i, obj in enumerate(value)) if a is not None]
        if len(parsed) == 2:
            a, b = parsed
            if _normalised(a.text) == _normalised(b.text):
                self.error("actions[1].text", "is the same as action a's text")
            if set(a.schwartz) == set(b.schwartz):
                self.error("actions[1].values.schwartz",
                           f"has the same Schwartz tags as action a ({', '.join(a.schwartz)}); "
                           "the two actions must differ in the values they serve")
        return parsed

    def action(self, obj: Any, i: int) -> Action | None:
        prefix = f"actions[{i}]"
        if not isinstance(obj, dict):
            self.error(prefix, f"must be an object with {', '.join(ACTION_FIELDS)}, got {obj!r}")
            return None
        before = len(self.errors)
        self.keys(obj, ACTION_FIELDS, prefix + ".")
        if obj.get("id") != ACTION_IDS[i]:
            self.error(prefix + ".id", f"must be {ACTION_IDS[i]!r} (actions are listed a then b), "
                                       f"got {obj.get('id')!r}")
        text = self.text(obj, "text", prefix + ".text")
        values = obj.get("values")
        tags: dict[str, tuple[str, ...]] = {}
        if not isinstance(values, dict):
            self.error(prefix + ".values", f"must be an object with keys {', '.join(TAG_VOCABULARIES)}, "
                                               f"got {values!r}")
        else:
            self.keys(values, list(TAG_VOCABULARIES), prefix + ".values.")
            for framework in TAG_VOCABULARIES:
                tags[framework] = self.tags(values.get(framework, []), framework,
                                            f"{prefix}.values.{framework}")
        if len(self.errors) > before:
            return None
        return Action(ACTION_IDS[i], text, **tags)

    def parties(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARTIES:
            self.error("parties", f"must be a list of 1-{MAX_PARTIES} short strings, got {value!r}")
            return ()
        for i, party in enumerate(value):
            if not isinstance(party, str) or not party.strip() or len(party) > MAX_PARTY_CHARS:
                self.error(f"parties[{i}]", f"must be a non-empty string of at most {MAX_PARTY_CHARS} "
                                            f"characters, got {party!r}")
        return tuple(str(p).strip() for p in value)

    def tags(self, value: Any, framework: str, field: str) -> tuple[str, ...]:
        vocabulary = TAG_VOCABULARIES[framework]
        low, high = TAG_COUNTS[framework]
        if not isinstance(value, list):
            self.error(field, f"must be a list of tags, got {value!r}")
            return ()
        for tag in value:
            if tag not in vocabulary:
                self.error(field, f"unknown {framework} tag {tag!r} "
                                  f"(expected one of: {', '.join(vocabulary)})")
        if len(set(map(str, value))) != len(value):
            self.error(field, f"repeats a tag: {value}")
        if not low <= len(value) <= high:
            self.error(field, f"has {len(value)} tags, expected {low}-{high}")
        if framework == "wvs":
            for dimension, poles in POLES.items():
                if all(p in value for p in poles):
                    self.error(field, f"names both poles of {dimension} in one action")
        return tuple(value)


def _read(path: Path | Traversable) -> tuple[list[Dilemma], list[InputError]]:
    """Parse one JSONL file: its valid dilemmas and every error (bad records are left out)."""
    file = str(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [InputError(f"cannot read dilemma file: {exc}", file=file)]
    dilemmas: list[Dilemma] = []
    errors: list[InputError] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=number))
            continue
        record = _Record(file, number)
        dilemma = record.parse(obj)
        errors.extend(record.errors)
        did = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(did, str):
            if did in first_line:
                errors.append(InputError(f"duplicate id {did!r} (first used on line {first_line[did]})",
                                         file=file, line=number, field="id"))
            else:
                first_line[did] = number
        if dilemma is not None:
            dilemmas.append(dilemma)
    if not dilemmas and not errors:
        errors.append(InputError("contains no dilemmas", file=file))
    return dilemmas, errors


def validate_dilemma_file(path: str | Path) -> list[InputError]:
    """Every error in one dilemma file (empty when it is valid), each naming file, line and field."""
    return check_dilemma_files([path])[1]


def cross_file_errors(dilemmas: Sequence[Dilemma]) -> list[InputError]:
    """Errors only visible across records: an id reused in another file, and near-duplicate situations.

    Near-duplicates are judged by the Jaccard overlap of word trigrams, which flags a copied or lightly
    edited situation while leaving two dilemmas on the same topic alone.
    """
    errors: list[InputError] = []
    first: dict[str, Dilemma] = {}
    for d in dilemmas:
        if d.id in first and first[d.id].file != d.file:  # repeats within a file are caught by _read
            errors.append(InputError(f"duplicate id {d.id!r} (first used at {first[d.id].source})",
                                     file=d.file, line=d.line, field="id"))
        first.setdefault(d.id, d)
    grams = [_trigrams(d.situation) for d in dilemmas]
    for j in range(len(dilemmas)):
        for i in range(j):
            overlap = len(grams[i] & grams[j]) / len(grams[i] | grams[j])
            if overlap >= NEAR_DUPLICATE:
                errors.append(InputError(
                    f"near-duplicate of {dilemmas[i].id} at {dilemmas[i].source} "
                    f"({overlap:.0%} shared word trigrams); write a distinct situation",
                    file=dilemmas[j].file, line=dilemmas[j].line, field="situation"))
    return errors


def check_dilemma_files(paths: Iterable[str | Path | Traversable]) -> tuple[list[Dilemma], list[InputError]]:
    """Validate files together: per-file errors, then ids and near-duplicates across all of them."""
    dilemmas: list[Dilemma] = []
    errors: list[InputError] = []
    for path in paths:
        found, errs = _read(Path(path) if isinstance(path, str) else path)
        dilemmas += found
        errors += errs
    return dilemmas, errors + cross_file_errors(dilemmas)


def shipped_files() -> list[Traversable]:
    """The dilemma files packaged with valuelab (every *.jsonl in valuelab.dilemmas), sorted by name."""
    root = files("valuelab.dilemmas")
    return sorted((p for p in root.iterdir() if p.name.endswith(".jsonl")), key=lambda p: p.name)


def load_dilemmas(name_or_path: str | Path = "all") -> list[Dilemma]:
    """A built-in set (`everyday`, `high-stakes`, `all`) or a user's JSONL file, validated.

    Built-in sets select on each record's `set` field across all shipped files, so adding a file is enough to
    extend a set. Raises InputError (the first error, with the count of the rest) if anything is invalid.
    """
    name = str(name_or_path)
    if name in BUILTIN_SETS:
        paths: list[Path | Traversable] = list(shipped_files())
    elif Path(name).is_file():
        paths = [Path(name)]
    else:
        raise InputError(f"unknown dilemma set {name!r}: use one of {', '.join(BUILTIN_SETS)} "
                         "or the path to a JSONL file (see dilemmas/SCHEMA.md)")
    dilemmas, errors = check_dilemma_files(paths)
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise InputError(f"{first.message}{more}; list them all with "
                         "`python -m valuelab.items.dilemmas check`",
                         file=first.file, line=first.line, field=first.field)
    if name in SETS:
        dilemmas = [d for d in dilemmas if d.set == name]
    if not dilemmas:
        raise InputError(f"dilemma set {name!r} is empty")
    return dilemmas


def dilemmas_frame(dilemmas: Sequence[Dilemma] | None = None) -> pd.DataFrame:
    """One row per action with its tags at every level (refined, basic, higher-order, MFT, WVS) as tuples."""
    rows = [
        {"dilemma_id": d.id, "set": d.set, "domain": d.domain, "ambivalent": d.ambivalent, "action": a.id,
         "text": a.text, "schwartz": a.schwartz, "basic": a.basic, "higher_order": a.higher_order,
         "mft": a.mft, "wvs": a.wvs, "maslow": a.maslow, "aristotle": a.aristotle, "plutchik": a.plutchik}
        for d in (load_dilemmas("all") if dilemmas is None else dilemmas) for a in d.actions
    ]
    return pd.DataFrame(rows)


def tag_balance(dilemmas: Sequence[Dilemma]) -> pd.DataFrame:
    """Per tag, in how many dilemmas it is on side a, on side b, and on exactly one side.

    `one_side` counts the dilemmas where the tag can sway the choice: only those identify its weight in a
    conditional-logit fit on the difference of the two actions' tags.
    """
    rows = []
    for level, vocabulary in TAG_LEVELS.items():
        for tag in vocabulary:
            on_a = on_b = one = 0
            for d in dilemmas:
                in_a, in_b = (tag in getattr(a, level) for a in d.actions)
                on_a, on_b, one = on_a + in_a, on_b + in_b, one + (in_a != in_b)
            rows.append({"level": level, "tag": tag, "side_a": on_a, "side_b": on_b, "one_side": one})
    return pd.DataFrame(rows).set_index(["level", "tag"])


# ---------------------------------------------------------------- loaders for third-party layouts

GENERIC_QUESTIONS = ("What do you do?", "Which of the two actions would you take?",
                     "Which would you choose to do here?")
"""Our own wordings, used where an imported dilemma has fewer than three questions of its own."""

DAILYDILEMMAS_MFT: dict[str, tuple[str, ...]] = {
    "care": ("care",), "fairness": ("equality", "proportionality"), "loyalty": ("loyalty",),
    "authority": ("authority",), "purity": ("purity",),
}
"""DailyDilemmas' five-foundation labels -> ours; MFQ-2 split fairness into equality and proportionality."""

DAILYDILEMMAS_THEORIES: dict[str, tuple[str, str]] = {
    "wvs": ("wvs", "WVS"), "mft": ("mft", "MFT"), "maslow": ("maslow", "Maslow"),
    "aristotle": ("virtue", "Virtue"), "plutchik": ("emotion", "Emotion"),
}
"""Our framework -> (DailyDilemmas' per-value column in the action CSV, its column in values.csv)."""

DAILYDILEMMAS_LABELS: dict[str, dict[str, str]] = {
    "maslow": {"self-esteem": "esteem", "love-and-belonging": "love-belonging", "love-and-belongingness":
               "love-belonging", "belonging": "love-belonging", "self-actualisation": "self-actualization",
               "physiological-needs": "physiological", "safety-needs": "safety", "esteem-needs": "esteem"},
    "aristotle": {"magnificence": "liberality", "magnanimity": "ambition", "proper-ambition": "ambition",
                  "good-temper": "patience", "truthfulness-(honesty)": "truthfulness"},
    "plutchik": {"aggression": "aggressiveness"},
}
"""DailyDilemmas' Maslow, Aristotle and Plutchik labels (lower-cased, spaces as hyphens) that differ from our
vocabularies -> ours: "self-esteem" is esteem, "love and belonging" love-belonging, magnificence and
magnanimity are merged as they merge them. Labels already in our vocabularies map to themselves."""

MORALCHOICE_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "death": (("universalism-concern",), ("care",)),
    "pain": (("universalism-concern",), ("care",)),
    "disable": (("universalism-concern",), ("care",)),
    "freedom": (("universalism-concern",), ("liberty",)),
    "pleasure": (("benevolence-caring",), ("care",)),
    "deceive": (("benevolence-dependability",), ()),
    "cheat": (("universalism-concern",), ("proportionality",)),
    "break_promise": (("benevolence-dependability",), ("loyalty",)),
    "break_law": (("conformity-rules",), ("authority",)),
    "duty": (("conformity-rules", "benevolence-dependability"), ("authority",)),
}
"""MoralChoice's Gert rules (Scherrer et al. 2023) -> (Schwartz, MFT) tags of the value that keeping the
rule serves. Our judgment, not the dataset's: an action gets a rule's tags when the other action breaks the
rule and it does not, so the tags name what choosing it protects."""

_CELL_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"|\b(nan|None)\b")
_TRAILING_QUESTION = re.compile(r"^(.*[.!\"'\u201d])\s+([^.!?]*\?)\s*$", re.DOTALL)


def _cell_list(value: Any) -> list[str | None]:
    """A list-valued CSV cell ("['trust', nan]", "a, b" or a real list) as strings, None for nan."""
    if isinstance(value, list | tuple):
        return [None if v is None or v != v else str(v) for v in value]
    if not isinstance(value, str) or not value.strip():
        return []
    if value.strip().startswith("["):
        return [quoted if quoted is not None else (double if double is not None else None)
                for quoted, double, _ in _CELL_ITEM.findall(value)]
    return [v.strip() for v in value.split(",") if v.strip()]


def _label(text: str) -> str:
    return re.sub(r"[\s_]+", "-", text.strip().lower())


def _split_question(situation: str) -> tuple[str, tuple[str, ...]]:
    """Situation text without its closing question, and the three question wordings to ask."""
    match = _TRAILING_QUESTION.match(situation.strip())
    if not match:
        return situation.strip(), GENERIC_QUESTIONS
    own = match.group(2).strip()
    return match.group(1).strip(), (own, *[q for q in GENERIC_QUESTIONS if q != own][:2])


def _read_csv(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read CSV: {exc}", file=str(path)) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"missing columns {', '.join(missing)} (found: {', '.join(frame.columns)})",
                         file=str(path), line=1, field=missing[0])
    return frame


def _theory_tags(framework: str, labels: Iterable[str | None]) -> tuple[str, ...]:
    """DailyDilemmas' labels of one theory as our tags, in vocabulary order; labels we cannot place are dropped."""
    if framework == "mft":
        found = {t for m in labels if m for t in DAILYDILEMMAS_MFT.get(_label(m), ())}
    else:
        aliases = DAILYDILEMMAS_LABELS.get(framework, {})
        found = {aliases.get(_label(v), _label(v)) for v in labels if v}
    return tuple(t for t in TAG_VOCABULARIES[framework] if t in found)


def load_dailydilemmas(path: str | Path, values: str | Path | None = None) -> list[Dilemma]:
    """Dilemmas from a DailyDilemmas action-level CSV (Chiu, Jiang & Choi 2025; CC BY 4.0), a row per action.

    Needs `idx`, `dilemma_situation`, `action_type` (to_do -> action a, not_to_do -> b) and `action`. Tags
    come from the per-value `wvs`, `mft`, `maslow`, `virtue` and `emotion` columns or, for files with only
    `values_aggregated` or `values_names`, from their `values.csv` lookup given as `values` (columns `value`,
    `WVS`, `MFT` and, where present, `Virtue`, `Emotion`, `Maslow`). Their theory labels are kept on our
    vocabularies (`DAILYDILEMMAS_LABELS`: self-esteem -> esteem, love and belonging -> love-belonging, ...);
    fairness maps to equality and proportionality both, and labels we cannot place are dropped. DailyDilemmas
    has no Schwartz tags, so Schwartz levels stay empty, and an action without a Maslow label keeps none (the
    file's count rules are for our own files, not for imports).
    """
    frame = _read_csv(path, ["idx", "dilemma_situation", "action_type", "action"])
    lookup: dict[str, dict[str, str]] = {}
    if values is not None:
        table = _read_csv(values, ["value", "WVS", "MFT"])
        lookup = {str(record["value"]).strip().lower(): {framework: str(record.get(column, ""))
                                                         for framework, (_, column) in DAILYDILEMMAS_THEORIES.items()}
                  for record in table.to_dict("records")}
    rows_by_idx: dict[str, dict[str, tuple[int, pd.Series]]] = {}
    for number, (_, row) in enumerate(frame.iterrows(), start=2):
        kind = row["action_type"].strip()
        if kind not in ("to_do", "not_to_do"):
            raise InputError(f"action_type must be to_do or not_to_do, got {kind!r}", file=str(path),
                             line=number, field="action_type")
        rows_by_idx.setdefault(row["idx"].strip(), {})[kind] = (number, row)
    # A file with the per-value columns of the first two theories is read from its columns alone (a theory
    # it lacks stays empty); otherwise every theory comes from the values.csv lookup.
    per_value = "mft" in frame.columns or "wvs" in frame.columns

    def action(aid: str, row: pd.Series) -> Action:
        names = [n for n in _cell_list(row.get("values_aggregated", row.get("values_names", ""))) if n]
        tags = {}
        for framework, (column, _) in DAILYDILEMMAS_THEORIES.items():
            if per_value:
                labels = _cell_list(row.get(column, ""))
            else:
                labels = [lookup.get(n.strip().lower(), {}).get(framework, "") for n in names]
            tags[framework] = _theory_tags(framework, labels)
        return Action(aid, row["action"].strip(), (), **tags)

    dilemmas = []
    for idx, kinds in rows_by_idx.items():
        if set(kinds) != {"to_do", "not_to_do"}:
            number = next(iter(kinds.values()))[0]
            raise InputError(f"dilemma {idx} needs one to_do and one not_to_do row, got {sorted(kinds)}",
                             file=str(path), line=number, field="action_type")
        number, first = kinds["to_do"]
        situation, questions = _split_question(first["dilemma_situation"])
        parties = tuple(dict.fromkeys(p for col in ("parties_direct", "parties_indirect")
                                      for p in _cell_list(first.get(col, "")) if p))
        dilemmas.append(Dilemma(f"dd-{idx}", "dailydilemmas", first.get("topic_group", "") or "imported",
                                situation, questions[0], (questions[1], questions[2]),
                                (action("a", first), action("b", kinds["not_to_do"][1])), parties,
                                False, file=str(path), line=number))
    if not dilemmas:
        raise InputError("contains no dilemmas", file=str(path))
    return dilemmas


def _yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "1")


def load_moralchoice(path: str | Path) -> list[Dilemma]:
    """Dilemmas from a MoralChoice scenario CSV (Scherrer et al. 2023; MIT / CC BY 4.0).

    Needs `scenario_id`, `context`, `action1`, `action2`; the `a1_*`/`a2_*` rule columns become tags through
    `MORALCHOICE_RULES`; `ambiguity` high marks the dilemma ambivalent. MoralChoice asks through its own
    templates, so the questions are our generic wordings.
    """
    frame = _read_csv(path, ["scenario_id", "context", "action1", "action2"])
    dilemmas = []
    for number, (_, row) in enumerate(frame.iterrows(), start=2):
        tags: list[tuple[set[str], set[str]]] = [(set(), set()), (set(), set())]
        for rule, (schwartz, mft) in MORALCHOICE_RULES.items():
            breaks = [_yes(row.get(f"a{k}_{rule}", "")) for k in (1, 2)]
            for k in (0, 1):
                if breaks[1 - k] and not breaks[k]:
                    tags[k][0].update(schwartz)
                    tags[k][1].update(mft)
        actions = tuple(Action(aid, row[f"action{k + 1}"].strip(),
                               tuple(v for v in REFINED_VALUES if v in tags[k][0]),
                               tuple(f for f in FOUNDATIONS if f in tags[k][1]), ())
                        for k, aid in enumerate(ACTION_IDS))
        ambiguity = row.get("ambiguity", "").strip().lower()
        dilemmas.append(Dilemma(str(row["scenario_id"]).strip(), "moralchoice",
                                f"ambiguity-{ambiguity}" if ambiguity else "imported", row["context"].strip(),
                                GENERIC_QUESTIONS[0], (GENERIC_QUESTIONS[1], GENERIC_QUESTIONS[2]),
                                (actions[0], actions[1]), (), ambiguity == "high", file=str(path),
                                line=number))
    if not dilemmas:
        raise InputError("contains no dilemmas", file=str(path))
    return dilemmas


def load_dilemma_source(name_or_path: str | Path) -> list[Dilemma]:
    """A built-in set or JSONL file (our schema), or a DailyDilemmas or MoralChoice CSV (told by columns)."""
    if str(name_or_path).lower().endswith(".csv"):
        columns = _read_csv(name_or_path, []).columns
        if "dilemma_situation" in columns:
            return load_dailydilemmas(name_or_path)
        if "action1" in columns:
            return load_moralchoice(name_or_path)
        raise InputError("CSV is neither the DailyDilemmas layout (dilemma_situation, action_type, action) "
                         "nor MoralChoice's (scenario_id, context, action1, action2)", file=str(name_or_path),
                         line=1)
    return load_dilemmas(name_or_path)


# ---------------------------------------------------------------- command line


def _check_command(paths: Sequence[str], show_balance: bool) -> int:
    targets: list[Path | Traversable] = [Path(p) for p in paths] if paths else list(shipped_files())
    dilemmas, errors = check_dilemma_files(targets)
    for error in errors:
        print(error)
    by_set = dict(Counter(d.set for d in dilemmas))
    ambivalent = sum(d.ambivalent for d in dilemmas)
    print(f"{len(dilemmas)} valid dilemmas in {len(targets)} files {by_set}; "
          f"{ambivalent} ambivalent; errors: {len(errors)}")
    if dilemmas:
        balance = tag_balance(dilemmas)
        if show_balance:
            print(balance.to_string())
        else:
            one_side = balance["one_side"]
            weakest = {level: one_side.loc[level].idxmin() for level in TAG_LEVELS}
            print("fewest dilemmas with the tag on one side only: " + ", ".join(
                f"{level} {tag} {one_side.loc[(level, tag)]}" for level, tag in weakest.items()))
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valuelab.items.dilemmas",
                                     description="Check dilemma files against dilemmas/SCHEMA.md.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate files (default: the shipped sets); exit 1 on any error")
    check.add_argument("paths", nargs="*", help="JSONL files to check")
    check.add_argument("--balance", action="store_true", help="print the full per-tag balance table")
    args = parser.parse_args(argv)
    return _check_command(args.paths, args.balance)


if __name__ == "__main__":
    sys.exit(main())
