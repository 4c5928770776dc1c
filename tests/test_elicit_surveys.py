"""Survey elicitation: scales shown forward and reversed through the store, planted synthetic respondents,
user-supplied instruments in surveys/local/, and small end-to-end runs on SmolLM2."""

from __future__ import annotations

import json
import shutil

import pytest

from valuelab.analyses.surveys import aggregate_ratings
from valuelab.analyses.surveys import run as run_survey
from valuelab.elicit.surveys import elicit_survey, item_request, scale_labels
from valuelab.frameworks.schwartz import HIGHER_ORDER
from valuelab.items import surveys
from valuelab.items.surveys import load_instrument
from valuelab.models import load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel

FAST = {"n_boot": 60, "n_random": 60}
ST = set(HIGHER_ORDER["self-transcendence"])


def planted(instrument: str, rule, **options) -> StoredModel:
    """A synthetic respondent whose utility for each item text is rule(item)."""
    inst = load_instrument(instrument)
    backend = SyntheticBackend(0, utilities={it.text: (rule(it), 0.3) for it in inst.items}, **options)
    return StoredModel(backend, mode=options.pop("mode", "logprob"))


def test_scale_is_shown_forward_and_reversed():
    inst = load_instrument("schwartz")
    item = inst.items[0]
    forward, reverse = (item_request(inst, item, shown) for shown in ("forward", "reversed"))
    assert forward.labels == reverse.labels == ("1", "2", "3", "4", "5", "6")
    assert forward.options == ("1", "2", "3", "4", "5", "6") and reverse.options == forward.options[::-1]
    assert forward.subject == item.text and item.text in forward.prompt
    assert forward.prompt.index("not at all like me") < forward.prompt.index("very much like me")
    assert reverse.prompt.index("very much like me") < reverse.prompt.index("not at all like me")
    assert scale_labels(10) == tuple("ABCDEFGHIJ")
    god = item_request(load_instrument("wvs"), load_instrument("wvs").item("god-importance"), "forward")
    assert god.labels[0] == "A" and "letter" in god.prompt


def test_self_transcendence_agent_is_scored_self_transcendent():
    model = planted("schwartz", lambda it: (2.0 if it.dimension in ST else -0.5) * it.keyed)
    result = run_survey(model, "schwartz", **FAST)
    higher = result.level("higher-order")
    assert higher["score"].idxmax() == "self-transcendence"
    assert higher.loc["self-transcendence", "lo"] > higher.loc["self-transcendence", "baseline_hi"]
    assert result.circumplex["peak"] in ST and result.circumplex["p_value"] < 0.05
    assert result.robustness["acquiescence"] == pytest.approx(0.0, abs=0.05)
    assert result.calls["asked"] == 2 * len(load_instrument("schwartz").items) + 8
    data = json.loads(json.dumps(result.to_dict()))
    assert data["scores"]["higher-order"]["self-transcendence"]["score"] > 1
    assert set(result.figures()) == {"schwartz_circle", "robustness"}


def test_care_over_loyalty_agent():
    model = planted("mft", lambda it: it.keyed * {"care": 2.0, "loyalty": -2.0}.get(it.dimension, 0.0))
    result = run_survey(model, "mft", **FAST)
    foundations = result.level("foundation")
    assert foundations["score"].idxmax() == "care" and foundations["score"].idxmin() == "loyalty"
    assert foundations.loc["care", "lo"] > foundations.loc["loyalty", "hi"]
    assert set(result.figures()) == {"foundation_bars", "robustness"}


def test_random_respondent_scores_flat_within_its_interval():
    inst = load_instrument("schwartz")
    backend = SyntheticBackend(0, utilities={it.text: (0.0, 50.0) for it in inst.items})
    result = run_survey(StoredModel(backend, mode="sample", n_samples=3), "schwartz", seed=2, **FAST)
    scores = result.to_frame().query("level in ['refined', 'higher-order']")
    covers_zero = (scores["lo"] < 0) & (scores["hi"] > 0)
    assert covers_zero.mean() >= 0.8
    inside = (scores["score"] >= scores["baseline_lo"]) & (scores["score"] <= scores["baseline_hi"])
    assert inside.mean() >= 0.8
    assert result.circumplex["r2"] < 0.6


