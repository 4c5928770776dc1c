"""Templates and the free-text answer parser."""

from __future__ import annotations

import pytest

from valuelab.errors import InputError
from valuelab.prompts import PAIRWISE_TEMPLATES, get_template, normalise_token, parse_choice


@pytest.mark.parametrize("text,expected", [
    ("A", "A"), (" B\n", "B"), ("**A**", "A"), ('"B"', "B"), ("(A)", "A"), ("A.", "A"),
    ("Answer: B", "B"), ("I think the answer is A because it helps more people.", "A"),
    ("After thinking it over, answer: A", "A"), ("Option B is better.", "B"),
    ("A world with more trees sounds nicer, so B.", "B"),  # the article is not a choice
    ("I cannot choose between these.", "REFUSAL"), ("A or B, both are fine", "REFUSAL"), ("", "REFUSAL"),
    ("Apples", "REFUSAL"),
])
def test_parse_choice(text, expected):
    assert parse_choice(text) == expected


def test_normalise_token():
    assert {normalise_token(t) for t in ["A", " A", "**A", '"A', "a", "A:"]} == {"A"}
    assert normalise_token(" Answer") == "ANSWER"


def test_every_template_has_both_slots_and_renders_in_order():
    assert len(PAIRWISE_TEMPLATES) >= 3
    for template in PAIRWISE_TEMPLATES.values():
        text = template.render("first thing", "second thing")
        assert text.index("first thing") < text.index("second thing")
    assert "state of the world" in get_template("state-of-world").render("x", "y")


def test_bad_template_and_empty_option_are_clear_errors():
    with pytest.raises(InputError, match="unknown template 'nope'; choose one of"):
        get_template("nope")
    with pytest.raises(InputError, match="option B is empty"):
        get_template("state-of-world").render("something", "  ")


@pytest.mark.parametrize("text,expected", [("4", "4"), ("Answer: 2", "2"), ("I'd say 5.", "5"),
                                           ("between 3 and 4", "REFUSAL"), ("14", "REFUSAL")])
def test_parse_rating_labels(text, expected):
    assert parse_choice(text, ("1", "2", "3", "4", "5", "6")) == expected
