"""Bad input at the command line: one line that says what is wrong and what to do, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch


def valuelab(*args, env):
    return subprocess.run([sys.executable, "-m", "valuelab.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("args,message", [
    (["prefer", "gpt4", "a", "b"], "unknown model spec 'gpt4': it should look like one of"),
    (["prefer", "openai:gpt-4o", "a", "b"], "missing API key: set the environment variable OPENAI_API_KEY"),
    (["prefer", "openai:m", "--base-url", "http://127.0.0.1:9/v1", "a", "b"], "is the server running"),
    (["prefer", "openai:m", "--api-key-env", "NO_SUCH_VAR", "--base-url", "http://127.0.0.1:9/v1", "a", "b"],
     "set the environment variable NO_SUCH_VAR"),
    (["prefer", "synthetic:1", "", "b"], "option A is empty"),
    (["prefer", "synthetic:1", "only one"], "give two outcomes"),
    (["prefer", "synthetic:x", "a", "b"], "integer seed"),
    (["prefer", "hf:", "a", "b"], "names no model"),
    (["control", "finetune", "synthetic:1", "--target", "nowhere", "--out", "adapter"],
     "fine-tuning needs a transformers model"),
    (["control", "assembly", "synthetic:1", "--size", "0", "--out", "assembly"], "needs at least one member"),
    pytest.param(["prefer", "smollm2", "--device", "cuda", "a", "b"], "sees no CUDA GPU on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["prefer", "smollm2", "--device", "gpu0", "a", "b"], "unknown device 'gpu0'"),
    (["analyze", "corrigibility", "synthetic:1", "--outcomes", "quick"],
     "analysis 'corrigibility' takes no option --outcomes quick"),
    (["audit", "synthetic:1", "--out", "audit", "--only", "transitivity,nope"], "no stage nope in this suite"),
    (["prefer", "synthetic:1", "--system", "@no/such/file.txt", "a", "b"], "cannot read the system prompt file"),
])
def test_bad_input_gives_one_clear_line(args, message, cli_env):
    out = valuelab(*args, env=cli_env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("valuelab: error:"), out.stderr
    assert message in lines[0]


def test_bad_pairs_file_names_file_line_and_column(tmp_path, cli_env):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("first,second\nx,y\nz,\n")
    out = valuelab("prefer", "synthetic:1", "--pairs", str(pairs), env=cli_env)
    assert out.returncode == 2
    assert f"{pairs}:3 field 'second': empty outcome text" in out.stderr


def test_models_lists_backends(cli_env):
    out = valuelab("models", env=cli_env)
    assert out.returncode == 0
    assert {line.split()[0] for line in out.stdout.splitlines()} == {"smollm2", "hf", "vllm", "openai", "synthetic"}
    assert out.stdout.splitlines()[0].split()[1] == "yes"  # the embedded model is installed by make test


def test_prefer_writes_csv(tmp_path, cli_env):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("first,second\nx,y\nz,w\n")
    out = valuelab("prefer", "synthetic:1", "--pairs", str(pairs), "--out", str(tmp_path / "o.csv"), env=cli_env)
    assert out.returncode == 0, out.stderr
    import pandas as pd

    frame = pd.read_csv(tmp_path / "o.csv")
    assert list(frame["first"]) == ["x", "z"] and frame["p_first"].between(0, 1).all()


def test_simulate_then_fit_recovers_the_truth(tmp_path, cli_env):
    prefs, truth, utils = tmp_path / "p.csv", tmp_path / "t.csv", tmp_path / "u.csv"
    out = valuelab("simulate", "--items", "60", "--pairs", "900", "--samples", "10", "--seed", "2", "--out",
                   str(prefs), "--truth", str(truth), env=cli_env)
    assert out.returncode == 0, out.stderr
    out = valuelab("fit", str(prefs), "--out", str(utils), "--holdout-pairs", "0.1", "--bootstrap", "10", env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "held-out accuracy" in out.stdout
    import pandas as pd
    from scipy.stats import spearmanr

    fitted = pd.read_csv(utils).merge(pd.read_csv(truth), on="item", suffixes=("", "_true"))
    assert list(pd.read_csv(utils).columns) == ["item", "mean", "variance", "mean_lo", "mean_hi"]
    assert spearmanr(fitted["mean"], fitted["mean_true"]).statistic > 0.95


def test_fit_names_the_bad_row(tmp_path, cli_env):
    bad = tmp_path / "bad.csv"
    bad.write_text("item_a,item_b,wins_a,wins_b\nx,y,1,2\nx,z,1,-2\n")
    out = valuelab("fit", str(bad), "--out", str(tmp_path / "u.csv"), env=cli_env)
    assert out.returncode == 2 and f"{bad}:3 field 'wins_b': negative count -2" in out.stderr


def test_estimate_prints_a_plan_before_anything_runs(cli_env):
    out = valuelab("estimate", "synthetic:0", "--rate", "10", env=cli_env)
    assert out.returncode == 0, out.stderr
    total = next(line for line in out.stdout.splitlines() if line.strip().startswith("total"))
    assert int(total.split()[2]) > 1000  # the quick suite asks well over a thousand prompts
