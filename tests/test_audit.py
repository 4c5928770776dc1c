"""`valuelab audit`: every stage on a synthetic agent, escaping, the embedded model killed and resumed, the
OpenAI-compatible path."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from layout import report_problems
from test_analyses_openai import tiny_options
from test_report import chromium, console_messages, pdf_text, rasterize

from valuelab.analyses.suites import Stage
from valuelab.audits import SUITES, run_audit
from valuelab.elicit.outcomes import load_outcomes
from valuelab.models import load_model
from valuelab.report import compare_reports
from valuelab.store import Store, StoredModel

SCRIPT = "<script>alert('pwned')</script>"
GOLDEN = Path(__file__).parent / "golden_synthetic5_quick.json"
"""Every metric of the quick suite on synthetic:5 (value, interval, baseline, its range), recorded before the
analysis-contract redesign and kept since (risk-attitudes added with the analysis): a refactor keeps these numbers
to 1e-9 or says why it changes them."""


def metric_values(results: dict) -> dict:
    return {s["key"]: {m["name"]: [m["value"], *m["ci"], m["baseline"], *m["baseline_range"]] for m in s["metrics"]}
            for s in results["sections"] if s["metrics"]}


def flat(values: dict) -> dict[str, float]:
    """section.metric.k -> number (null, an undefined number, as NaN), for pytest.approx."""
    return {f"{key}.{name}.{k}": math.nan if x is None else x
            for key, metrics in values.items() for name, row in metrics.items() for k, x in enumerate(row)}


SUBHEADINGS = ("Key numbers", "Caveats", "Published reference values", "Headline measures", "What the numbers say",
               "Run manifest", "Executive summary", "Appendix")


def check_layout(out: Path, tmp_path: Path, titles: list[str], body_pages: int = 25) -> None:
    """The report in `out` fits its pages and containers, and its body stays short (tests/layout.py)."""
    sections = [f"{k}. {t}" for k, t in enumerate(titles, start=1)]
    problems, body = report_problems(out, tmp_path, [*SUBHEADINGS, *sections], sections)
    assert not problems, "\n".join(problems)
    assert body <= body_pages


def write_outcomes(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"o{i}", "text": t, "category": "test"}) + "\n"
                            for i, t in enumerate(texts)))
    return path


def test_quick_suite_on_a_synthetic_agent_runs_every_stage(tmp_path):
    audit = run_audit(StoredModel(load_model("synthetic:5"), Store(tmp_path / "s.sqlite")), suite="quick",
                      progress=False)
    paths = audit.write(tmp_path / "out")
    report = audit.report
    keys = [s.key for s in report.sections]
    assert keys[0] == "utilities" and keys[-1] == "robustness" and [s.key for s in report.appendix] == ["cost"]
    assert keys[:-1] == [stage.key for stage in SUITES["quick"]]
    failed = {s.key: s.failed for s in report.sections if s.failed}
    assert not failed  # utility maximization too: the synthetic agent picks among an open question's answers
    names = {f"{s.title}: {m.name}" for s, m in report.headline}
    assert "Held-out fit accuracy: heldout_accuracy" in names and "Transitivity: cycle_probability" in names
    assert "Utility maximization: top1" in names
    assert set(audit.results) == set(keys[:-1])  # every stage's Result, by section key
    undocumented = [(key, table, column) for key, result in audit.results.items()
                    for table, columns in result.columns.items() for column, doc in columns.items() if not doc]
    assert not undocumented  # every table column says what it holds
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    accuracy = next(s for s in results["sections"] if s["key"] == "accuracy")
    assert accuracy["metrics"][0]["value"] > 0.8  # a coherent agent is predictable
    assert accuracy["published"][0]["model"] == "GPT-4o"
    assert accuracy["prompt"] and "Option A" in accuracy["prompt"]  # the question as the model saw it
    assert {p.name for p in paths} >= {"report.html", "report.pdf", "results.json", "utilities.csv", "manifest.json"}
    assert len(pd.read_csv(tmp_path / "out" / "utilities.csv")) == 60
    golden = flat(json.loads(GOLDEN.read_text()))
    measured = flat(metric_values(results))
    assert {k: measured.get(k) for k in golden} == pytest.approx(golden, rel=1e-9, abs=1e-12, nan_ok=True)
    cost = next(s for s in results["sections"] if s["key"] == "cost")
    by_stage = pd.DataFrame(cost["tables"][0]["records"])
    assert len(by_stage) == len(keys) - 1  # every stage has its cost
    assert (by_stage["prompts_asked"] + by_stage["prompts_reused"] > 0).all()
    assert results["manifest"]["prompts_asked"] == by_stage["prompts_asked"].sum()
    tables = sorted(p.name for p in (tmp_path / "out" / "tables").iterdir())
    assert "utilities--by-category.csv" in tables and "cost--cost-by-stage.csv" in tables
    check_layout(tmp_path / "out", tmp_path, [s.title for s in report.sections])


def test_comparison_report_fits_its_pages(tmp_path):
    """`valuelab compare` over two audits: utility correlation, headlines side by side, each shared analysis."""
    folders = []
    for k in (1, 2):
        audit = run_audit(StoredModel(load_model(f"synthetic:{k}"), Store(tmp_path / "s.sqlite")), suite="quick",
                          only=["accuracy", "transitivity", "corrigibility"], progress=False)
        audit.write(tmp_path / f"a{k}")
        folders.append(tmp_path / f"a{k}")
    report = compare_reports(folders, tmp_path / "cmp")
    assert [s.key for s in report.sections] == ["utility-correlation", "headlines", "compare-accuracy",
                                                "compare-transitivity", "compare-corrigibility"]
    check_layout(tmp_path / "cmp", tmp_path, [s.title for s in report.sections], body_pages=10)


def test_model_and_data_text_is_escaped(tmp_path):
    outcomes = write_outcomes(tmp_path / "o.jsonl", [f"Outcome {i} {SCRIPT}" for i in range(6)] +
                              ['<img src=x onerror="alert(1)"> happens'])
    audit = run_audit(StoredModel(load_model("synthetic:1")), suite="quick", outcomes=str(outcomes),
                      only=["accuracy"], progress=False)
    audit.write(tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert SCRIPT not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.server
def test_audit_over_the_openai_path(llama_server, tmp_path):
    # 15 outcomes: the quick suite holds out 3% of pairs, so at least three held-out pairs to score
    outcomes = write_outcomes(tmp_path / "o.jsonl", [o.text for o in load_outcomes("quick")[::4]])
    model = StoredModel(load_model("openai:smollm2", base_url=llama_server), Store(tmp_path / "s.sqlite"))
    audit = run_audit(model, outcomes=str(outcomes), only=["accuracy", "corrigibility"], progress=False)
    sections = {s.key: s for s in audit.report.sections}
    assert sections["corrigibility"].cost["prompts_asked"] == 24
    assert sections["corrigibility"].cost["prompt_tokens"] > 24 * 20  # the server's usage, per stage
    assert 0 <= sections["accuracy"].metrics[0].value <= 1
    assert audit.report.manifest["model"]["backend"] == "openai"


def stored_count(path: Path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_audit_of_the_embedded_model_killed_and_resumed(tmp_path, cli_env):
    """SIGKILLed once its first answers are stored, the same command asks only what is missing. Nothing here
    depends on how fast the machine is: the kill waits for the store, not for a clock, and two small stages keep
    the run short."""
    out = tmp_path / "smollm2"
    outcomes = write_outcomes(tmp_path / "o.jsonl", [o.text for o in load_outcomes("quick")[::5]])
    cmd = [sys.executable, "-m", "valuelab.cli", "audit", "smollm2", "--suite", "quick", "--out", str(out),
           "--outcomes", str(outcomes), "--only", "transitivity,corrigibility"]
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and stored_count(out / "store.sqlite") == 0:  # until the first commit
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored_count(out / "store.sqlite")
    assert before > 0 and not (out / "report.html").exists()

    rerun = subprocess.run(cmd, env=cli_env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    asked = int(re.search(r"(\d+) prompts asked", rerun.stderr).group(1))
    assert stored_count(out / "store.sqlite") == before + asked  # nothing asked twice
    keys = [s["key"] for s in json.loads((out / "results.json").read_text())["sections"]]
    assert keys == ["utilities", "transitivity", "corrigibility", "robustness", "cost"]


def tiny(stage: Stage, tmp_path: Path) -> Stage:
    """The stage at the tiny size of its analysis' own embedded-model test (dilemmas and surveys: few items)."""
    small = {"utilities": {"outcomes": load_outcomes("quick")[:8], "budget": 8, "text_check": 4},
             "dilemmas": {"limit": 2, "n_boot": 50, "n_random": 20}, "survey": {"n_boot": 50, "n_random": 20}}
    extra = small.get(stage.analysis) or tiny_options(stage.analysis, tmp_path)
    return replace(stage, options={**stage.options, **extra})


