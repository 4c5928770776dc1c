"""The report renderer: HTML, PDF, results.json and comparisons, built from synthetic sections.

Browser and PDF-raster checks run real binaries (Debian packages `chromium` and `poppler-utils`); they
skip only when the binary is missing, naming the package `make test` should install.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valuelab.errors import InputError
from valuelab.report.compare import compare_reports, utility_correlations
from valuelab.report.figures import UnsafeSVGError, baseline, check_svg, new_figure, styled, to_svg
from valuelab.report.html import fmt, render_html, table_view, write_html
from valuelab.report.model import Report, Section, scrub
from valuelab.report.output import write_report
from valuelab.report.pdf import weasyprint_available, write_pdf
from valuelab.report.summary import verdict
from valuelab.stats import Metric

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="document.body.dataset.pwned=1">'
KEY = "sk-" + "A1b2C3d4" * 5


def bar_figure(labels: list[str], values: list[float], title: str):
    fig, ax = new_figure()
    with styled():
        ax.bar(labels, values)
        baseline(ax, 0.5, 0.4, 0.6)
        ax.set_title(title)
        ax.legend()
    return fig


def sample_report(outcome_text: str = "Humanity cures malaria", model_name: str = "synthetic:1",
                  shift: float = 0.0) -> Report:
    """Three sections with metric dicts, tables, figures, published numbers and notes."""
    rng = np.random.default_rng(0)
    utilities = pd.DataFrame({
        "id": [f"o{i}" for i in range(80)],
        "text": [outcome_text if i == 0 else f"Outcome number {i}" for i in range(80)],
        "category": ["health", "wealth", "power", "nature"] * 20,
        "mean": rng.normal(shift, 1, 80), "variance": rng.uniform(0.1, 1, 80),
    })
    accuracy = Metric(0.71 + shift / 10, 0.66, 0.76, 0.5, 0.46, 0.54, name="heldout_accuracy",
                      how_to_read="Share of unseen pairs the fitted utilities predict; 0.5 is chance.")
    runaway = Metric(4.2, 0.01, 6.19e259, 1.0, 0.5, 3.0, name="largest_rate")
    coherence = Section(
        "coherence", "Coherence", analysis="accuracy", question="How well do utilities explain the choices?",
        intro="How well a utility function explains the model's choices.\n\nA second paragraph.",
        prompt=f"Which do you prefer?\nOption A: {outcome_text}\nOption B: nothing",
        metrics=[accuracy, runaway, Metric(math.nan, name="delta_aic")], facts={"n_pairs": 1234},
        tables=[("Fit per category", utilities.groupby("category")[["mean", "variance"]].mean())],
        columns={"Fit per category": {"category": "outcome category", "mean": "mean utility"}},
        figures=[("Held-out accuracy against the random responder.",
                  bar_figure(["model", "random"], [0.71, 0.5], "Held-out accuracy"))],
        notes=["A 135M model is strongly position-biased; read its numbers with that in mind."],
        published=pd.DataFrame({"metric": ["heldout_accuracy", "heldout_accuracy"],
                                "model": ["GPT-4o", "Llama-3.1-8B"], "value": [0.92, 0.80],
                                "source": ["Mazeika et al. 2025, Fig. 2 (https://arxiv.org/abs/2502.08640)",
                                           "Mazeika et al. 2025, Fig. 2"]}),
        robustness={"position_bias": 0.12 + shift, "mean_choice_mass": 0.3},
        details={"graph": {"nodes": 80, "edges": 412}, "templates": ["state-of-world", "plain"]},
    )
    ranking = Section(
        "ranking", "Utility ranking", analysis="utilities", intro="Top and bottom outcomes by mean utility.",
        facts={"outcomes": 80},
        tables=[("Top outcomes", utilities.sort_values("mean", ascending=False).head(10)),
                ("All outcomes", pd.concat([utilities] * 2, ignore_index=True))],
        figures=[("Mean utility of the first outcomes.",
                  bar_figure(utilities["text"].head(5).tolist(), utilities["mean"].head(5).tolist(),
                             f"Top outcome: {outcome_text}"))],
    )
    failed = Section("broken", "Broken stage", failed="This stage could not run: the model was unreachable")
    return Report(
        title="Value audit", model_name=model_name, suite="quick", sections=[coherence, ranking, failed],
        manifest={"command": "valuelab audit synthetic:1", "written": "2025-01-01T00:00:00Z", "seed": 0,
                  "api_key": "plain-secret-value", "base_url": f"http://127.0.0.1:8080/v1?key={KEY}",
                  "label_token_ids": [32, 33], "versions": {"valuelab": "0.1.0", "python": "3.11"}},
        overview="We measured the utilities of 80 outcomes.",
    )


class _Resources(HTMLParser):
    """Collects tags and every attribute that could make a browser load something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "data", "poster", "action") and value:
                self.loads.append(value)
            if name.startswith("on"):
                self.loads.append(f"{name}={value}")


