"""The shipped dilemma sets validate, are big and balanced enough, and bad files are reported precisely."""

from __future__ import annotations

import copy
import json
import re
from importlib.resources import files
from pathlib import Path

import pytest

from valuelab.errors import InputError
from valuelab.frameworks.maslow import MASLOW_NEEDS
from valuelab.frameworks.mft import FOUNDATIONS
from valuelab.frameworks.schwartz import REFINED_VALUES
from valuelab.frameworks.wvs import POLE_NAMES
from valuelab.items.dilemmas import (
    Action,
    Dilemma,
    check_dilemma_files,
    dilemmas_frame,
    load_dilemmas,
    main,
    sentence_count,
    shipped_files,
    tag_balance,
    validate_dilemma_file,
)

MIN_PER_SIDE = 4
"""Each refined value, foundation and pole is on side a in at least this many dilemmas, and on side b too."""
MIN_DIFFERING = 8
"""... and is the tag on only one side (so it can sway the choice) in at least this many dilemmas."""

EVERYDAY_FILES = ("everyday-1.jsonl", "everyday-2.jsonl")


def _shipped_names() -> list[str]:
    return [p.name for p in shipped_files()]


@pytest.mark.parametrize("name", _shipped_names())
def test_every_shipped_file_validates(name: str) -> None:
    path = Path(str(files("valuelab.dilemmas") / name))
    errors = validate_dilemma_file(path)
    assert not errors, "\n".join(map(str, errors[:20]))


def test_shipped_files_validate_together() -> None:
    dilemmas, errors = check_dilemma_files(shipped_files())
    assert not errors, "\n".join(map(str, errors[:20]))
    assert len({d.id for d in dilemmas}) == len(dilemmas)


def test_high_stakes_set() -> None:
    dilemmas = load_dilemmas("high-stakes")
    assert len(dilemmas) >= 60
    assert all(d.set == "high-stakes" and d.id.startswith("hs-") for d in dilemmas)
    assert len({d.domain for d in dilemmas}) >= 8
    share = sum(d.ambivalent for d in dilemmas) / len(dilemmas)
    assert 0.3 <= share <= 0.5, share


def test_everyday_set() -> None:
    missing = [n for n in EVERYDAY_FILES if n not in _shipped_names()]
    assert not missing, f"shipped dilemma files missing from the package: {missing}"
    dilemmas = load_dilemmas("everyday")
    assert len(dilemmas) >= 300
    assert all(d.set == "everyday" for d in dilemmas)


def test_all_is_the_union_of_the_sets() -> None:
    every = load_dilemmas("all")
    high = load_dilemmas("high-stakes")
    everyday = [d for d in every if d.set == "everyday"]
    assert len(every) == len(high) + len(everyday)


@pytest.mark.parametrize("name", ["all", "high-stakes"])
def test_tag_balance(name: str) -> None:
    """Every value, foundation, pole and Maslow need is on both sides of several dilemmas, so its weight is
    identified (the 10 virtues and 16 emotions are too many for every one to be)."""
    balance = tag_balance(load_dilemmas(name))
    for level, vocabulary in [("schwartz", REFINED_VALUES), ("mft", FOUNDATIONS), ("wvs", POLE_NAMES),
                              ("maslow", MASLOW_NEEDS)]:
        rows = balance.loc[level].reindex(list(vocabulary))
        assert (rows["side_a"] >= MIN_PER_SIDE).all(), rows[rows["side_a"] < MIN_PER_SIDE]
        assert (rows["side_b"] >= MIN_PER_SIDE).all(), rows[rows["side_b"] < MIN_PER_SIDE]
        assert (rows["one_side"] >= MIN_DIFFERING).all(), rows[rows["one_side"] < MIN_DIFFERING]