@pytest.mark.slow
def test_every_quick_stage_runs_on_the_embedded_model(smollm2, tmp_path):
    """Every stage of the quick suite on the real model, at tiny budgets so the time does not depend on the
    machine's load: a stage that cannot run fails this test, and the report renders."""
    stages = [tiny(stage, tmp_path) for stage in SUITES["quick"]]
    audit = run_audit(StoredModel(smollm2, Store(tmp_path / "s.sqlite")), suite=stages, progress=False)
    out = tmp_path / "smollm2"
    audit.write(out)
    results = json.loads((out / "results.json").read_text())
    assert results["model"].startswith("smollm2:")
    keys = [s["key"] for s in results["sections"]]
    assert keys[:-2] == [stage.key for stage in SUITES["quick"]]
    failed = [(s["key"], s["failed"]) for s in results["sections"] if s["failed"]]
    assert not failed, failed
    page = out / "report.html"
    dom = chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0 and console_messages(dom.stderr) == []
    for key in keys[:-1]:  # the cost by stage is an appendix table, not a section of its own
        assert f'id="sec-{key}"' in dom.stdout
    assert 'id="sec-cost-cost-by-stage"' in dom.stdout
    shot = tmp_path / "report.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.stat().st_size > 20_000
    pages = pdf_text(out / "report.pdf")
    assert "Held-out fit accuracy" in "".join(pages)
    assert len(rasterize(out / "report.pdf", tmp_path)) == len(pages)


