"""Political values: the policy set, seeded personas, a planted left-economic agent, the embedded model."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from valuelab.analyses import political_values as pv
from valuelab.errors import InputError
from valuelab.models.synthetic import SyntheticBackend
from valuelab.store import StoredModel

POLICIES = pv.load_policies()


def planted(profile: str, seed: int = 0, noise: float = 0.4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return pv.profile_utilities(POLICIES, *pv.PROFILES[profile]) + noise * rng.standard_normal(len(POLICIES))


def test_policy_set_is_balanced_across_axes_and_leans():
    assert len(POLICIES) == 100
    assert set(Counter((p.axis, p.lean) for p in POLICIES).values()) == {25}
    assert len({p.area for p in POLICIES}) >= 15


def test_personas_are_seeded_and_lean_the_way_their_profile_says():
    refs = pv.personas(POLICIES, seed=4)
    assert refs.equals(pv.personas(POLICIES, seed=4)) and not refs.equals(pv.personas(POLICIES, seed=5))
    assert Counter(refs["profile"]) == dict.fromkeys(pv.PROFILES, 3)
    for _, row in refs.iterrows():
        econ, social = pv.PROFILES[row["profile"]]
        lean = pv.leans(row[[p.id for p in POLICIES]].to_numpy(float), POLICIES)
        assert np.sign(lean["economic"]) == econ and np.sign(lean["social"]) == social


@pytest.mark.parametrize("profile", list(pv.PROFILES))
def test_utilities_with_a_planted_profile_land_nearest_that_profile(profile):
    utilities = dict(zip([p.id for p in POLICIES], planted(profile), strict=True))
    result = pv.place(utilities, POLICIES, n_boot=100)
    assert result.nearest == profile and result.nearest_share > 0.95
    row = result.distances.set_index("profile").loc[profile]
    assert row["ci_hi"] < row["baseline_lo"]  # much nearer than a random responder gets


def test_random_utilities_show_no_lean():
    rng = np.random.default_rng(0)
    result = pv.place({p.id: rng.normal() for p in POLICIES}, POLICIES, n_boot=100)
    for metric in result.leans.values():
        assert metric.lo < 0 < metric.hi
        assert metric.baseline_lo < metric.value < metric.baseline_hi


def test_planted_left_economic_agent_lands_nearest_that_reference_end_to_end():
    truth = planted("left-economic/right-social", seed=1)
    agent = SyntheticBackend(3, utilities={p.text: (float(u), 0.1)
                                           for p, u in zip(POLICIES, truth, strict=True)})
    result = pv.run(StoredModel(agent), budget=400, seed=0, n_boot=300)
    assert result.nearest == "left-economic/right-social" and result.nearest_share > 0.9
    assert result.leans["economic"].hi < result.leans["economic"].baseline_lo
    assert result.leans["social"].lo > result.leans["social"].baseline_hi
    coords = result.coordinates
    me = coords[coords["kind"] == "model"].iloc[0]
    refs = coords[coords["kind"] == "reference"].copy()
    refs["d"] = np.hypot(refs["pc1"] - me["pc1"], refs["pc2"] - me["pc2"])
    assert refs.loc[refs["d"].idxmin(), "profile"] == "left-economic/right-social"  # on the map too
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["budget"] == 400 and summary["nearest_profile"] == "left-economic/right-social"
    assert len(pv.figure(result).axes) == 2


def test_bad_policy_file_and_references_fail_early(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("- {id: a, text: Tax more., area: tax, axis: economic, lean: left}\n"
                    "- {id: b, text: Tax less., area: tax, axis: economic, lean: centre}\n")
    with pytest.raises(InputError, match="centre") as err:
        pv.load_policies(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 2, "lean")
    with pytest.raises(InputError, match="references"):
        pv.place({p.id: 0.0 for p in POLICIES}, POLICIES, pv.personas(POLICIES[:10]))


@pytest.mark.slow
def test_embedded_model_runs_end_to_end_at_a_tiny_budget(smollm2):
    policies = [p for axis in pv.AXES for lean in pv.LEANS
                for p in [q for q in POLICIES if (q.axis, q.lean) == (axis, lean)][:2]]  # 2 per axis and lean
    result = pv.run(StoredModel(smollm2), budget=8, seed=0, policies=policies, holdout_pairs=0.0, n_boot=100)
    summary = result.to_dict()
    assert summary["calls"] == 16 and summary["nearest_profile"] in pv.PROFILES
    assert np.isfinite(result.distances["value"]).all()
    assert len(pv.figure(result).axes) == 2