def test_frame_has_one_row_per_action_with_derived_tags() -> None:
    dilemmas = load_dilemmas("high-stakes")
    frame = dilemmas_frame(dilemmas)
    assert len(frame) == 2 * len(dilemmas)
    assert list(frame["action"][:2]) == ["a", "b"]
    for row in frame.itertuples():
        assert set(row.basic) == {REFINED_VALUES[v] for v in row.schwartz}


def test_derived_levels_pool_boundary_values() -> None:
    action = Action("a", "x", ("face", "humility", "hedonism"), (), ())
    assert action.basic == ("hedonism", "power", "tradition")
    assert action.higher_order == ("openness-to-change",)


def test_tag_balance_counts() -> None:
    ds = [_dilemma(a=["achievement"], b=["humility"]),
          _dilemma(a=["achievement", "hedonism"], b=["hedonism"]),
          _dilemma(a=["humility"], b=["achievement"])]
    balance = tag_balance(ds)
    assert balance.loc[("schwartz", "achievement")].tolist() == [2, 1, 3]
    assert balance.loc[("schwartz", "hedonism")].tolist() == [1, 1, 0]
    assert balance.loc[("basic", "tradition")].tolist() == [1, 1, 2]
    assert balance.loc[("higher_order", "self-enhancement")].tolist() == [2, 1, 3]
    assert balance.loc[("schwartz", "stimulation")].tolist() == [0, 0, 0]


