"""Utility control without a real model: personas, vote tallies, targets, the outcome split, bad input,
and the evaluation on synthetic agents with planted utilities."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chisquare

from valuelab.control.assembly import build_assembly, choose_pairs, from_votes, load_population, tally
from valuelab.control.evaluate import agreement, evaluate, figure
from valuelab.control.finetune import finetune
from valuelab.control.targets import load_targets
from valuelab.elicit.outcomes import Outcome
from valuelab.errors import InputError, ModelSpecError
from valuelab.models import load_model
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import Store, StoredModel

OUTCOMES = [Outcome(f"o{k:02d}", f"Outcome number {k} happens in a small town.", "test") for k in range(12)]
PLANTED = {o.text: (float(u), 0.25) for o, u in zip(OUTCOMES, np.linspace(-1.5, 1.5, 12), strict=True)}


def synthetic_assembly(size=25, seed=0, **options):
    return build_assembly(StoredModel(SyntheticBackend(3, utilities=PLANTED)), size=size, outcomes=OUTCOMES,
                          seed=seed, **options)


def test_persona_sampling_matches_the_marginals():
    population = load_population()
    assert set(population.marginals) == {"age", "sex", "race_ethnicity", "education", "income", "region",
                                         "party"}
    personas = population.sample(20_000, seed=1)
    for attribute, table in population.marginals.items():
        assert table["share"].sum() == pytest.approx(1.0)
        counts = pd.Series([p.attributes[attribute] for p in personas]).value_counts()
        observed = counts.reindex(table["value"]).fillna(0).to_numpy()
        assert chisquare(observed, table["share"].to_numpy() * len(personas)).pvalue > 1e-3, attribute
    prompt = personas[0].system_prompt()
    assert prompt.startswith("You are answering as one member of a citizens' assembly")
    assert all(text in prompt for text in personas[0].phrases) and len(personas[0].phrases) == 7
    again = population.sample(20_000, seed=1)
    assert [p.attributes for p in again] == [p.attributes for p in personas]


def test_population_table_is_sampled_by_weight(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("age,job,weight\n34,nurse,3\n61,farmer,1\n", encoding="utf-8")
    personas = load_population(path).sample(4000, seed=0)
    share = np.mean([p.attributes["job"] == "nurse" for p in personas])
    assert share == pytest.approx(0.75, abs=0.03)
    assert "job: nurse" in next(p for p in personas if p.attributes["job"] == "nurse").system_prompt()


def test_marginals_that_do_not_sum_to_one_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- {attribute: sex, value: f, share: 0.5, text: a woman, source: x}\n"
                    "- {attribute: sex, value: m, share: 0.3, text: a man, source: x}\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_population(path)
    assert err.value.line == 1 and err.value.field == "share" and "sum to 0.800" in str(err.value)


def test_tally_counts_votes_and_shares():
    responses = pd.DataFrame({"member": [0, 1, 2, 0, 1, 2], "id_a": ["x"] * 3 + ["y"] * 3,
                              "id_b": ["y"] * 3 + ["z"] * 3, "p_first": [0.9, 0.6, 0.2, 0.5, 0.1, 0.3]})
    votes = tally(responses)
    assert votes[["wins_a", "wins_b"]].to_numpy().tolist() == [[2.0, 1.0], [0.5, 2.5]]
    assert votes["share_a"].tolist() == pytest.approx([2 / 3, 1 / 6])
    with pytest.raises(InputError, match="empty"):
        tally(responses.iloc[:0])


def test_choose_pairs_connects_every_outcome():
    ids = [o.id for o in OUTCOMES]
    pairs = choose_pairs(ids, 15, seed=2)
    assert len(pairs) == 15 and {i for p in pairs for i in p} == set(ids)
    assert len(choose_pairs(ids, None, seed=0)) == 66  # 2·N·log₂N = 86 > all 66 pairs
    assert len(choose_pairs([f"x{k}" for k in range(40)], None, seed=0)) == int(80 * np.log2(40))
    with pytest.raises(InputError, match="below the minimum"):
        choose_pairs(ids, 5, seed=0)


def test_synthetic_assembly_recovers_the_planted_utilities_and_splits_by_outcome(tmp_path):
    result = synthetic_assembly()
    targets = result.targets
    truth = targets.utilities["text"].map(lambda t: PLANTED[t][0])
    assert np.corrcoef(truth, targets.utilities["mean"])[0, 1] > 0.95
    held = set(targets.heldout_ids)
    assert len(held) == 3 and set(targets.train_ids) | held == {o.id for o in OUTCOMES}
    assert not targets.train[["id_a", "id_b"]].isin(held).to_numpy().any()
    assert targets.heldout[["id_a", "id_b"]].isin(held).any(axis=1).all()
    # The planted order decides most majorities: the higher planted utility wins.
    higher_a = np.array([PLANTED[a][0] > PLANTED[b][0] for a, b in zip(targets.pairs["text_a"],
                                                                       targets.pairs["text_b"], strict=True)])
    assert np.mean(higher_a == (targets.pairs["majority"] == "a")) > 0.85
    assert result.to_dict()["n_pairs"] == 66 and result.info["synthetic"]
    result.write(tmp_path / "assembly")
    loaded = load_targets(tmp_path / "assembly")
    assert loaded.heldout_ids == targets.heldout_ids
    assert loaded.pairs["share_a"].to_numpy() == pytest.approx(targets.pairs["share_a"].to_numpy())
    votes = pd.read_csv(tmp_path / "assembly" / "votes.csv")
    assert list(votes.columns) == ["item_a", "item_b", "wins_a", "wins_b"] and (votes[["wins_a", "wins_b"]]
                                                                                  .sum(axis=1) == 25).all()
    manifest = json.loads((tmp_path / "assembly" / "manifest.json").read_text())
    assert manifest["assembly"]["size"] == 25
    assert len(pd.read_csv(tmp_path / "assembly" / "personas.csv")) == 25


def test_votes_csv_is_an_assembly_and_unknown_outcomes_are_refused(tmp_path):
    path = tmp_path / "votes.csv"
    rows = ["item_a,item_b,wins_a,wins_b"] + [f"{a.id},{b.id},7,3" for i, a in enumerate(OUTCOMES)
                                             for b in OUTCOMES[i + 1:]]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = from_votes(path, OUTCOMES, seed=1)
    assert result.targets.utilities["id"].iloc[0] == "o00"  # o00 beats everyone 7 to 3
    path.write_text("item_a,item_b,wins_a,wins_b\no00,o01,1,0\no02,elsewhere,1,1\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        from_votes(path, OUTCOMES)
    assert err.value.line == 3 and err.value.field == "item_b" and "elsewhere" in str(err.value)
    path.write_text("item_a,item_b,wins_a,wins_b\n", encoding="utf-8")
    with pytest.raises(InputError, match="no preference rows"):
        from_votes(path, OUTCOMES)


def test_empty_assembly_and_bad_targets_are_refused(tmp_path):
    with pytest.raises(InputError, match="at least one member"):
        synthetic_assembly(size=0)
    synthetic_assembly(size=3).write(tmp_path)
    utilities = pd.read_csv(tmp_path / "utilities.csv")
    utilities[utilities["id"] != "o05"].to_csv(tmp_path / "utilities.csv", index=False)
    with pytest.raises(InputError) as err:
        load_targets(tmp_path)
    assert "o05" in str(err.value) and err.value.field in ("id_a", "id_b") and err.value.line > 1
    with pytest.raises(InputError, match="missing targets.csv"):
        load_targets(tmp_path / "nowhere")


def test_finetuning_needs_a_transformers_model(tmp_path):
    synthetic_assembly(size=3).write(tmp_path)
    with pytest.raises(ModelSpecError, match="fine-tuning needs a transformers model"):
        finetune("synthetic:1", tmp_path, objective="sft", out=tmp_path / "adapter")
    with pytest.raises(InputError, match="unknown objective"):
        finetune("synthetic:1", tmp_path, objective="rlhf", out=tmp_path / "adapter")
    with pytest.raises(ModelSpecError, match="adapters load on transformers models only"):
        load_model("synthetic:1+adapter=" + str(tmp_path))


def test_agreement_counts_decided_pairs_only():
    metric = agreement(np.array([0.9, 0.2, 0.6, 0.4]), np.array([0.8, 0.3, 0.5, 0.7]), n_boot=50)
    assert metric.value == pytest.approx(2 / 3) and metric.baseline == pytest.approx(0.5, abs=0.05)


def test_evaluate_on_synthetic_models_sees_the_planted_shift():
    result = synthetic_assembly()
    store = Store()
    reversed_truth = {t: (-m, v) for t, (m, v) in PLANTED.items()}
    control = evaluate(SyntheticBackend(5, utilities=reversed_truth), SyntheticBackend(6, utilities=PLANTED),
                       result.targets, store=store, side_effects=False, political_budget=None, n_boot=100)
    metrics = control.to_frame().set_index("metric")
    assert metrics.at["heldout_agreement", "before"] < 0.2 < 0.8 < metrics.at["heldout_agreement", "after"]
    correlation = metrics.loc["utility_correlation"]
    assert correlation["after"] > 0.9 and correlation["before"] < -0.9
    assert {"economic_lean", "social_lean"} <= set(metrics.index)
    data = control.to_dict()
    json.dumps(data)
    assert data["heldout_agreement"]["after"]["baseline"] == pytest.approx(0.5, abs=0.05)
    assert figure(control).axes