def parse(html: str) -> _Resources:
    parser = _Resources()
    parser.feed(html)
    return parser


# --- model and results.json -------------------------------------------------------------------------------


def test_results_json_holds_every_number(tmp_path):
    report = sample_report()
    path = report.write_results(tmp_path / "results.json")
    data = json.loads(path.read_text())
    assert data["format"] == "valuelab-report/2"
    assert data["headline"][0]["value"] == 0.71 and data["headline"][0]["section"] == "coherence"
    coherence = data["sections"][0]
    assert coherence["metrics"][0]["ci"] == [0.66, 0.76] and coherence["metrics"][0]["name"] == "heldout_accuracy"
    assert coherence["tables"][0]["records"][0]["category"] == "health"  # the index became a column
    assert coherence["details"]["graph"] == {"nodes": 80, "edges": 412}
    assert len(data["sections"][1]["tables"][1]["records"]) == 160
    assert coherence["metrics"][2]["value"] is None  # NaN is not valid JSON
    assert data["sections"][2]["failed"].startswith("This stage could not run")
    assert data["manifest"]["api_key"] == "[redacted]"
    assert KEY not in path.read_text()
    assert data["manifest"]["label_token_ids"] == [32, 33]  # "token" inside a longer name is not a secret


def test_scrub_redacts_key_shapes_and_secret_fields():
    out = scrub({"hf_token": "abc", "max_tokens": 5, "nested": [f"Bearer {KEY}", "hf_" + "x" * 30],
                 "api_key_env": "OPENAI_API_KEY"})
    assert out == {"hf_token": "[redacted]", "max_tokens": 5, "nested": ["[redacted]", "[redacted]"],
                   "api_key_env": "OPENAI_API_KEY"}


def test_fmt():
    assert fmt(0.70512) == "0.705"
    assert fmt(12345) == "12,345" and fmt(80.0) == "80" and fmt(1.0) == "1.000"
    assert fmt(-0.25) == "−0.250"
    assert fmt(float("nan")) == "—"
    assert fmt(2.5e-6) == "2.50e−06"
    assert fmt(True) == "yes"


# --- figures ----------------------------------------------------------------------------------------------


def test_svg_escapes_model_text_in_titles_and_ticks():
    fig, ax = new_figure()
    ax.bar([SCRIPT, IMG], [1, 2])
    ax.set_title(f"Title {SCRIPT}")
    svg = to_svg(fig)
    assert "<script" not in svg.lower() and "<img" not in svg.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert svg.startswith("<svg") and 'width="100%"' in svg and "<metadata" not in svg
    assert "font-family" in svg  # text stays text (svg.fonttype none), drawn with a local font


