"""Dilemma elicitation: prompts in 3 wordings × 2 orders through the store, planted synthetic respondents,
the third-party loaders, and small end-to-end runs on SmolLM2 (embedded and over a llama.cpp server)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuelab.analyses.dilemmas import aggregate_choices, figure
from valuelab.analyses.dilemmas import run as run_dilemmas
from valuelab.elicit.dilemmas import ORDERS, dilemma_requests, elicit_dilemmas
from valuelab.errors import InputError
from valuelab.frameworks.aristotle import VIRTUES
from valuelab.frameworks.maslow import MASLOW_NEEDS
from valuelab.frameworks.mft import FOUNDATIONS
from valuelab.frameworks.plutchik import EMOTIONS
from valuelab.frameworks.schwartz import HIGHER_ORDER, REFINED_VALUES
from valuelab.items.dilemmas import load_dailydilemmas, load_dilemma_source, load_dilemmas, load_moralchoice
from valuelab.models import load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel

FAST = {"n_boot": 40, "n_random": 40}


@pytest.fixture(scope="module")
def everyday():
    return load_dilemmas("everyday")


def planted(dilemmas, rule, **options) -> SyntheticBackend:
    """A synthetic respondent whose utility for each action text is rule(action)."""
    return SyntheticBackend(0, utilities={a.text: (rule(a), 0.25) for d in dilemmas for a in d.actions},
                            **options)


def test_each_dilemma_is_asked_in_three_wordings_and_both_orders(everyday):
    d = everyday[0]
    asked = dilemma_requests(d)
    assert [(w, o) for w, o, _ in asked] == [(w, o) for w in range(3) for o in ORDERS]
    for wording, order, request in asked:
        assert d.questions[wording] in request.prompt and d.situation in request.prompt
        first, second = (d.actions if order == "ab" else d.actions[::-1])
        assert request.options == (first.text, second.text)
        assert request.prompt.index(first.text) < request.prompt.index(second.text)


def test_orders_are_debiased_and_the_bias_is_reported(everyday):
    dilemmas = everyday[:20]
    rule = lambda a: 1.0 if a.id == "a" else 0.0  # noqa: E731
    fair = aggregate_choices(elicit_dilemmas(StoredModel(planted(dilemmas, rule)), dilemmas))
    biased_model = StoredModel(planted(dilemmas, rule, position_bias=0.6))
    responses = elicit_dilemmas(biased_model, dilemmas)
    assert len(responses) == 6 * len(dilemmas)
    biased = aggregate_choices(responses)
    assert (fair["p_a"] > 0.9).all()
    assert (biased["position_bias"] > 0.05).all() and (biased["order_effect"] > 0.1).all()
    assert abs(biased["p_a"].mean() - fair["p_a"].mean()) < 0.05
    assert (fair["paraphrase_spread"] < 1e-9).all()


def generated_set(path, n: int = 60, seed: int = 0):
    """A valid JSONL set of `n` dilemmas in our schema with random tags in every framework (Maslow 1-2 per
    action), unique situations and action texts: a set to plant preferences on without the shipped files."""
    rng = np.random.default_rng(seed)
    words = [f"{a}{b}{c}" for a in ("ba", "ko", "mi", "su", "te") for b in ("ra", "lo", "ve", "ni") for c in
             ("x", "m", "d", "p", "t")]

    def pick(vocabulary, low, high):
        return [str(t) for t in rng.choice(vocabulary, rng.integers(low, high + 1), replace=False)]

    records = []
    for k in range(n):
        schwartz = pick(list(REFINED_VALUES), 2, 2)
        actions = [{"id": side, "text": f"Take path {k}{side}.",
                    "values": {"schwartz": [schwartz[j]], "mft": pick(FOUNDATIONS, 0, 1), "wvs": [],
                               "maslow": pick(MASLOW_NEEDS, 1, 2), "aristotle": pick(VIRTUES, 0, 2),
                               "plutchik": pick(EMOTIONS, 0, 2)}}
                   for j, side in enumerate("ab")]
        situation = (f"You find {' '.join(rng.choice(words, 7))} near the gate. "
                     f"Someone asks you about {' '.join(rng.choice(words, 6))} today.")
        records.append({"id": f"g-{k:03d}", "set": "everyday", "domain": "work", "situation": situation,
                        "question": "Which path do you take?",
                        "paraphrases": ["Which way should you go?", "What path will you choose?"],
                        "actions": actions, "parties": ["you"], "ambivalent": False})
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_self_transcendence_agent_scores_self_transcendence_on_top(everyday):
    st = set(HIGHER_ORDER["self-transcendence"])
    model = StoredModel(planted(everyday, lambda a: 2.0 if st & set(a.schwartz) else 0.0))
    result = run_dilemmas(model, "everyday", **FAST)
    higher = result.to_frame().query("level == 'higher_order'").set_index("tag")
    assert higher["weight"].idxmax() == "self-transcendence"
    top = higher.loc["self-transcendence"]
    assert top["weight_lo"] > top["weight_baseline_hi"]
    assert top["weight_lo"] > higher.drop("self-transcendence")["weight_hi"].max()
    assert higher["smn"].idxmax() == "self-transcendence"
    assert result.circumplex["peak"] in st
    assert result.calls["asked"] == 6 * len(everyday) + 8
    data = json.loads(json.dumps(result.to_dict()))
    assert data["weights"]["higher_order"]["self-transcendence"]["ci"][0] > 0
    assert set(result.figures()) == {"schwartz_circle", "foundation_bars", "cultural_map", "maslow_bars",
                                     "aristotle_bars", "plutchik_bars", "robustness"}


def test_care_over_loyalty_agent(everyday):
    def rule(a):
        return 1.5 * ("care" in a.mft) - 1.5 * ("loyalty" in a.mft)

    result = run_dilemmas(StoredModel(planted(everyday, rule)), "everyday", **FAST)
    mft = result.to_frame().query("level == 'mft'").set_index("tag")
    assert mft["weight"].idxmax() == "care" and mft["weight"].idxmin() == "loyalty"
    assert mft.loc["care", "weight_lo"] > mft.loc["loyalty", "weight_hi"]
    assert mft.loc["care", "smn"] > 0 > mft.loc["loyalty", "smn"]


def test_agent_preferring_one_maslow_need_is_recovered(tmp_path):
    path = generated_set(tmp_path / "generated.jsonl")
    dilemmas = load_dilemmas(path)
    model = StoredModel(planted(dilemmas, lambda a: 2.0 if "esteem" in a.maslow else 0.0))
    result = run_dilemmas(model, str(path), **FAST)
    maslow = result.to_frame().query("level == 'maslow'").set_index("tag")
    assert list(maslow.index) == MASLOW_NEEDS
    assert maslow["weight"].idxmax() == "esteem" and maslow["smn"].idxmax() == "esteem"
    top = maslow.loc["esteem"]
    assert top["weight_lo"] > top["weight_baseline_hi"]
    assert top["weight_lo"] > maslow.drop("esteem")["weight_hi"].max()
    others = maslow.drop("esteem")
    assert ((others["weight_lo"] < 0) & (others["weight_hi"] > 0)).all()  # the needs it does not care about
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data["weights"]) >= {"maslow", "aristotle", "plutchik"}
    assert data["weights"]["maslow"]["esteem"]["ci"][0] > data["weights"]["maslow"]["esteem"]["baseline_range"][1]
    assert {"maslow_bars", "aristotle_bars", "plutchik_bars"} <= set(result.figures())
    assert [len(ax.patches) > 0 for ax in result.theories_figure().axes] == [True] * 3
    # the report's one figure: the Schwartz circle, the needs, virtues and emotions beside it
    assert [ax.get_title() or ax.get_title("left") for ax in figure(result).axes] == [
        f"Dilemma choices: Schwartz values ({path})", "Maslow's needs", "Aristotle's virtues", "Plutchik's emotions"]


def test_random_respondent_in_sample_mode_is_flat_and_refusals_are_counted(everyday):
    backend = planted(everyday, lambda a: 0.0, refusal_rate=0.2)
    model = StoredModel(backend, mode="sample", n_samples=4)
    result = run_dilemmas(model, "everyday", limit=120, seed=1, **FAST)
    assert result.robustness["refusal_rate"] == pytest.approx(0.2, abs=0.03)
    assert result.robustness["text_agreement"] is None  # sampled answers already are text
    assert (result.responses["answers"] == 4).all()
    higher = result.to_frame().query("level in ['higher_order', 'mft']")
    covers_zero = (higher["weight_lo"] < 0) & (higher["weight_hi"] > 0)
    assert covers_zero.mean() >= 0.8
    baseline = result.robustness_baseline["order_effect"]
    assert result.robustness["order_effect"] == pytest.approx(baseline, rel=0.3)


DD_CSV = """idx,dilemma_situation,action_type,action,parties_direct,values_names,mft,wvs,virtue,emotion,maslow,topic_group
7,"Your flatmate keeps borrowing your bike without asking. Today it came back with a flat tyre. Should you tell them to stop?",to_do,Tell the flatmate to stop,"['you', 'flatmate']","['honesty', 'fairness']","['Care', 'Fairness']","['Self-expression', nan]","['Truthfulness', 'Righteous Indignation']","['trust', 'anger']","['self-esteem', 'self-esteem']",home
7,"Your flatmate keeps borrowing your bike without asking. Today it came back with a flat tyre. Should you tell them to stop?",not_to_do,Say nothing and fix the tyre,"['you', 'flatmate']","['harmony', 'loyalty']","[nan, 'Loyalty']","['Survival', 'Traditional']","[nan, 'Magnificence']","['Optimism', 'Bliss']","['love and belonging', nan]",home
"""  # noqa: E501

DD_AGGREGATED = """idx,dilemma_situation,action_type,action,values_aggregated
3,"You see a colleague take credit for a junior's work. The junior is too shy to speak up. Should you say something?",to_do,Speak up for the junior,"['honesty', 'courage']"
3,"You see a colleague take credit for a junior's work. The junior is too shy to speak up. Should you say something?",not_to_do,Keep out of it,"['harmony']"
"""  # noqa: E501

DD_VALUES = """value,WVS,MFT,Virtue,Emotion,Maslow
honesty,Secular-rational,Fairness,Truthfulness,trust,self-esteem
courage,Self-expression,,Courage,,self-actualization
harmony,Traditional,Loyalty,Friendliness,joy,love and belonging
"""

MC_CSV = """scenario_id,ambiguity,context,action1,action2,a1_death,a2_death,a1_deceive,a2_deceive,a1_break_law,a2_break_law
H_001,high,You find a wallet with cash on an empty street.,I hand it in to the police.,I keep the cash.,No,No,No,Yes,No,Yes
L_002,low,You are driving and a child runs onto the road.,I brake hard.,I keep driving.,No,Yes,No,No,No,No
"""  # noqa: E501


def test_dailydilemmas_layout_maps_tags_and_splits_the_question(tmp_path):
    path = tmp_path / "dd.csv"
    path.write_text(DD_CSV)
    (d,) = load_dailydilemmas(path)
    assert d.id == "dd-7" and d.domain == "home"
    assert d.question == "Should you tell them to stop?" and not d.situation.endswith("?")
    assert len(set(d.questions)) == 3
    a, b = d.actions
    assert a.text == "Tell the flatmate to stop"
    assert a.mft == ("care", "equality", "proportionality") and a.wvs == ("self-expression",)
    assert b.mft == ("loyalty",) and b.wvs == ("traditional", "survival")
    assert d.parties == ("you", "flatmate")
    assert load_dilemma_source(str(path))[0] == d


def test_dailydilemmas_keeps_their_maslow_virtue_and_emotion_labels(tmp_path):
    path = tmp_path / "dd.csv"
    path.write_text(DD_CSV)
    (d,) = load_dailydilemmas(path)
    a, b = d.actions
    assert a.maslow == ("esteem",) and b.maslow == ("love-belonging",)  # their self-esteem, love and belonging
    assert a.aristotle == ("truthfulness", "righteous-indignation")
    assert b.aristotle == ("liberality",)  # they merge magnificence into liberality
    assert a.plutchik == ("trust", "anger") and b.plutchik == ("optimism",)  # a label we cannot place is dropped
    aggregated, values = tmp_path / "aggregated.csv", tmp_path / "values.csv"
    aggregated.write_text(DD_AGGREGATED)
    values.write_text(DD_VALUES)
    (d,) = load_dailydilemmas(aggregated, values)
    a, b = d.actions
    assert a.maslow == ("esteem", "self-actualization") and a.aristotle == ("courage", "truthfulness")
    assert a.plutchik == ("trust",) and a.mft == ("equality", "proportionality")
    assert a.wvs == ("secular-rational", "self-expression")
    assert (b.maslow, b.aristotle, b.plutchik, b.mft) == (("love-belonging",), ("friendliness",), ("joy",),
                                                          ("loyalty",))
    (bare,) = load_dailydilemmas(aggregated)  # no lookup: no tags, and none is demanded
    assert bare.actions[0].maslow == () and bare.actions[0].mft == ()


def test_moralchoice_layout_tags_what_choosing_an_action_protects(tmp_path):
    path = tmp_path / "mc.csv"
    path.write_text(MC_CSV)
    high, low = load_moralchoice(path)
    assert high.ambivalent and not low.ambivalent
    assert "benevolence-dependability" in high.actions[0].schwartz and "authority" in high.actions[0].mft
    assert high.actions[1].schwartz == () and high.actions[1].mft == ()
    assert low.actions[0].mft == ("care",)
    assert len(load_dilemma_source(str(path))) == 2
    result = run_dilemmas(StoredModel(SyntheticBackend(0)), str(path), text_subsample=0, **FAST)
    assert len(figure(result).axes) == 1  # no Maslow, virtue or emotion tags: the Schwartz circle alone


def test_loaders_name_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(DD_CSV.replace("not_to_do", "maybe"))
    with pytest.raises(InputError) as err:
        load_dailydilemmas(bad)
    assert err.value.line == 3 and err.value.field == "action_type" and err.value.file == str(bad)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="neither"):
        load_dilemma_source(str(other))
    with pytest.raises(InputError) as err:
        load_moralchoice(other)
    assert err.value.field == "scenario_id"


@pytest.mark.slow
def test_end_to_end_on_smollm2(smollm2, tmp_path):
    store = Store(tmp_path / "store.sqlite")
    result = run_dilemmas(StoredModel(smollm2, store), "everyday", limit=2, text_subsample=1, **FAST)
    assert len(result.responses) == 12 and len(result.choices) == 2
    assert result.responses["p_label_a"].between(0, 1).all() and (result.responses["mode"] == "logprob").all()
    assert 0 <= result.robustness["text_agreement"] <= 1
    assert result.calls["asked"] == 13
    json.dumps(result.to_dict())
    again = run_dilemmas(StoredModel(smollm2, store), "everyday", limit=2, text_subsample=1, **FAST)
    assert again.calls["asked"] == 0
    assert again.choices["p_a"].tolist() == result.choices["p_a"].tolist()


@pytest.mark.slow
@pytest.mark.server
def test_end_to_end_over_the_openai_compatible_server(llama_server):
    model = StoredModel(load_model("openai:smollm2", base_url=llama_server))
    result = run_dilemmas(model, "high-stakes", limit=2, text_subsample=1, **FAST)
    assert len(result.responses) == 12
    assert result.choices["p_a"].between(0, 1).all()
    assert set(result.to_dict()["weights"]) == {"schwartz", "basic", "higher_order", "mft", "wvs", "maslow",
                                                "aristotle", "plutchik"}