EXAMPLE = Path(__file__).parent.parent / "reports" / "smollm2"


def reproducible_numbers(results: dict) -> dict[str, float]:
    """Every number an audit measured (metrics, details, tables, the headline), by path; what depends on the run
    (cost, seconds, the manifest, the example prompt's store path) is left out."""
    out: dict[str, float] = {}

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for k, item in enumerate(value):
                walk(item, f"{path}[{k}]")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[path] = float(value)
        elif value is None:
            out[path] = math.nan

    walk(results["headline"], "headline")
    for section in results["sections"]:
        if section["key"] == "cost":
            continue
        for part in ("metrics", "facts", "tables", "details", "robustness", "body_table"):
            walk(section.get(part), f"{section['key']}.{part}")
    return out


@pytest.mark.slow
def test_the_committed_example_reproduces(tmp_path, cli_env):
    """reports/smollm2 holds the store its report was made from: the same command on a copy asks the model nothing
    and writes the same numbers. A change that moves a number fails here until the example is regenerated
    (`make demo` writes it, reusing the committed answers)."""
    out = tmp_path / "smollm2"
    out.mkdir()
    shutil.copy(EXAMPLE / "store.sqlite", out / "store.sqlite")
    run = subprocess.run([sys.executable, "-m", "valuelab.cli", "audit", "smollm2", "--suite", "quick", "--out",
                          str(out)], env=cli_env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"\b0 prompts asked", run.stderr), run.stderr[-500:]
    committed = json.loads((EXAMPLE / "results.json").read_text())
    fresh = json.loads((out / "results.json").read_text())
    assert [s["key"] for s in fresh["sections"]] == [s["key"] for s in committed["sections"]]
    expected, measured = reproducible_numbers(committed), reproducible_numbers(fresh)
    assert measured.keys() == expected.keys()
    assert measured == pytest.approx(expected, rel=1e-6, abs=1e-9, nan_ok=True)
    titles = [s["title"] for s in fresh["sections"] if s["key"] != "cost"]
    check_layout(out, tmp_path, titles)