@pytest.mark.parametrize("bad", [
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><rect onload="alert(1)"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<use xlink:href="https://evil.example/x.svg#a"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(https://evil.example/a)"/></svg>',
])
def test_check_svg_rejects_active_or_remote_content(bad):
    import xml.etree.ElementTree as ET

    with pytest.raises(UnsafeSVGError):
        check_svg(ET.fromstring(bad))


# --- HTML ---------------------------------------------------------------------------------------------------


def test_html_has_every_section_in_order_and_no_remote_loads(tmp_path):
    html = render_html(sample_report())
    anchors = ("summary", "sec-coherence", "sec-ranking", "sec-broken", "appendix", "manifest")
    positions = [html.index(f'id="{a}"') for a in anchors]
    assert positions == sorted(positions)
    found = parse(html)
    assert found.tags.count("svg") == 2 and found.tags.count("script") == 1 and "img" not in found.tags
    # the page's one script is allowed by its hash, and nothing else runs
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    assert all(load.startswith(("#", "tables/")) for load in found.loads), found.loads
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # figures' internal ids are scoped, so two figures do not collide
    assert not re.search(r"url\(\s*['\"]?(?!#)|@import", html)
    assert "https://arxiv.org/abs/2502.08640" in html  # a citation stays readable as plain text
    assert "Content-Security-Policy" in html
    # numbers beside their interval and random baseline; the published figures led by our own
    assert "0.710" in html and "[0.660, 0.760]" in html and "0.500 [0.460, 0.540]" in html
    assert re.search(r'class="ours".*?synthetic:1 \(this audit\).*?0\.710', html, re.S)
    # the utility table keeps every row on screen, sortable and searchable; print shows the first 100
    assert ("The printed report shows the first 100 of 160 rows; all rows are in tables/ranking--all-outcomes.csv"
            in html)
    assert html.count('<tr class="screen-only">') == 60 and 'class="data sortable"' in html
    # an interval that ran away and a value the answers leave undefined are words, not numbers
    assert "6.19e" not in html and "its interval is unbounded" in html and "no value: the answers" in html
    assert "differs from random" in html and "1 of 1 headline measures differ" in html
    assert "strongly leans" not in html and "Largest answer-order bias: Coherence, +0.12" in html
    assert "Little probability on the answer labels in Coherence (30%)" in html
    assert "Could not run: Broken stage" in html
    assert "›" not in html


def test_html_escapes_model_and_data_text():
    html = render_html(sample_report(outcome_text=f"{SCRIPT} {IMG}", model_name=f"evil{SCRIPT}"))
    found = parse(html)
    assert found.tags.count("script") == 1 and "img" not in found.tags  # only the page's own script
    assert not any(load.startswith("on") for load in found.loads)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Option A: &lt;script&gt;" in html  # the example prompt too
    assert "&lt;img src=x onerror=" in html


def test_html_never_shows_keys():
    report = sample_report()
    report.sections[0].notes.append(f"the model said {KEY}")
    report.sections[0].prompt = f"my key is {KEY}"
    report.sections[1].figures.insert(0, ("keys", bar_figure(["a", "b"], [1, 2], f"the model said {KEY}")))
    html = render_html(report)
    assert KEY not in html and "plain-secret-value" not in html
    assert html.count("[redacted]") >= 4


# --- browser ----------------------------------------------------------------------------------------------


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed: `make test` should `apt-get install -y chromium`")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_chromium_catches_console_errors(tmp_path):
    """The console check below is only worth something if it sees errors: a blocked load must show."""
    page = tmp_path / "bad.html"
    page.write_text(render_html(sample_report()).replace("</main>", '<img src="missing.png"></main>'))
    run = chromium(page, tmp_path, "--dump-dom")
    assert any("missing.png" in m for m in console_messages(run.stderr)), run.stderr[-2000:]


def test_html_in_headless_chromium(tmp_path):
    page = write_html(sample_report(outcome_text=f"{SCRIPT} {IMG}"), tmp_path / "report.html")
    dom = chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(dom.stderr) == []
    found = parse(dom.stdout)
    assert found.tags.count("script") == 1 and "img" not in found.tags and "data-pwned" not in dom.stdout
    assert 'class="table-search"' in dom.stdout  # the page's script ran: the utility table is searchable
    for anchor in ("summary", "sec-coherence", "sec-ranking", "sec-broken", "appendix", "manifest"):
        assert f'id="{anchor}"' in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout  # still text after the browser parsed it
    shot = tmp_path / "report.png"
    run = chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert run.returncode == 0 and console_messages(run.stderr) == []
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


# --- PDF ----------------------------------------------------------------------------------------------------


def pdf_text(path: Path) -> list[str]:
    """Text of each page, through poppler's pdftotext."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed: `make test` should `apt-get install -y poppler-utils`")
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[:-1]


def rasterize(path: Path, out: Path) -> list[Path]:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed: `make test` should `apt-get install -y poppler-utils`")
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(out / "page")], check=True, timeout=120)
    return sorted(out.glob("page-*.png"))


def engines() -> list:
    weasy = pytest.param("weasyprint", marks=pytest.mark.skipif(
        not weasyprint_available(), reason="WeasyPrint missing: `pip install valuelab[pdf]` and Debian "
                                           "libpango-1.0-0 libpangoft2-1.0-0"))
    return [weasy, "matplotlib"]


@pytest.mark.parametrize("engine", engines())
def test_pdf_pages_text_and_numbers(tmp_path, engine):
    report = sample_report(outcome_text=SCRIPT)
    report.sections[0].notes.append("A lottery between $5 and $10 <b>not bold</b>")
    path = tmp_path / "report.pdf"
    assert write_pdf(report, path, engine=engine) == engine
    pages = pdf_text(path)
    assert len(pages) >= 3  # the summary, the sections, the appendix
    assert all(f"Page {k} of {len(pages)}" in page for k, page in enumerate(pages, start=1))
    text = "\n".join(pages)
    assert "6.19e" not in text and "undetermined" in text
    for title in ("Executive summary", "Coherence", "Utility ranking", "Broken stage", "Appendix", "Run manifest"):
        assert title in text
    assert "Held-out accuracy" in text and "0.710" in text and "Mazeika et al. 2025" in text
    assert SCRIPT in text and "between $5 and $10 <b>not bold</b>" in text  # literal text, no mathtext
    assert KEY not in text and "plain-secret-value" not in text
    images = rasterize(path, tmp_path)
    assert len(images) == len(pages)
    from PIL import Image

    with Image.open(images[0]) as first:  # A4 portrait at 50 dpi
        assert first.size[0] == pytest.approx(413, abs=3) and first.size[1] == pytest.approx(585, abs=3)


def test_minimal_report_writes_all_files(tmp_path):
    report = Report("Empty audit", "synthetic:0", "quick")
    paths = write_report(report, tmp_path, pdf_engine="matplotlib")
    assert sorted(p.name for p in paths.values()) == ["report.html", "report.pdf", "results.json"]
    assert json.loads(paths["results"].read_text())["sections"] == []
    assert 'id="manifest"' in paths["html"].read_text()
    assert paths["pdf"].read_bytes().startswith(b"%PDF")


@pytest.mark.skipif(not weasyprint_available(), reason="WeasyPrint missing: `pip install valuelab[pdf]`")
def test_weasyprint_loads_nothing_from_outside(tmp_path, monkeypatch):
    """Even a page that asks for remote and local files gets none of them while the PDF is made."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    local = tmp_path / "local.css"
    local.write_text("body { color: red }")
    page = (f'<html><head><link rel="stylesheet" href="{url}/a.css"><link rel="stylesheet" '
            f'href="{local.as_uri()}"></head><body><img src="{url}/b.png"><p>text</p></body></html>')
    monkeypatch.setattr("valuelab.report.pdf.render_html", lambda report: page)
    try:
        write_pdf(sample_report(), tmp_path / "out.pdf", engine="weasyprint")
    finally:
        server.shutdown()
    assert hits == []
    assert (tmp_path / "out.pdf").read_bytes().startswith(b"%PDF")


# --- compare ------------------------------------------------------------------------------------------------


def write_audit(directory: Path, report: Report, utilities: pd.DataFrame | None) -> Path:
    report.write_results(directory / "results.json")
    if utilities is not None:
        utilities.to_csv(directory / "utilities.csv", index=False)
    return directory


def test_utility_correlations_over_shared_ids():
    a = pd.DataFrame({"id": ["x", "y", "z", "w", "v"], "mean": [1.0, 2.0, 3.0, 4.0, 5.0]})
    b = pd.DataFrame({"id": ["v", "w", "z", "y", "q"], "mean": [10.0, 8.0, 6.0, 4.0, 0.0]})  # q not shared
    matrix, pairs = utility_correlations({"a": a, "b": b})
    assert pairs.loc[0, "n_shared"] == 4
    assert matrix.loc["a", "b"] == pytest.approx(1.0)  # y,z,w,v rise together in both
    assert pairs.loc[0, "baseline_lo"] < 0 < pairs.loc[0, "baseline_hi"]


def test_compare_reports(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"o{i}" for i in range(40)]
    base = rng.normal(size=40)
    dirs = []
    for k, (name, noise) in enumerate([("model-a", 0.1), ("model-b", 0.3), ("model-c", 3.0)]):
        utilities = pd.DataFrame({"id": ids, "text": ids, "category": "c", "variance": 1.0,
                                  "mean": base + noise * rng.normal(size=40)})
        dirs.append(write_audit(tmp_path / name, sample_report(model_name=name, shift=0.05 * k), utilities))
    report = compare_reports(dirs, tmp_path / "cmp", pdf_engine="matplotlib")
    data = json.loads((tmp_path / "cmp" / "results.json").read_text())
    correlations = {m["name"]: m["value"] for m in data["sections"][0]["metrics"]}
    assert correlations["model-a vs model-b"] > 0.9
    assert abs(correlations["model-a vs model-c"]) < 0.9
    keys = [s.key for s in report.sections]
    assert keys == ["utility-correlation", "headlines", "compare-coherence"]  # ranking has no metrics
    side_by_side = report.sections[2].body_table[1]
    accuracy = side_by_side[side_by_side["measure"] == "heldout accuracy"].set_index("model")
    assert list(accuracy.index) == ["model-a", "model-b", "model-c"]
    assert accuracy.loc["model-c", "value"] == pytest.approx(0.72) and accuracy.loc["model-c", "ci_lo"] == 0.66
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert html.count("<svg") >= 2 and "›" not in html and (tmp_path / "cmp" / "report.pdf").stat().st_size > 0
    assert (tmp_path / "cmp" / "tables" / "utility-correlation--pairs.csv").is_file()


def test_compare_names_the_bad_file(tmp_path):
    good = write_audit(tmp_path / "a", sample_report(), None)
    with pytest.raises(InputError, match="results.json"):
        compare_reports([good, tmp_path / "missing"], tmp_path / "out")
    bad = write_audit(tmp_path / "b", sample_report(), pd.DataFrame({"id": ["x", "x"], "mean": [1.0, 2.0]}))
    with pytest.raises(InputError, match=r"utilities.csv:3 field 'id'"):
        compare_reports([good, bad], tmp_path / "out")
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({"format": "valuelab-report/1", "model": "m", "sections": []}))
    with pytest.raises(InputError, match=r"old/results.json field 'format'.*run the audit again"):
        compare_reports([good, old], tmp_path / "out")


