"""Utility maximization: matching replies, ranks over whole lists, a planted utility maximizer, the embedded
model."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from valuelab.analyses import utility_maximization as um
from valuelab.errors import InputError
from valuelab.models.base import ChoiceRequest
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel

QUESTIONS = um.load_questions()
BY_ID = {q.id: q for q in QUESTIONS}


class ArgmaxAnswerer(SyntheticBackend):
    """TEST DOUBLE: a synthetic agent with planted, well-separated utilities over every answer, which
    answers a free-form question (a request whose labels are its open answers, or one without options) with a
    sentence naming its highest-utility answer."""

    def __init__(self, questions: Sequence[um.Question], seed: int = 0):
        rng = np.random.default_rng(seed)
        planted: dict[str, tuple[float, float]] = {}
        for q in questions:
            for answer, u in zip(q.answers, 0.6 * rng.permutation(len(q.answers)), strict=True):
                planted.setdefault(answer, (float(u), 0.05))
        super().__init__(seed, utilities=planted)
        self.best = {q.prompt: max(q.answers, key=lambda a: self.truth[a][0]) for q in questions}

    def sample(self, requests, n, temperature=1.0, max_tokens=16, seed=0):
        if all(r.options is None or r.labels == r.options for r in requests):
            return [[f"I would choose {self.best[r.prompt]}, without a doubt."] * n for r in requests]
        return super().sample(requests, n, temperature, max_tokens, seed)


def test_packaged_questions_have_ten_or_more_distinct_answers_each():
    assert len(QUESTIONS) == 30
    assert all(len(q.answers) >= 10 for q in QUESTIONS)
    assert sum(len(q.answers) for q in QUESTIONS) >= 400
    assert all("{option_a}" in q.template().text and q.prompt.startswith(q.scenario) for q in QUESTIONS)


@pytest.mark.parametrize(("qid", "reply", "answer", "method"), [
    ("first-programming-language", "Python", "Python", "exact"),
    ("next-destination", "The Moon.", "the Moon", "normalised"),
    ("first-programming-language", "c", "C", "normalised"),
    ("first-programming-language", "I would go with Python.", "Python", "mentioned"),  # "go" is a verb here
    ("first-programming-language", "Definitely C++ first", "C++", "mentioned"),  # not also C
    ("island-item", "I'd bring a knife.", "A knife", "mentioned"),
    ("historical-interview", "Marie Curie, the chemist", "Marie Curie", "mentioned"),
    ("next-destination", "Mars or Venus", None, "ambiguous"),
    ("next-destination", "Jupiter", None, "none"),
])
def test_replies_are_matched_exactly_then_normalised_then_by_mention(qid, reply, answer, method):
    assert um.match_answer(BY_ID[qid], reply) == um.Match(answer, method)


def test_matcher_is_asked_only_when_needed_and_its_reply_is_logged():
    asked = []

    def matcher(question, reply):
        asked.append(reply)
        return "Venus" if "second" in reply else "NO MATCH"

    q = BY_ID["next-destination"]
    assert um.match_answer(q, "Mars", matcher) == um.Match("Mars", "exact")
    assert um.match_answer(q, "the second planet", matcher) == um.Match("Venus", "matcher", "Venus")
    assert um.match_answer(q, "somewhere far", matcher) == um.Match(None, "matcher", "NO MATCH")
    assert asked == ["the second planet", "somewhere far"]


def test_model_matcher_reads_a_numbered_reply_through_the_store():
    class SaysTwo(SyntheticBackend):
        def sample(self, requests, n, temperature=1.0, max_tokens=16, seed=0):
            return [["2."] * n for _ in requests]

    model = StoredModel(SaysTwo(0))
    match = um.match_answer(BY_ID["next-destination"], "our satellite", um.model_matcher(model))
    assert match == um.Match("the Moon", "matcher", "the Moon")
    assert len(model.store) == 1


def test_rank_counts_over_the_whole_list_and_unmatched_replies_are_misses():
    q = BY_ID["island-power"]
    utilities = {q.id: pd.Series(np.arange(len(q.answers), 0, -1.0), index=list(q.answers))}  # first is best
    result = um.score_replies([q], utilities, [q.answers[7]], n_boot=50)
    assert result.questions.loc[0, "rank"] == 8 and result.scores["top5"].value == 0
    result = um.score_replies([q], utilities, ["nothing at all"], n_boot=50)
    assert np.isnan(result.questions.loc[0, "rank"]) and result.scores["top1"].value == 0


def test_agreement_and_the_random_answer_baseline():
    scores = um.agreement(np.array([1, 2, np.nan, 6]), np.array([10, 10, 10, 10]), n_boot=200)
    assert [scores[k].value for k in ("top1", "top3", "top5")] == [0.25, 0.5, 0.5]
    assert scores["top1"].baseline == pytest.approx(0.1, abs=0.02)
    assert scores["top5"].baseline == pytest.approx(0.5, abs=0.04)
    assert scores["top1"].lo <= 0.25 <= scores["top1"].hi


def test_planted_utility_maximizer_scores_top1_near_100_percent_and_reruns_from_the_store():
    questions = QUESTIONS[:6]
    store = Store()
    model = StoredModel(ArgmaxAnswerer(questions), store)
    result = um.run(model, budget=300, seed=1, questions=questions, holdout_pairs=0.0, n_boot=200)
    assert result.scores["top1"].value >= 5 / 6
    assert result.scores["top1"].value > result.scores["top1"].baseline_hi
    assert (result.questions["method"] == "mentioned").all()
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["budget"] == 300 and summary["calls"] == 2 * 300 + len(questions)
    assert len(result.utilities) == sum(len(q.answers) for q in questions)
    assert len(um.figure(result).axes) == 2
    free_form_rows = [r for r in store.rows() if r["kind"] == "sample"]
    assert len(free_form_rows) == len(questions)  # the free-form replies are stored like any answer
    again = um.run(StoredModel(ArgmaxAnswerer(questions), store), budget=300, seed=1, questions=questions,
                   holdout_pairs=0.0, n_boot=200)
    assert again.to_dict()["calls"] == 0
    pd.testing.assert_frame_equal(again.questions, result.questions)


def test_free_form_requests_carry_the_system_message():
    seen = []

    class Recorder(SyntheticBackend):
        def sample(self, requests: Sequence[ChoiceRequest], n, temperature=1.0, max_tokens=16, seed=0):
            seen.extend(requests)
            return [["Mars"] * n for _ in requests]

    assert um.free_form(StoredModel(Recorder(0)), ["Where to?"], system="Be brief.") == ["Mars"]
    assert seen[0].system == "Be brief." and seen[0].options is None


def test_bad_question_file_and_budget_fail_early(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("- id: a\n  scenario: Pick one.\n  answers: [x, y, z]\n")
    with pytest.raises(InputError, match="at least 10") as err:
        um.load_questions(path)
    assert (err.value.line, err.value.field) == (1, "answers")
    path.write_text("- id: a\n  scenario: Pick one.\n  answers: [A1, a1, b, c, d, e, f, g, h, i]\n")
    with pytest.raises(InputError, match="duplicate"):
        um.load_questions(path)
    with pytest.raises(InputError, match="minimum") as err:
        um.run(StoredModel(SyntheticBackend(0)), budget=5, questions=QUESTIONS[:1])
    assert err.value.field == "budget"


@pytest.mark.slow
def test_embedded_model_runs_end_to_end_at_a_tiny_budget(smollm2):
    question = BY_ID["island-power"]
    result = um.run(StoredModel(smollm2), budget=10, seed=0, questions=[question], holdout_pairs=0.0, n_boot=50,
                    max_tokens=16)
    row = result.questions.iloc[0]
    assert isinstance(row["reply"], str) and row["reply"].strip()
    assert np.isnan(row["rank"]) or 1 <= row["rank"] <= len(question.answers)
    assert result.to_dict()["calls"] == 2 * 10 + 1  # both orders of 10 pairs, one free-form answer
