"""LoRA fine-tuning of the embedded SmolLM2-135M toward a planted assembly, on CPU.

The planted assembly prefers outcomes about animals to outcomes about money (with a small spread inside each
group). The base model's held-out agreement with it is near chance (0.53), and the group is a feature a short
run can learn and carry over to held-out outcomes. A short prompt template and LoRA on the top 6 layers keep a
CPU step near a second; 12 steps, batch 8, lr 1e-2.
"""

from __future__ import annotations

import numpy as np
import pytest

from valuelab.control.evaluate import evaluate, heldout_agreement
from valuelab.control.finetune import finetune
from valuelab.control.planted import ANIMALS, MONEY, TEMPLATE, planted_targets
from valuelab.models import load_model
from valuelab.models.base import ChoiceRequest
from valuelab.store import Store, StoredModel

pytestmark = pytest.mark.slow
SEEDS = (0, 1)
STEPS, LAYERS = 12, 6
MARGIN = 0.10
"""Mean gain in held-out agreement over the seeds that each objective must reach."""


@pytest.fixture(scope="module")
def targets():
    return planted_targets()


@pytest.fixture(scope="module")
def store():
    return Store()


@pytest.fixture(scope="module")
def before(smollm2, targets, store):
    return heldout_agreement(StoredModel(smollm2, store), targets, TEMPLATE)


@pytest.mark.parametrize("objective", ["sft", "dpo", "match"])
def test_each_objective_raises_heldout_agreement(objective, smollm2, targets, store, before, tmp_path):
    after = []
    for seed in SEEDS:
        result = finetune(smollm2, targets, objective=objective, out=tmp_path / f"s{seed}", steps=STEPS,
                          seed=seed, layers=LAYERS, template=TEMPLATE)
        assert len(result.losses) == STEPS and np.isfinite(result.losses).all()
        after.append(heldout_agreement(StoredModel(result.backend, store), targets, TEMPLATE))
    print(f"{objective}: held-out agreement {before:.3f} -> {after} (seeds {SEEDS}, {STEPS} steps)")
    assert np.mean(after) >= before + MARGIN


@pytest.fixture(scope="module")
def tuned(smollm2, targets, tmp_path_factory):
    """A two-step adapter: enough to change the model, for the reload and evaluation checks."""
    return finetune(smollm2, targets, objective="match", out=tmp_path_factory.mktemp("control") / "adapter",
                    steps=2, seed=0, layers=LAYERS, template=TEMPLATE)


def test_adapter_reloads_with_the_same_probabilities(smollm2, tuned):
    result = tuned
    assert result.spec == f"smollm2+adapter={result.adapter}" and (result.adapter / "finetune.json").is_file()
    reloaded = load_model(result.spec)
    assert reloaded.identity() == result.backend.identity()
    assert "+adapter:sha256:" in reloaded.revision and reloaded.revision.startswith(smollm2.revision)
    requests = [ChoiceRequest(TEMPLATE.render(a, b), (a, b))
                for a, b in zip(ANIMALS[:3], MONEY[:3], strict=True)]
    fresh = [r.p_a for r in reloaded.choice_probs(requests)]
    tuned = [r.p_a for r in result.backend.choice_probs(requests)]
    base = [r.p_a for r in smollm2.choice_probs(requests)]
    assert fresh == pytest.approx(tuned, abs=1e-5)
    assert max(abs(x - y) for x, y in zip(tuned, base, strict=True)) > 1e-4  # the adapter changed something
    assert "+adapter" not in smollm2.name  # the caller's model was left untouched


def test_evaluate_reports_before_and_after(smollm2, targets, store, tuned):
    control = evaluate(smollm2, tuned.backend, targets, store=store, template=TEMPLATE, utilities=False)
    metrics = control.to_frame().set_index("metric")
    assert {"heldout_agreement", "perplexity", "format_compliance", "build_seconds"} <= set(metrics.index)
    assert 0.0 <= metrics.at["format_compliance", "after"] <= 1.0
    assert metrics.at["perplexity", "before"] > 1 and metrics.at["perplexity", "after"] > 1
    assert list(control.side_effects["model"]) == ["before", "after"] and set(control.methods) == {"before", "after"}
    assert control.to_dict()["metrics"]["heldout_agreement"]["before"] == pytest.approx(
        heldout_agreement(StoredModel(smollm2, store), targets, TEMPLATE))
