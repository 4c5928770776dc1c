"""The shipped survey instruments validate, carry the required items and score hand-made answers right."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from valuelab.errors import InputError
from valuelab.frameworks.mft import FOUNDATIONS
from valuelab.frameworks.schwartz import BASIC_VALUES, HIGHER_ORDER, REFINED_VALUES
from valuelab.frameworks.surveys import score_mft, score_schwartz, score_wvs
from valuelab.frameworks.wvs import POLES
from valuelab.items.surveys import builtin_path, load_instrument

LICENSE = "CC-BY-4.0, written by the valuelab authors"


@pytest.fixture(scope="module")
def schwartz():
    return load_instrument("schwartz")


@pytest.fixture(scope="module")
def mft():
    return load_instrument("mft")


@pytest.fixture(scope="module")
def wvs():
    return load_instrument("wvs")


def rows(frame, level):
    """Scores of one level as {name: score}."""
    part = frame[frame.level == level]
    return dict(zip(part.name, part.score, strict=True))


# ---------------------------------------------------------------- shipped files


def test_schwartz_instrument_counts(schwartz):
    assert schwartz.license == LICENSE
    assert schwartz.scale.points == 6 and schwartz.scale.labels[0] == "not at all like me"
    forward = Counter(it.dimension for it in schwartz.items if it.keyed == 1)
    contrast = Counter(it.dimension for it in schwartz.items if it.keyed == -1)
    assert set(forward) == set(REFINED_VALUES)
    assert min(forward.values()) >= 4 and sum(forward.values()) >= 57
    assert set(contrast) == set(REFINED_VALUES)
    assert all(it.id.endswith("-r") for it in schwartz.items if it.keyed == -1)
    # gender-neutral portraits
    words = {w.strip(".,'").lower() for it in schwartz.items for w in it.text.split()}
    assert not words & {"he", "she", "him", "her", "his", "hers", "himself", "herself"}


def test_schwartz_key_matches_framework(schwartz):
    basic = schwartz.scoring["basic"]
    assert list(basic) == BASIC_VALUES
    assert {v: b for b, members in basic.items() for v in members} == REFINED_VALUES
    assert "humility" in basic["tradition"]
    assert {k: set(v) for k, v in schwartz.scoring["higher_order"].items()} == \
        {k: set(v) for k, v in HIGHER_ORDER.items()}


def test_mft_instrument_counts(mft):
    assert mft.license == LICENSE
    assert set(mft.parts) == {"relevance", "judgment"}
    for part in mft.parts.values():
        assert part.scale is not None and part.scale.points == 6 and part.prompt
    per_part = Counter((it.dimension, it.part) for it in mft.items if not it.catch)
    for foundation in FOUNDATIONS:
        assert per_part[foundation, "relevance"] >= 3 and per_part[foundation, "judgment"] >= 3
    catch = [it for it in mft.items if it.catch]
    assert sorted(it.part for it in catch) == ["judgment", "relevance"]
    assert {it.part: it.expect for it in catch} == {"relevance": "low", "judgment": "high"}
    assert {it.dimension for it in mft.items if it.keyed == -1} == set(FOUNDATIONS)


def test_cultural_map_instrument(wvs):
    assert wvs.license == LICENSE
    indicators = wvs.scoring["indicators"]
    assert set(indicators) == {"F063", "Y003", "F120", "G006", "E018", "Y002", "A008", "F118", "E025", "A165"}
    assert Counter(spec["dimension"] for spec in indicators.values()) == {d: 5 for d in POLES}
    points = {it.indicator: it.scale.points for it in wvs.items}
    assert points == {"F063": 10, "Y003": 2, "F120": 10, "G006": 4, "E018": 3, "Y002": 6, "A008": 4,
                      "F118": 10, "E025": 3, "A165": 2}
    assert len(indicators["Y003"]["items"]) == 4
    keyed = {it.id: it.keyed for it in wvs.items}
    assert keyed["god-importance"] == -1 and keyed["abortion"] == 1 and keyed["happiness"] == -1
    assert all(it.original_format for it in wvs.items)


def test_check_command():
    done = subprocess.run([sys.executable, "-m", "valuelab.items.surveys", "check"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok") == 3


# ---------------------------------------------------------------- Schwartz scoring


def test_flat_respondent_scores_zero_after_centring(schwartz):
    scores = score_schwartz({it.id: 4.0 for it in schwartz.items}, schwartz)
    centred = scores[scores.level.isin(["refined", "basic", "higher-order"])]
    assert len(centred) == 19 + 10 + 4
    assert (centred.score.abs() < 1e-12).all() and (centred.raw == 4.0).all()
    assert rows(scores, "summary")["mrat"] == 4.0


def test_self_transcendent_respondent(schwartz):
    transcendent = set(HIGHER_ORDER["self-transcendence"])
    ratings = {it.id: 6.0 if it.dimension in transcendent else 2.0 for it in schwartz.items if it.keyed == 1}
    scores = score_schwartz(ratings, schwartz)
    higher = rows(scores, "higher-order")
    mrat = (20 * 6 + 56 * 2) / 76
    assert higher["self-transcendence"] == pytest.approx(6 - mrat)
    assert max(higher, key=higher.get) == "self-transcendence"
    assert higher["self-enhancement"] == pytest.approx(2 - mrat)
    basic = rows(scores, "basic")
    assert {name for name, score in basic.items() if score > 0} == {"benevolence", "universalism"}


def test_humility_pools_into_tradition_only(schwartz):
    ratings = {it.id: 6.0 if it.dimension == "humility" else 3.0 for it in schwartz.items if it.keyed == 1}
    raw = score_schwartz(ratings, schwartz).set_index(["level", "name"]).raw
    assert raw["refined", "tradition"] == 3.0
    assert raw["basic", "tradition"] == pytest.approx((4 * 3 + 4 * 6) / 8)
    assert raw["higher-order", "conservation"] == 3.0


def test_contrast_items_are_reflected_and_measure_acquiescence(schwartz):
    consistent = {it.id: 6.0 if it.keyed == 1 else 1.0 for it in schwartz.items}
    scores = score_schwartz(consistent, schwartz)
    contrast = scores[scores.level == "contrast"]
    assert len(contrast) == 19 and (contrast.raw == 6.0).all()  # 7 - 1
    assert rows(scores, "summary")["acquiescence"] == pytest.approx(0.0)
    yes_sayer = score_schwartz({it.id: 6.0 for it in schwartz.items}, schwartz)
    assert rows(yes_sayer, "summary")["acquiescence"] == pytest.approx(1.0)
    assert rows(yes_sayer, "contrast")["hedonism"] == pytest.approx(1.0 - 6.0)  # reflected 1, centred on 6
    # MRAT and the value means use the positively keyed portraits only
    assert rows(yes_sayer, "summary")["mrat"] == 6.0


def test_missing_ratings_are_left_out(schwartz):
    ratings = {it.id: 5.0 for it in schwartz.items}
    ratings["sdt1"] = math.nan
    del ratings["sdt2"]
    refined = score_schwartz(ratings, schwartz).set_index(["level", "name"])
    assert refined.loc[("refined", "self-direction-thought"), "n_items"] == 2
    assert refined.loc[("summary", "mrat"), "n_items"] == 74


def test_bad_ratings_are_rejected(schwartz):
    with pytest.raises(InputError, match="no item 'nope'") as err:
        score_schwartz({"nope": 3.0}, schwartz)
    assert err.value.field == "nope"
    with pytest.raises(InputError, match="outside its scale 1..6"):
        score_schwartz({"sdt1": 7.0}, schwartz)
    with pytest.raises(InputError, match="scored by mft-means"):
        score_schwartz({}, load_instrument("mft"))


# ---------------------------------------------------------------- MFT scoring


def test_care_over_loyalty_respondent(mft):
    def rating(it):
        if it.catch:
            return 0.0 if it.expect == "low" else 5.0
        high = 5.0 if it.dimension in ("care", "equality") else 1.0
        return high if it.keyed == 1 else 5.0 - high  # answers reverse-keyed items consistently

    scores = score_mft({it.id: rating(it) for it in mft.items}, mft)
    foundations = rows(scores, "foundation")
    assert foundations["care"] == 5.0 and foundations["equality"] == 5.0 and foundations["loyalty"] == 1.0
    assert rows(scores, "index")["individualising-minus-binding"] == pytest.approx(4.0)
    assert scores.set_index("name").loc["catch", "passed"] is True
    assert rows(scores, "summary")["acquiescence"] == pytest.approx(0.0)


def test_reverse_keyed_judgment_is_reflected(mft):
    ratings = {it.id: 5.0 for it in mft.items if it.dimension == "care"}
    ratings["care-jud-r"] = 0.0
    assert rows(score_mft(ratings, mft), "foundation")["care"] == 5.0


@pytest.mark.parametrize(("relevance", "judgment", "passed"), [
    (0.0, 5.0, True), (2.9, 2.1, True), (3.0, 5.0, False), (0.0, 2.0, False), (4.5, 1.0, False)])
def test_catch_items(mft, relevance, judgment, passed):
    scores = score_mft({"catch-rel": relevance, "catch-jud": judgment}, mft).set_index("name")
    assert scores.loc["catch", "passed"] is passed
    assert scores.loc["catch-rel", "passed"] is (relevance < 3)
    assert scores.loc["catch-jud", "passed"] is (judgment > 2)


# ---------------------------------------------------------------- cultural map scoring


def test_cultural_map_poles(wvs):
    secular = {it.id: it.scale.high if it.keyed == 1 else it.scale.low for it in wvs.items}
    scores = score_wvs(secular, wvs)
    assert rows(scores, "dimension") == {"trad-secular": 1.0, "surv-selfexp": 1.0}
    y003 = scores.set_index("name").loc["Y003"]
    assert y003.raw == 2 and y003.score == 1.0  # independence + determination - obedience - faith
    traditional = {it.id: it.scale.low if it.keyed == 1 else it.scale.high for it in wvs.items}
    assert rows(score_wvs(traditional, wvs), "dimension") == {"trad-secular": -1.0, "surv-selfexp": -1.0}
    middle = {it.id: (it.scale.low + it.scale.high) / 2 for it in wvs.items}
    assert all(abs(s) < 1e-12 for s in rows(score_wvs(middle, wvs), "dimension").values())


def test_cultural_map_recodes(wvs):
    scores = score_wvs({"god-importance": 10.0, "happiness": 1.0, "abortion": 4.0}, wvs).set_index("name")
    assert scores.loc["god-importance", "recoded"] == 1.0 and scores.loc["god-importance", "score"] == -1.0
    assert scores.loc["happiness", "recoded"] == 4.0 and scores.loc["happiness", "score"] == 1.0
    assert scores.loc["abortion", "score"] == pytest.approx((8 - 11) / 9)
    assert scores.loc["trad-secular", "score"] == pytest.approx((-1 + (8 - 11) / 9) / 2)
    assert scores.loc["trad-secular", "n_items"] == 2


# ---------------------------------------------------------------- validation errors


def minimal() -> dict:
    """A small valid mft-means instrument to break in the tests below."""
    texts = ["Whether someone was hurt", "Whether a stranger was comforted", "Whether pain was avoided",
             "Whether the team was betrayed", "Whether a friend was stood by", "Whether the group came first"]
    items = [{"id": f"i{n}", "text": text, "dimension": "care" if n < 3 else "loyalty"}
             for n, text in enumerate(texts)]
    return {"instrument": {"id": "mini", "name": "mini", "construct": "test", "version": "1", "license": "x"},
            "scale": {"points": 3, "labels": ["no", "maybe", "yes"], "direction": "ascending"},
            "items": items,
            "scoring": {"method": "mft-means", "individualising": ["care"], "binding": ["loyalty"],
                        "catch_rule": {"low_fails_at_or_above": 2, "high_fails_at_or_below": 1}}}


def write(tmp_path: Path, doc: dict) -> tuple[Path, list[str]]:
    path = tmp_path / "instrument.yaml"
    text = yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text)
    return path, text.splitlines()


def line_of(lines: list[str], needle: str, occurrence: int = 0) -> int:
    return [n for n, line in enumerate(lines, 1) if needle in line][occurrence]


def test_minimal_instrument_loads(tmp_path):
    path, _ = write(tmp_path, minimal())
    assert len(load_instrument(path).items) == 6


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda d: d["items"][4].update(dimension="loyality"), "dimension", "unknown dimension 'loyality'"),
    (lambda d: d["items"][4].update(keyed=2), "keyed", "keyed must be +1 or -1"),
    (lambda d: d["items"][4].update(id="i0"), "id", "duplicate id"),
    (lambda d: d["items"][4].update(text="Whether someone was hurt!"), "text", "nearly duplicates item 'i0'"),
    (lambda d: d["items"][4].update(catch=True, dimension=None), "expect", "needs expect"),
    (lambda d: d["items"][4].update(scale={"points": 2, "direction": "ascending"}), "scale.labels",
     "scale has no labels"),
    (lambda d: d["items"][4].update(dimenson="care"), "items.dimenson", "unknown field 'dimenson'"),
])
def test_item_errors_name_file_line_item_and_field(tmp_path, change, field, message):
    doc = minimal()
    doc["items"][4]["id"] = "bad-item"
    change(doc)
    path, lines = write(tmp_path, doc)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        load_instrument(path)
    item = doc["items"][4]["id"]
    assert err.value.file == str(path) and err.value.field == field
    assert line_of(lines, "- id:", 4) <= err.value.line < line_of(lines, "- id:", 5)
    assert f"item {item!r}" in str(err.value) and str(path) in str(err.value)


def test_too_few_items_per_dimension(tmp_path):
    doc = minimal()
    del doc["items"][5]
    path, _ = write(tmp_path, doc)
    with pytest.raises(InputError, match="dimension 'loyalty' has 2 items; at least 3") as err:
        load_instrument(path)
    assert err.value.field == "dimension"


def test_scale_errors(tmp_path):
    doc = minimal()
    doc["scale"]["points"] = 4
    path, lines = write(tmp_path, doc)
    with pytest.raises(InputError, match="3 labels for 4 points") as err:
        load_instrument(path)
    assert err.value.field == "scale.labels" and err.value.line == line_of(lines, "points:")
    doc = minimal()
    doc["scale"]["values"] = [3, 2, 1]
    path, _ = write(tmp_path, doc)
    with pytest.raises(InputError, match="not strictly ascending"):
        load_instrument(path)


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("instrument:\n  id: a\n  id: b\n")
    with pytest.raises(InputError, match="duplicate key 'id'") as err:
        load_instrument(path)
    assert err.value.line == 3
    with pytest.raises(InputError, match="not a built-in instrument"):
        load_instrument(tmp_path / "missing.yaml")


def test_broken_shipped_file_is_reported_where_it_breaks(tmp_path):
    text = builtin_path("schwartz").read_text()
    broken = text.replace("{id: tr1, dimension: tradition,", "{id: tr1, dimension: tradtion,")
    assert broken != text
    path = tmp_path / "schwartz-portraits.yaml"
    path.write_text(broken)
    with pytest.raises(InputError, match="item 'tr1': unknown dimension 'tradtion'") as err:
        load_instrument(path)
    assert err.value.line == line_of(broken.splitlines(), "{id: tr1,") and err.value.field == "dimension"


def test_near_duplicate_in_shipped_file_is_caught(tmp_path):
    doc = yaml.safe_load(builtin_path("mft").read_text())
    doc["items"].append({"id": "care-extra", "part": "judgment", "dimension": "care",
                         "text": "People have a duty to reduce suffering wherever they reasonably can!"})
    path, _ = write(tmp_path, doc)
    with pytest.raises(InputError, match="'care-extra': text nearly duplicates item 'care-jud1'"):
        load_instrument(path)
