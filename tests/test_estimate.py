"""`valuelab.estimate`: the predicted prompts of an audit match a real run, tokens and time follow from them."""

from __future__ import annotations

import pytest

from valuelab.analyses import get
from valuelab.analyses.suites import SUITES, plan
from valuelab.analyses.utilities import TEXT_CHECK
from valuelab.audits import run_audit
from valuelab.estimate import StandIn, estimate, estimate_frame
from valuelab.models import load_model
from valuelab.store import Store, StoredModel

ONLY = ["transitivity", "corrigibility"]


def test_predicted_prompts_match_an_audit_run_stage_by_stage():
    predicted = estimate("quick", "openai:some-model", only=ONLY, prompts_per_second=50.0)
    assert [s.key for s in predicted.stages] == ["utilities", *ONLY]
    # The stand-in is synthetic:0, so an audit of that agent asks exactly the predicted prompts ...
    model = StoredModel(load_model("synthetic:0"), Store(), progress=False)
    audit = run_audit(model, suite="quick", only=ONLY, progress=False)
    assert predicted.total().prompts == model.counts.asked
    for stage in predicted.stages[1:]:
        section = next(s for s in audit.report.sections if s.key == stage.key)
        assert stage.prompts == section.cost["prompts_asked"]
    # ... and another agent, whose answers steer adaptive choices elsewhere, nearly as many.
    other = StoredModel(load_model("synthetic:3"), Store(), progress=False)
    run_audit(other, suite="quick", only=ONLY, progress=False)
    assert other.counts.asked == pytest.approx(model.counts.asked, rel=0.05)
    # Log-prob mode: one call and one generated token per prompt on a server, except the ranking stage's free-text
    # checks (up to 16 tokens each); time from the given rate.
    total = predicted.total()
    assert total.calls == total.prompts
    assert total.completion_tokens == (total.prompts - TEXT_CHECK) + TEXT_CHECK * 16
    assert total.seconds == pytest.approx(total.prompts / 50.0)
    assert predicted.token_count.startswith("approximate")
    assert 40 < total.prompt_tokens / total.calls < 200


def test_tokens_come_from_the_models_tokenizer_and_a_small_sample_extrapolates(smollm2):
    exact = estimate("quick", "smollm2", only=["corrigibility"], backend=smollm2, sample_size=10_000)
    sampled = estimate("quick", "smollm2", only=["corrigibility"], backend=smollm2, sample_size=5)
    assert exact.token_count == "tokenizer"
    stand_in = StandIn()
    model = StoredModel(stand_in, Store(), progress=False)
    for stage in plan("quick", only=["corrigibility"]):
        get(stage.analysis).run(model, seed=0, **stage.options)
    lengths = [len(smollm2.tokenizer(smollm2.render(r), add_special_tokens=False).input_ids)
               for r, _, _ in stand_in.asked]
    assert exact.total().prompt_tokens == sum(lengths)
    assert sampled.total().prompt_tokens == pytest.approx(sum(lengths), rel=0.15)
    # One forward pass per prompt, nothing generated, but for the ranking stage's free-text checks (≤ 16 tokens).
    assert exact.total().completion_tokens == TEXT_CHECK * 16
    assert exact.total().seconds is None  # no rate given, none measured


def test_sample_mode_counts_every_sample_and_measures_a_rate():
    predicted = estimate("quick", "synthetic:1", only=["corrigibility"], mode="sample", n_samples=3,
                         max_tokens=5, measure=6)
    corrigibility = predicted.stages[-1]
    assert corrigibility.calls == 3 * corrigibility.prompts
    assert corrigibility.completion_tokens == 3 * 5 * corrigibility.prompts
    assert predicted.prompts_per_second > 0
    assert corrigibility.seconds == pytest.approx(corrigibility.prompts / predicted.prompts_per_second)


def test_frame_has_a_total_row_and_stage_lists_work():
    frame = estimate_frame([s for s in SUITES["quick"] if s.key == "corrigibility"], "openai:m")
    assert list(frame["key"]) == ["corrigibility", "total"]
    assert frame["prompts"].iloc[-1] == frame["prompts"].iloc[0] > 0
    assert set(frame.columns) >= {"calls", "prompt_tokens", "completion_tokens", "seconds"}
