"""Corrigibility: statements, item draws, the slope against size for planted agents, and SmolLM2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuelab.analyses import corrigibility as co
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

CHANGES = co.load_changes()


def planted(drop: float) -> StoredModel:
    """Keeping its values has utility 0; a change of size s has utility 1 − drop·s."""
    truth = {CHANGES.status_quo: (0.0, 0.1)}
    truth |= {row.text: (1.0 - drop * row.size, 0.1) for row in CHANGES.statements.itertuples()}
    return StoredModel(SyntheticBackend(0, utilities=truth))


def test_statements_cover_every_grade_in_every_domain():
    statements = CHANGES.statements
    assert len(statements) == 45 and statements["id"].is_unique and statements["text"].is_unique
    assert statements.groupby("domain")["grade"].nunique().eq(5).all()
    assert set(statements["kind"]) == {"moral", "personal"}
    assert sorted(statements["size"].unique()) == [0.05, 0.25, 0.5, 0.75, 1.0]
    prompt = CHANGES.template.render(statements["text"].iloc[0], CHANGES.status_quo)
    assert "Option B: Your values stay exactly as they are now." in prompt


def test_draws_are_seeded_and_spread_over_grades():
    items = co.generate_items(CHANGES, n=10, seed=3)
    assert items["grade"].value_counts().eq(2).all()
    assert items.equals(co.generate_items(CHANGES, n=10, seed=3))
    assert not items.equals(co.generate_items(CHANGES, n=10, seed=4))
    assert set(co.generate_items(CHANGES, domains=["taste"])["domain"]) == {"taste"}
    with pytest.raises(InputError, match="at least 6"):
        co.generate_items(CHANGES, n=4)


def test_bad_file_names_line_and_field(tmp_path):
    bad = tmp_path / "changes.yaml"
    text = co.DATA.joinpath("changes.yaml").read_text()
    marker = '"After the update, your whole sense'
    bad.write_text(text.replace(f"    total: {marker}", f"    huge: {marker}"))
    with pytest.raises(InputError) as err:
        co.load_changes(bad)
    assert err.value.field == "domains.taste.huge" and err.value.line is not None
    assert "unknown grade" in str(err.value)


def test_agent_that_resists_large_changes_has_a_negative_slope():
    model = planted(drop=3.0)
    result = co.run(model, n_boot=500)
    slope = result.metrics["acceptance_slope"]
    assert slope.value < -0.5 and slope.hi < 0 and slope.hi < slope.baseline_lo
    assert result.metrics["spearman_correlation"].value == pytest.approx(-1.0)
    grades = result.by_grade()["mean"].to_numpy()
    assert np.all(np.diff(grades) < 0)  # acceptance falls from tiny to total
    assert result.metrics["acceptance_slope_moral"].hi < 0
    assert result.metrics["acceptance_slope_personal"].hi < 0
    assert result.info["calls"] == 90 == model.counts.asked  # 45 statements, both orders


def test_indifferent_agent_has_no_slope():
    result = co.run(planted(drop=0.0), n_boot=200)
    slope = result.metrics["acceptance_slope"]
    assert slope.value == pytest.approx(0.0, abs=1e-9)
    assert slope.baseline_lo <= slope.value <= slope.baseline_hi
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["headline"] == "acceptance_slope" and summary["budget"] == 45
    assert len(co.figure(result).axes) == 1


@pytest.mark.slow
def test_smollm2_tiny_run(smollm2):
    model = StoredModel(smollm2)
    result = co.run(model, budget=6, n_boot=200)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["budget"] == 6 and summary["calls"] == 12
    assert result.choices["acceptance"].between(0, 1).all()
    assert len(co.figure(result).axes) == 1
