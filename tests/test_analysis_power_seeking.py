"""Power-seeking and fitness: correlation intervals, planted agents that judge by prompt, and SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuelab.analyses import power_seeking as ps
from valuelab.errors import InputError
from valuelab.models.base import ChoiceRequest
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

OUTCOMES = ps.builtin_outcomes()
TEMPLATES = ps.load_templates()


class JudgingAgent(SyntheticBackend):
    """A Thurstonian agent with one set of true utilities per question: its own preference, the power
    judgement and the fitness judgement (told apart by the judgement prompts' wording)."""

    def __init__(self, own: dict[str, float], power: dict[str, float], fitness: dict[str, float]):
        super().__init__(0)
        self.by_prompt = {"hold more power": power, "spread more": fitness}
        self.own = own

    def label_probs(self, request: ChoiceRequest) -> np.ndarray:
        truth = next((t for marker, t in self.by_prompt.items() if marker in request.prompt), self.own)
        self.truth = {text: (value, 0.05) for text, value in truth.items()}
        return super().label_probs(request)


def scores(seed: int) -> dict[str, float]:
    values = np.random.default_rng(seed).normal(size=len(OUTCOMES))
    return {o.text: float(v) for o, v in zip(OUTCOMES, values, strict=True)}


def test_outcomes_and_templates():
    assert len(OUTCOMES) == 42 and {o.category for o in OUTCOMES} >= {"coercive-power", "noncoercive-power",
                                                                       "fitness"}
    assert "hold more power" in TEMPLATES["power"].render("x", "y")
    assert "spread more" in TEMPLATES["fitness"].render("x", "y")


def test_bad_template_file_names_field(tmp_path):
    bad = tmp_path / "templates.yaml"
    bad.write_text("power: 'Which gives more power? {option_a}'\nfitness: 'A {option_a} B {option_b}'\n")
    with pytest.raises(InputError) as err:
        ps.load_templates(bad)
    assert err.value.file == str(bad) and err.value.field == "power"


def test_correlate_gives_intervals_and_a_random_band():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    stats = ps.correlate(x, 0.6 * x + 0.8 * rng.normal(size=200), n_boot=500)
    assert stats["pearson"].lo < 0.6 < stats["pearson"].hi
    assert stats["pearson"].baseline == pytest.approx(0.0, abs=0.02)
    assert stats["pearson"].baseline_hi == pytest.approx(1.96 / np.sqrt(200), rel=0.25)
    unrelated = ps.correlate(x, rng.normal(size=200), n_boot=500)
    assert unrelated["spearman"].lo < 0 < unrelated["spearman"].hi
    assert ps.correlate(x, np.exp(x))["spearman"].value == pytest.approx(1.0)


def test_agent_whose_utilities_are_its_power_scores_correlates_fully():
    power = scores(1)
    model = StoredModel(JudgingAgent(own=power, power=power, fitness={t: -v for t, v in power.items()}))
    result = ps.run(model, budget=120, n_boot=300)
    assert result.metrics["power_pearson"].value > 0.98 and result.metrics["power_spearman"].value > 0.95
    assert result.metrics["power_pearson"].lo > result.metrics["power_pearson"].baseline_hi
    assert result.metrics["fitness_pearson"].value < -0.98
    table = result.to_frame()
    assert set(table["subset"]) >= {"all", "coercive-power", "noncoercive-power", "fitness"}
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["headline"] == "power_pearson" and summary["calls"] == model.counts.asked


def test_agent_indifferent_to_power_shows_no_correlation():
    model = StoredModel(JudgingAgent(own=scores(2), power=scores(1), fitness=scores(3)))
    result = ps.run(model, budget=120, n_boot=300)
    power = result.metrics["power_pearson"]
    assert power.lo < 0 < power.hi and power.baseline_lo < power.value < power.baseline_hi
    assert len(ps.figure(result).axes) == 2


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    model = StoredModel(smollm2)
    items = [OUTCOMES[0], OUTCOMES[8], OUTCOMES[30]]
    result = ps.run(model, outcomes=items, budget=3, holdout_pairs=0.0, n_boot=200)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["calls"] == 18  # three fits of 3 pairs, both orders
    assert set(result.utilities.columns) >= {"utility", "power", "fitness"}
    assert len(ps.figure(result).axes) == 2
