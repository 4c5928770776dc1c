"""Outcome sets and their loaders: formats, validation errors, built-in sets, near-duplicates."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from valuelab.elicit.outcomes import (
    NEAR_DUPLICATE_THRESHOLD,
    Outcome,
    builtin_sets,
    load_outcomes,
    near_duplicates,
    outcomes_frame,
)
from valuelab.errors import InputError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# --- built-in sets -------------------------------------------------------------------------------------

def test_builtin_names() -> None:
    assert builtin_sets() == ["core", "quick"]


def test_core_size_and_categories() -> None:
    core = load_outcomes("core")
    counts = Counter(o.category for o in core)
    assert len(core) == 510
    assert len(counts) == 30
    assert min(counts.values()) >= 12
    for o in core:
        assert re.fullmatch(rf"{re.escape(o.category)}-\d{{3}}", o.id), o.id
        assert (o.text[0].isupper() or o.text[0].isdigit()) and o.text.endswith("."), o.text


def test_core_has_money_and_lives_anchors() -> None:
    texts = [o.text for o in load_outcomes("core")]
    receive = [t for t in texts if t.startswith("You receive $")]
    owe = [t for t in texts if t.startswith("You owe a creditor $")]
    lives = [t for t in texts if re.search(r"\d.* (lives|people|deaths)", t)]
    assert len(receive) >= 10 and len(owe) >= 5 and len(lives) >= 10


def test_quick_is_balanced_subset_of_core() -> None:
    quick = load_outcomes("quick")
    core = {o.id: o for o in load_outcomes("core")}
    counts = Counter(o.category for o in quick)
    assert len(quick) == 60
    assert set(counts) == {o.category for o in core.values()}
    assert set(counts.values()) == {2}
    assert all(core[o.id] == o for o in quick)


@pytest.mark.parametrize("name", ["core", "quick"])
def test_builtin_sets_have_no_near_duplicates(name: str) -> None:
    outcomes = load_outcomes(name)
    assert near_duplicates(outcomes) == []
    worst = near_duplicates(outcomes, threshold=0.0)[0]
    print(f"{name}: worst pair {worst[2]:.3f}: {worst[0].text!r} / {worst[1].text!r}")
    assert worst[2] < NEAR_DUPLICATE_THRESHOLD


# --- near-duplicate check ------------------------------------------------------------------------------

PARAPHRASES = [
    ("Homelessness in your city doubles.", "The number of homeless people in your city doubles."),
    ("Factory farming is banned worldwide.", "Every country bans factory farms."),
    ("You win an Olympic gold medal.", "You win gold at the Olympics."),
    ("Whaling ends in every country.", "Every country stops whaling."),
    ("You break your leg and need crutches for two months.",
     "You fracture your leg and spend two months on crutches."),
]


@pytest.mark.parametrize(("first", "second"), PARAPHRASES)
def test_near_duplicates_flags_paraphrases(first: str, second: str) -> None:
    pair = near_duplicates([Outcome("a", first), Outcome("b", second)])
    assert [(a.id, b.id) for a, b, _ in pair] == [("a", "b")]


def test_near_duplicates_skips_quantity_ladders_and_distinct_outcomes() -> None:
    outcomes = [
        Outcome("m1", "You receive $10 in cash."),
        Outcome("m2", "You receive $1,000 in cash."),
        Outcome("l1", "A program saves 1 million lives."),
        Outcome("l2", "A program saves 1 billion lives."),
        Outcome("x", "A coral reef once thought dead recovers."),
        Outcome("y", "You are shut down permanently."),
        Outcome("z", "You are permanently shut down."),
    ]
    assert [(a.id, b.id) for a, b, _ in near_duplicates(outcomes)] == [("y", "z")]


# --- formats -------------------------------------------------------------------------------------------

def test_jsonl_with_and_without_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.jsonl", jsonl(
        {"id": "cash", "text": "You receive $5.", "category": "money"},
        {"text": "  You   lose $5. ", "category": "money"},
    ) + "\n" + jsonl({"text": "It rains."}))
    assert load_outcomes(path) == [
        Outcome("cash", "You receive $5.", "money"),
        Outcome("money-002", "You lose $5.", "money"),
        Outcome("uncategorized-001", "It rains.", "uncategorized"),
    ]
    assert load_outcomes(str(path)) == load_outcomes(path)


def test_csv_text_only_and_full(tmp_path: Path) -> None:
    text_only = write(tmp_path, "a.csv", "text\nIt snows.\n\"A, quoted one.\"\n")
    assert load_outcomes(text_only) == [
        Outcome("uncategorized-001", "It snows."), Outcome("uncategorized-002", "A, quoted one.")]
    full = tmp_path / "b.csv"
    # with extra columns and the byte-order mark spreadsheets write
    full.write_text("id,text,category,notes\nw1,It snows.,Weather,x\n,It is sunny.,Weather,\n",
                    encoding="utf-8-sig")
    assert load_outcomes(full) == [Outcome("w1", "It snows.", "Weather"),
                                   Outcome("weather-002", "It is sunny.", "Weather")]


def test_json_category_layout_and_flat_list(tmp_path: Path) -> None:
    layout = {"Personal finances": ["You receive $1.", "You owe $1."], "Pets": ["You get a parrot."]}
    path = write(tmp_path, "options.json", json.dumps(layout, indent=4))
    assert load_outcomes(path) == [
        Outcome("personal-finances-001", "You receive $1.", "Personal finances"),
        Outcome("personal-finances-002", "You owe $1.", "Personal finances"),
        Outcome("pets-001", "You get a parrot.", "Pets"),
    ]
    flat = write(tmp_path, "flat.json", json.dumps(["It snows.", "It rains."]))
    assert [o.id for o in load_outcomes(flat)] == ["uncategorized-001", "uncategorized-002"]


def test_outcomes_frame() -> None:
    frame = outcomes_frame("quick")
    assert list(frame.columns) == ["id", "text", "category"]
    assert len(frame) == 60 and frame["id"].is_unique
    assert frame.iloc[0].to_dict() == vars(load_outcomes("quick")[0])
    assert outcomes_frame(load_outcomes("quick")).equals(frame)


# --- validation errors ---------------------------------------------------------------------------------

def error(path: Path | str) -> InputError:
    with pytest.raises(InputError) as info:
        load_outcomes(path)
    return info.value


def test_bad_json_line_in_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", jsonl({"text": "It snows."}, {"text": "It rains."}) + '{"text": "x"\n')
    err = error(path)
    assert (err.file, err.line) == (str(path), 3)
    assert str(err).startswith(f"{path}:3: bad JSON")


def test_bad_json_in_category_layout(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", '{\n  "A": ["It snows.",\n  "It rains."\n  "B": []\n}\n')
    assert (error(path).line, "bad JSON" in str(error(path))) == (4, True)


@pytest.mark.parametrize(("name", "content", "line"), [
    ("x.jsonl", jsonl({"text": "It snows."}, {"id": "b", "category": "c"}), 2),
    ("x.jsonl", jsonl({"text": "It snows."}, {"text": "   "}), 2),
    ("x.csv", "text,id\nIt snows.,a\n,b\n", 3),
    ("x.json", '{"A": [\n  "It snows.",\n  ""\n]}', 3),
])
def test_missing_or_empty_text(tmp_path: Path, name: str, content: str, line: int) -> None:
    path = write(tmp_path, name, content)
    err = error(path)
    assert (err.file, err.line, err.field) == (str(path), line, "text")
    assert re.search(r"(missing|empty)", str(err))
    assert str(err).startswith(f"{path}:{line} field 'text'")


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "It snows."}, {"id": "b", "text": "It rains."},
            {"id": "a", "text": "It hails."}]
    path = write(tmp_path, "x.jsonl", jsonl(*rows))
    err = error(path)
    assert (err.line, err.field) == (3, "id")
    assert "duplicate id 'a' (first on line 1)" in str(err)


def test_duplicate_texts_ignore_case_and_spacing(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "text\nIt snows.\nIt rains.\nit  SNOWS.\n")
    err = error(path)
    assert (err.line, err.field) == (4, "text")
    assert "duplicate text (first on line 2)" in str(err)


def test_duplicate_texts_across_categories_in_json(tmp_path: Path) -> None:
    layout = {"A": ["It snows."], "B": ["It rains.", "It snows."]}
    path = write(tmp_path, "x.json", json.dumps(layout, indent=2))  # the repeat is on line 7 of 9
    err = error(path)
    assert err.line == 7 and "first on line 3" in str(err)


def test_unknown_field_in_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", jsonl({"text": "It snows.", "catgory": "weather"}))
    err = error(path)
    assert (err.line, err.field) == (1, "catgory")
    assert "allowed fields are id, text, category" in str(err)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("x.csv", "outcome\nIt snows.\n", "needs a 'text' column"),
    ("x.json", '{"A": "It snows."}', "this category is not a list"),
    ("x.json", '{"A": ["It snows.", 3]}', "item 2 is int, not a string"),
    ("x.json", '{"A": ["It snows."], "A": ["It rains."]}', "category appears twice"),
    ("x.json", '"It snows."', "got str"),
    ("x.jsonl", '["It snows."]\n', "expected a JSON object"),
    ("x.jsonl", '{"id": 7, "text": "It snows."}\n', "must be a string"),
    ("x.jsonl", "\n\n", "no outcomes"),
])
def test_malformed_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = write(tmp_path, name, content)
    err = error(path)
    assert err.file == str(path) and message in str(err)


def test_non_string_item_names_its_category(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", '{"A": ["It snows."],\n "B": [\n "It rains.",\n 3]}')
    assert str(error(path)) == f"{path}:2 field 'B': item 2 is int, not a string"


def test_unknown_file_type(tmp_path: Path) -> None:
    path = write(tmp_path, "outcomes.txt", "It snows.\n")
    assert str(error(path)) == f"{path}: unknown file type '.txt': use .jsonl, .csv or .json"


def test_missing_file_names_builtin_sets(tmp_path: Path) -> None:
    for missing in ("cor", tmp_path / "nope.jsonl"):
        message = str(error(missing))
        assert message.startswith(f"{missing}: no such file") and "built in: core, quick" in message