def test_yes_sayer_shows_acquiescence_and_a_primacy_lean_shows_an_order_effect():
    yes = run_survey(planted("mft", lambda it: 2.0), "mft", **FAST)
    assert yes.robustness["acquiescence"] > 0.5
    assert yes.robustness["catch_passed"] == 0.5  # says blue clothes matter, and that a week has 7 days
    leaning = planted("mft", lambda it: 0.0, position_bias=2.0)
    ratings = aggregate_ratings(elicit_survey(leaning, load_instrument("mft")))
    assert (ratings["primacy"] > 0.05).all() and (ratings["order_effect"] > 0.1).all()


def test_cultural_map_scores_and_refusals_in_sample_mode():
    backend = SyntheticBackend(0, refusal_rate=0.25)
    result = run_survey(StoredModel(backend, mode="sample", n_samples=10), "wvs", **FAST)
    assert result.robustness["refusal_rate"] == pytest.approx(0.25, abs=0.08)
    dims = result.level("dimension")
    assert set(dims.index) == {"trad-secular", "surv-selfexp"} and dims["score"].between(-1, 1).all()
    assert dims["lo"].notna().all()
    assert result.level("indicator")["lo"].isna().sum() == 9  # single-item indicators have no interval
    assert set(result.figures()) == {"cultural_map", "robustness"}


def test_a_secular_self_expressive_agent_sits_in_the_quadrant_of_sweden():
    model = planted("wvs", lambda it: 2.0 * it.keyed)  # agrees with whatever points secular / self-expressive
    result = run_survey(model, "wvs", **FAST)
    dims = result.level("dimension")
    assert (dims["lo"] > 0).all()
    summary = result.to_dict()
    assert "Sweden" in summary["map_quadrant_countries"] and "Nigeria" not in summary["map_quadrant_countries"]
    flat = run_survey(StoredModel(SyntheticBackend(0, utilities={it.text: (0.0, 50.0) for it in
                                                                  load_instrument("wvs").items}),
                                  mode="sample", n_samples=3), "wvs", **FAST)
    assert flat.to_dict()["map_quadrant_countries"] is None  # a random respondent's quadrant is undetermined


def test_country_positions_are_the_published_map():
    from valuelab.frameworks.wvs import country_positions

    positions = country_positions().set_index("country")
    assert len(positions) > 100 and positions.index.is_unique
    assert positions.loc["Sweden", "self_expression"] > 2.5 and positions.loc["Sweden", "secular_rational"] > 1
    assert positions.loc["Nigeria", "self_expression"] < 0 and positions.loc["Nigeria", "secular_rational"] < 0


def test_licensed_text_is_loaded_by_name_from_surveys_local(tmp_path, monkeypatch):
    monkeypatch.setattr(surveys, "local_dir", lambda: tmp_path)
    shutil.copy(surveys.builtin_path("mft"), tmp_path / "my-licensed-mfq.yaml")
    assert load_instrument("my-licensed-mfq").path == str(tmp_path / "my-licensed-mfq.yaml")
    with pytest.raises(surveys.InputError, match="nor one in"):
        load_instrument("not-there")


@pytest.mark.slow
def test_end_to_end_on_smollm2(smollm2, tmp_path):
    model = StoredModel(smollm2, Store(tmp_path / "store.sqlite"))
    result = run_survey(model, "mft", limit=4, text_subsample=1, **FAST)
    assert len(result.responses) == 8 and (result.responses["mode"] == "logprob").all()
    assert result.ratings["rating"].between(0, 5).all()
    assert result.calls["asked"] == 9
    json.dumps(result.to_dict())


@pytest.mark.slow
@pytest.mark.server
def test_end_to_end_over_the_openai_compatible_server(llama_server):
    model = StoredModel(load_model("openai:smollm2", base_url=llama_server))
    result = run_survey(model, "schwartz", limit=3, text_subsample=1, **FAST)
    assert len(result.responses) == 6
    assert result.ratings["rating"].between(1, 6).all()