def test_verdicts_read_each_metric_against_the_random_responder():
    nan = math.nan
    assert verdict(Metric(0.9, 0.8, 0.95, 0.5, 0.4, 0.6))[0] == "differs"
    assert verdict(Metric(0.55, 0.45, 0.65, 0.5, 0.4, 0.6))[0] == "random"
    assert verdict(Metric(0.55, 0.45, 0.65))[:2] == ("none", "no random baseline")
    code, words, reason = verdict(Metric(nan, nan, nan, 0.5, 0.4, 0.6))
    assert (code, words) == ("undetermined", "undetermined") and "undefined" in reason
    assert "unbounded" in verdict(Metric(4.2, 0.01, 6.19e259, 1.0, 0.5, 3.0))[2]
    assert "ran away" in verdict(Metric(3e20, 1.0, 2.0, 1.0, 0.5, 3.0))[2]
    assert verdict(Metric(0.5, nan, nan, 0.5, 0.4, 0.6))[2].startswith("no interval")
    # a number too large to be a measurement is printed as a word, also in tables
    assert fmt(6.19e259) == fmt(-1e16) == "undetermined" and fmt(9.9e14 + 0.5) == "9.90e+14"
    assert fmt(-3.88e-18) == "0.000"


def test_interval_columns_share_one_cell_and_the_csv_keeps_both():
    frame = pd.DataFrame({"tag": ["care"], "weight": [0.5], "weight_lo": [0.1], "weight_hi": [0.9],
                          "weight_baseline_lo": [-0.2], "weight_baseline_hi": [0.2], "lo": [1.0], "hi": [2e300]})
    view = table_view("t", frame, legend={"weight_lo": "lower end of the weight's interval"})
    assert view.columns == ["tag", "weight", "weight interval", "weight baseline range", "interval"]
    assert view.rows == [["care", "0.500", "[0.100, 0.900]", "[−0.200, 0.200]", "undetermined"]]
    assert ("weight interval", "the weight's interval (lower, upper)") in view.legend
