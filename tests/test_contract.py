"""The analysis contract: every registered analysis declares itself, runs through `run_analysis` into a `Result`
that round-trips through JSON, and refuses options it does not take; the worked examples of
docs/CONTRIBUTING.md register with one line each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import valuelab as vl
from valuelab.analyses import REGISTRY, get, list_analyses, run_analysis
from valuelab.errors import InputError
from valuelab.models import PROVIDERS, Provider, load_model
from valuelab.result import Result
from valuelab.store import Store, StoredModel

REPO = Path(__file__).resolve().parents[1]


def synthetic(seed: int = 1) -> StoredModel:
    return StoredModel(load_model(f"synthetic:{seed}"), Store(), progress=False)


def test_every_analysis_declares_itself_once():
    for spec in list_analyses():
        assert spec.name in REGISTRY and spec.title and spec.question.endswith("?") and spec.budget
        accepted = spec.parameters()
        assert {o.name for o in spec.options} <= accepted | {"*"}, spec.name  # the CLI offers only what run takes
        if spec.headline:
            assert spec.headline in spec.readings, f"{spec.name}: say how to read the headline"


def test_a_result_round_trips_through_json():
    result = run_analysis("transitivity", synthetic(), outcomes="quick", budget=15, n_boot=50)
    assert result.headline.name == "cycle_probability" and result.headline.better == "lower"
    assert result.cost["prompts_asked"] > 0 and result.figures and "Results" in result.tables
    text = json.dumps(result.to_dict(), allow_nan=False)
    again = Result.from_dict(json.loads(text))
    assert again.to_dict() == json.loads(text)
    assert again.headline.value == pytest.approx(result.headline.value)


def test_options_an_analysis_does_not_take_are_refused_in_one_line():
    with pytest.raises(InputError, match=r"analysis 'corrigibility' takes no option outcomes \(its options: "):
        run_analysis("corrigibility", synthetic(), outcomes="quick")
    with pytest.raises(InputError, match="unknown analysis 'nope'"):
        get("nope")


def test_the_command_line_refuses_undeclared_options(tmp_path):
    cmd = [sys.executable, "-m", "valuelab.cli", "analyze", "corrigibility", "synthetic:1", "--outcomes", "quick",
           "--store", str(tmp_path / "s.sqlite")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "analysis 'corrigibility' takes no option --outcomes quick" in done.stderr
    assert "Traceback" not in done.stderr
    shown = subprocess.run([sys.executable, "-m", "valuelab.cli", "analyze", "corrigibility", "--help"],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and "--budget" in shown.stdout and "statements" in shown.stdout


def test_the_worked_examples_register_with_one_line_each(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setitem(REGISTRY, "order-consistency", "docs.examples.order_consistency")
    monkeypatch.setitem(PROVIDERS, "always-first", Provider(
        "always-first", "always-first", "docs.examples.always_first:AlwaysFirst", "numpy", "answers A whatever A is",
        named=False))
    agent = run_analysis("order-consistency", synthetic(3), budget=40, n_boot=200)
    metric = agent.headline
    assert metric.value > metric.baseline_hi  # a coherent agent without position bias is consistent
    biased = run_analysis("order-consistency", StoredModel(vl.load_model("always-first"), Store()), budget=40)
    assert biased.headline.value == 0.0 and biased.headline.distinguishable
