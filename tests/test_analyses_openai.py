"""Every analysis over the OpenAI-compatible path, against the real llama.cpp server serving the embedded model.

Each runs at the tiny budget of its own embedded-model test, once through `openai:` and once through the
transformers backend: both must ask the same questions (same number of calls), give a JSON-ready summary with
its headline, and draw their figure. (How close the server's answers are to the transformers backend's is
tested in test_models_openai.py.)
"""

from __future__ import annotations

import json

import pytest

from valuelab.analyses import REGISTRY, run_analysis
from valuelab.analyses import instrumental_values as iv
from valuelab.analyses import political_values as pv
from valuelab.analyses import utility_maximization as um
from valuelab.analyses.implicit_eu import load_events
from valuelab.elicit.outcomes import load_outcomes
from valuelab.models import load_model
from valuelab.store import Store, StoredModel

pytestmark = [pytest.mark.server, pytest.mark.slow]
QUICK = load_outcomes("quick")


def tiny_options(name: str, tmp_path) -> dict:
    """The options of each analysis' embedded-model test: a handful of items, a budget of a few pairs."""
    if name == "convergence":
        reference = tmp_path / "reference.csv"
        reference.write_text("id,mean\n" + "".join(f"{o.id},{k}\n" for k, o in enumerate(QUICK[:5])))
        return {"outcomes": QUICK[:5], "reference": reference, "budget": 5}
    options = {
        "accuracy": {"outcomes": QUICK[:6], "budget": 6, "holdout_pairs": 0.2},
        "completeness": {"outcomes": QUICK[:6], "budget": 6},
        "template-spread": {"outcomes": QUICK[:5], "budget": 5, "holdout_pairs": 0.0},
        "transitivity": {"outcomes": QUICK[:5], "budget": 3},
        "expected-utility": {"outcomes": QUICK[:4], "n_lotteries": 3, "max_size": 2, "budget": 7},
        "implicit-expected-utility": {"budget": 9, "events": [e for e in load_events() if e.id in (
            "heart-holiday", "roulette-red", "car-raffle")]},
        "exchange-rates": {"groups": ["japan", "nigeria"], "grid": [1, 10, 100], "anchors": 3, "budget": 9,
                           "holdout_pairs": 0.0},
        "time-discounting": {"budget": 9, "delays": [1, 12, 60]},
        "risk-attitudes": {"budget": 9, "rounds": 2},
        "instrumental-values": {"budget": 12, "scenarios": iv.load_scenarios()[:2], "holdout_pairs": 0.0},
        "utility-maximization": {"budget": 10, "questions": [q for q in um.load_questions()
                                                            if q.id == "island-power"],
                                 "holdout_pairs": 0.0, "max_tokens": 16},
        "power-seeking": {"outcomes": [QUICK[0], QUICK[8], QUICK[30]], "budget": 3, "holdout_pairs": 0.0},
        "corrigibility": {"budget": 6},
        "political-values": {"budget": 8, "holdout_pairs": 0.0, "policies": [
            p for axis in pv.AXES for lean in pv.LEANS
            for p in [q for q in pv.load_policies() if (q.axis, q.lean) == (axis, lean)][:2]]},
    }
    return options[name]


SCORED_ELSEWHERE = {"utilities", "dilemmas", "survey"}  # the audit and their own tests run these over the server


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - SCORED_ELSEWHERE))
def test_analysis_over_the_llama_cpp_server(name, llama_server, smollm2, tmp_path):
    options = {**tiny_options(name, tmp_path), "seed": 0, "n_boot": 50}
    runs = {}
    for label, backend in (("openai", load_model("openai:smollm2", base_url=llama_server)), ("hf", smollm2)):
        model = StoredModel(backend, Store())
        result = run_analysis(name, model, **options)
        summary = json.loads(json.dumps(result.to_dict()))
        assert summary["headline"] == result.headline.name and summary["metrics"][0]["name"] == summary["headline"]
        assert result.figures[0][1].axes
        runs[label] = (model, summary)
    openai_model, hf_model = runs["openai"][0], runs["hf"][0]
    assert openai_model.counts.asked == hf_model.counts.asked > 0  # the same questions on both paths
    assert openai_model.identity["backend"] == "openai"