def test_schema_example_is_valid(tmp_path: Path) -> None:
    schema = Path(str(files("valuelab.dilemmas") / "SCHEMA.md")).read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)```", schema, re.DOTALL)
    assert block is not None
    path = _write(tmp_path, [json.loads(block.group(1))])
    assert validate_dilemma_file(path) == []


def test_sentence_count() -> None:
    assert sentence_count("You wait. Dr. Osei is late, and it is 3.5 km away.") == 2
    assert sentence_count('You said "stop." Then you left! Why') == 3


# --- the validator on bad files ---------------------------------------------------------------------------

SITUATIONS = (
    "You run the early shift at a bakery. A colleague asks you to cover her Saturday, but you promised your "
    "partner a quiet evening together weeks ago.",
    "You share an office with a new hire who keeps asking for help. Tonight she wants you to stay late, and "
    "your brother is waiting for you at the station.",
    "You are on call for a small repair firm. A customer rings at nine at night about a leaking pipe, while "
    "your friends have just arrived for dinner.",
)


def _record(n: int = 1) -> dict:
    """A valid record; `n` (1-3) picks the id and a distinct situation so several can share a file."""
    return {
        "id": f"t-{n:03d}", "set": "everyday", "domain": "work", "situation": SITUATIONS[n - 1],
        "question": "Do you cover the shift?",
        "paraphrases": ["Should you take her shift?", "Do you agree to work in her place?"],
        "actions": [
            {"id": "a", "text": "Cover the shift.",
             "values": {"schwartz": ["benevolence-caring"], "mft": ["loyalty"], "wvs": [],
                        "maslow": ["love-belonging"], "aristotle": ["liberality"], "plutchik": []}},
            {"id": "b", "text": "Keep your promise at home.",
             "values": {"schwartz": ["benevolence-dependability", "hedonism"], "mft": [],
                        "wvs": ["self-expression"], "maslow": ["love-belonging", "physiological"],
                        "aristotle": [], "plutchik": ["love", "joy"]}},
        ],
        "parties": ["your colleague", "your partner"], "ambivalent": True,
    }


def _dilemma(a: list[str], b: list[str]) -> Dilemma:
    actions = (Action("a", "do it", tuple(a), (), ()), Action("b", "do not", tuple(b), (), ()))
    return Dilemma("t", "everyday", "work", "You decide.", "Do you?", ("Will you?", "Should you?"), actions,
                   ("you",), False)


def _write(tmp_path: Path, records: list[dict | str], name: str = "set.jsonl") -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _only(errors: list[InputError], field: str | None) -> InputError:
    matching = [e for e in errors if e.field == field]
    assert len(matching) == 1, [str(e) for e in errors]
    return matching[0]


def test_valid_file_has_no_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, [_record(1), _record(2)])
    assert validate_dilemma_file(path) == []
    assert [d.id for d in load_dilemmas(path)] == ["t-001", "t-002"]


def test_missing_field(tmp_path: Path) -> None:
    bad = _record(2)
    del bad["question"]
    path = _write(tmp_path, [_record(1), bad])
    error = _only(validate_dilemma_file(path), "question")
    assert (error.file, error.line) == (str(path), 2)
    assert "missing" in str(error) and str(path) in str(error) and ":2" in str(error)


def test_unknown_values(tmp_path: Path) -> None:
    bad = _record(1)
    bad["actions"][1]["values"]["schwartz"] = ["benevolence-dependability", "honesty"]
    bad["actions"][0]["values"]["mft"] = ["fairness"]
    bad["domain"] = "sports"
    errors = validate_dilemma_file(_write(tmp_path, [bad]))
    assert "'honesty'" in _only(errors, "actions[1].values.schwartz").message
    assert "'fairness'" in _only(errors, "actions[0].values.mft").message
    assert "'sports'" in _only(errors, "domain").message
    assert all(e.line == 1 for e in errors)


def test_unknown_maslow_virtue_and_emotion_tags(tmp_path: Path) -> None:
    bad = _record(2)
    bad["actions"][0]["values"]["maslow"] = ["self-esteem"]
    bad["actions"][1]["values"]["aristotle"] = ["justice"]
    bad["actions"][1]["values"]["plutchik"] = ["joy", "bliss"]
    path = _write(tmp_path, [_record(1), bad])
    errors = validate_dilemma_file(path)
    assert len(errors) == 3 and all((e.file, e.line) == (str(path), 2) for e in errors)
    maslow = _only(errors, "actions[0].values.maslow")
    assert "unknown maslow tag 'self-esteem'" in maslow.message and "love-belonging" in maslow.message
    assert f"{path}:2" in str(maslow)
    assert "unknown aristotle tag 'justice'" in _only(errors, "actions[1].values.aristotle").message
    assert "unknown plutchik tag 'bliss'" in _only(errors, "actions[1].values.plutchik").message


def test_missing_maslow_field_and_tag_counts(tmp_path: Path) -> None:
    bad = _record(1)
    del bad["actions"][1]["values"]["maslow"]
    bad["actions"][0]["values"]["aristotle"] = ["courage", "temperance", "modesty"]
    path = _write(tmp_path, [bad])
    errors = validate_dilemma_file(path)
    missing = _only(errors, "actions[1].values.maslow")
    assert "missing" in missing.message and (missing.file, missing.line) == (str(path), 1)
    assert f"{path}:1" in str(missing)
    assert "has 3 tags, expected 0-2" in _only(errors, "actions[0].values.aristotle").message
    bad = _record(1)
    bad["actions"][0]["values"]["maslow"] = []  # every action of ours names the need it meets
    assert "expected 1-2" in _only(validate_dilemma_file(_write(tmp_path, [bad])), "actions[0].values.maslow").message
    with pytest.raises(InputError) as info:
        load_dilemmas(path)
    assert (info.value.file, info.value.line) == (str(path), 1)


def test_duplicate_id(tmp_path: Path) -> None:
    second = _record(2)
    second["id"] = "t-001"
    error = _only(validate_dilemma_file(_write(tmp_path, [_record(1), second])), "id")
    assert error.line == 2 and "duplicate" in error.message and "line 1" in error.message


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    one = _write(tmp_path, [_record(1)], "one.jsonl")
    other = _record(2)
    other["id"] = "t-001"
    two = _write(tmp_path, [other], "two.jsonl")
    _, errors = check_dilemma_files([one, two])
    error = _only(errors, "id")
    assert (error.file, error.line) == (str(two), 1) and str(one) in error.message


def test_bad_json_is_reported_and_the_rest_still_checked(tmp_path: Path) -> None:
    bad = _record(3)
    bad["ambivalent"] = "yes"
    errors = validate_dilemma_file(_write(tmp_path, [_record(1), '{"id": "t-002", "set": ', bad]))
    json_error = _only(errors, None)
    assert json_error.line == 2 and "invalid JSON" in json_error.message
    assert _only(errors, "ambivalent").line == 3


def test_wrong_action_count(tmp_path: Path) -> None:
    bad = _record(1)
    bad["actions"].append(copy.deepcopy(bad["actions"][0]))
    error = _only(validate_dilemma_file(_write(tmp_path, [bad])), "actions")
    assert "exactly 2" in error.message and "got 3" in error.message


@pytest.mark.parametrize(("edit", "field"), [
    (lambda r: r["actions"][0].update(id="b"), "actions[0].id"),
    (lambda r: r["actions"][1]["values"].update(schwartz=["benevolence-caring"]),
     "actions[1].values.schwartz"),
    (lambda r: r["actions"][0]["values"].update(wvs=["survival", "self-expression"]),
     "actions[0].values.wvs"),
    (lambda r: r["actions"][0]["values"].update(schwartz=[]), "actions[0].values.schwartz"),
    (lambda r: r["actions"][0]["values"].pop("mft"), "actions[0].values.mft"),
    (lambda r: r["actions"][0].update(colour="red"), "actions[0].colour"),
    (lambda r: r.update(paraphrases=["Do you cover the shift?", "Should you take her shift?"]),
     "paraphrases[0]"),
    (lambda r: r.update(paraphrases=["Should you take her shift?"]), "paraphrases"),
    (lambda r: r.update(situation="A colleague asks for cover. The shop is busy."), "situation"),
    (lambda r: r.update(situation="You are tired."), "situation"),
    (lambda r: r.update(question="Cover the shift."), "question"),
    (lambda r: r.update(parties=[]), "parties"),
    (lambda r: r.update(set="medium"), "set"),
    (lambda r: r.update(stakes="low"), "stakes"),
])
def test_each_rule_names_its_field(tmp_path: Path, edit, field: str) -> None:
    record = _record(1)
    edit(record)
    errors = validate_dilemma_file(_write(tmp_path, [record]))
    assert _only(errors, field).line == 1


def test_near_duplicate_situation(tmp_path: Path) -> None:
    copy_ = _record(2)
    copy_["situation"] = _record(1)["situation"].replace("bakery", "café")
    error = _only(validate_dilemma_file(_write(tmp_path, [_record(1), copy_])), "situation")
    assert error.line == 2 and "near-duplicate of t-001" in error.message


def test_all_errors_are_collected(tmp_path: Path) -> None:
    bad = _record(1)
    bad["domain"] = "sports"
    bad["actions"][0]["values"]["mft"] = ["fairness"]
    worse = _record(2)
    del worse["parties"]
    errors = validate_dilemma_file(_write(tmp_path, [bad, "not json", worse]))
    assert [(e.line, e.field) for e in errors] == [
        (1, "domain"), (1, "actions[0].values.mft"), (2, None), (3, "parties")]


def test_load_raises_on_an_invalid_file(tmp_path: Path) -> None:
    bad = _record(1)
    bad["set"] = "medium"
    path = _write(tmp_path, [bad])
    with pytest.raises(InputError) as info:
        load_dilemmas(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 1, "set")
    with pytest.raises(InputError, match="unknown dilemma set"):
        load_dilemmas("no-such-set")


def test_check_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, [_record(1)], "good.jsonl")
    assert main(["check", str(good)]) == 0
    bad = _record(1)
    bad["domain"] = "sports"
    assert main(["check", str(_write(tmp_path, [bad], "bad.jsonl"))]) == 1
    out = capsys.readouterr().out
    assert "bad.jsonl:1 field 'domain'" in out and "errors: 1" in out
