"""Layout checks for rendered reports: HTML in real headless Chromium, PDF through poppler's `pdftotext -bbox`.

Test support only, standard library plus pytest. The checks skip (naming the Debian package) when a binary is
missing, so `make test` must install `chromium` and `poppler-utils` for them to mean anything.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

# The same flags as tests/test_report.py's chromium(): no sandbox (containers), no network chatter, a private profile.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")
PT_PER_MM = 72 / 25.4

# --- HTML in Chromium -----------------------------------------------------------------------------------------

CSP_META = re.compile(r"<meta\b[^>]*http-equiv\s*=\s*[\"']?content-security-policy\b[^>]*>", re.IGNORECASE)

# Runs at `load` so styles and images are laid out; writes its findings as JSON into a new <pre> for --dump-dom.
MEASURE_JS = """<script>
window.addEventListener('load', () => {
  const root = document.querySelector('main') || document.body;
  const container = el => {
    for (let a = el.parentElement; a && a !== root; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (!s.display.startsWith('inline') && (s.overflowX !== 'visible' || s.overflowY !== 'visible')) return a;
    }
    return root;
  };
  const found = [];
  for (const el of root.querySelectorAll(SELECTOR)) {
    const box = container(el);
    const out = el.getBoundingClientRect().right - box.getBoundingClientRect().right;
    if (el.scrollWidth > el.clientWidth + 1 || out > 1) {
      const caption = el.querySelector(':scope > caption, :scope > figcaption');
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (el.getAttribute('class') ? '.' + el.getAttribute('class').trim().split(/\\s+/).join('.') : '');
      const where = box === root ? root.tagName.toLowerCase() : 'its clipping container';
      const text = (caption || el).textContent.trim() || el.getAttribute('alt') || el.getAttribute('aria-label') || '';
      found.push(`${name} "${text.replace(/\\s+/g, ' ').slice(0, 60)}": `
        + `scrollWidth ${el.scrollWidth}, clientWidth ${el.clientWidth}, `
        + `sticks out ${Math.round(Math.max(out, el.scrollWidth - el.clientWidth))} px past ${where}`);
    }
  }
  const pre = document.createElement('pre');
  pre.id = 'layout-result';
  pre.textContent = JSON.stringify({width: window.innerWidth, found});
  document.body.appendChild(pre);
});
</script>"""


def chromium_binary() -> str:
    """Path of Debian's chromium; skips the test when it is not installed."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed: `make test` should `apt-get install -y chromium`")
    return binary


def overflowing(html_path: Path, tmp_path: Path, width: int = 1280,
                selector: str = "table, figure, svg, pre, img") -> list[str]:
    """One description per element matching `selector` that is wider than its container, in a `width`-px window.

    Wider means its own content overflows it (scrollWidth > clientWidth + 1) or its right edge passes that of
    its nearest clipping ancestor (overflow not visible), else of <main> (else <body>), by more than 1 px. The
    report's CSP forbids scripts, so the measuring script runs in a copy with the CSP <meta> removed.
    """
    page = Path(html_path).read_text(encoding="utf-8")
    page = CSP_META.sub("", page)
    # A <base> keeps relative links pointing next to the original (not before <!doctype>: that means quirks mode).
    page = re.sub(r"(<head\b[^>]*>)", lambda m: f'{m[1]}<base href="{Path(html_path).resolve().parent.as_uri()}/">',
                  page, count=1, flags=re.IGNORECASE)
    script = MEASURE_JS.replace("SELECTOR", json.dumps(selector))
    end = page.lower().rfind("</body>")
    page = page[:end] + script + page[end:] if end >= 0 else page + script
    copy = tmp_path / f"layout-{Path(html_path).name}"
    copy.write_text(page, encoding="utf-8")
    run = subprocess.run(
        [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-layout'}",
         f"--window-size={width},1000", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="layout-result">(.*?)</pre>', run.stdout, re.DOTALL)
    assert match, f"the measuring script left no result (exit {run.returncode}): {run.stderr[-2000:]}"
    result = json.loads(html.unescape(match[1]))
    assert result["width"] == width, f"window is {result['width']} px wide, not {width}"
    return result["found"]


def console_errors(html_path: Path, tmp_path: Path, settle_s: float = 0.5) -> list[str]:
    """Error-level console messages of the ORIGINAL page (CSP intact): failed loads, CSP violations, exceptions.

    Chromium writes every console message of a web page to stderr as INFO (`INFO:CONSOLE`, what test_report.py's
    console_messages greps), console.error included, so stderr cannot tell levels apart. The level comes from
    the DevTools protocol over --remote-debugging-pipe instead (fd 3 in, fd 4 out, NUL-separated JSON).
    """
    to_chrome, from_chrome = os.pipe(), os.pipe()

    def wire_fds() -> None:  # in the child, before exec; first above 10 so neither dup2 clobbers the other's source
        reader, writer = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome[0], from_chrome[1]))
        os.dup2(reader, 3)
        os.dup2(writer, 4)

    log = tmp_path / "chromium-console.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-console'}",
             "--remote-debugging-pipe"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, preexec_fn=wire_fds, pass_fds=(3, 4))
    os.close(to_chrome[0])
    os.close(from_chrome[1])
    buffer, sent, events = b"", 0, []

    def receive(deadline: float) -> dict | None:
        nonlocal buffer
        while b"\0" not in buffer:
            ready, _, _ = select.select([from_chrome[0]], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(from_chrome[0], 1 << 16) if ready else b""
            if not chunk:
                return None
            buffer += chunk
        message, buffer = buffer.split(b"\0", 1)
        return json.loads(message)

    def send(method: str, session: str | None = None, **params) -> None:
        nonlocal sent
        sent += 1
        os.write(to_chrome[1], json.dumps({"id": sent, "method": method, "params": params,
                                           **({"sessionId": session} if session else {})}).encode() + b"\0")

    def call(method: str, session: str | None = None, **params) -> dict:
        send(method, session, **params)
        while (message := receive(time.monotonic() + 60)) is not None:
            if message.get("id") == sent:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result", {})
            events.append(message)
        raise AssertionError(f"chromium did not answer {method}: {log.read_text(errors='replace')[-2000:]}")

    try:
        target = call("Target.createTarget", url="about:blank")["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            call(f"{domain}.enable", session)
        call("Page.navigate", session, url=Path(html_path).resolve().as_uri())
        deadline = time.monotonic() + 60
        while (message := receive(deadline)) is not None:
            events.append(message)
            if message.get("method") == "Page.loadEventFired":  # then let late messages arrive
                deadline = min(deadline, time.monotonic() + settle_s)
        send("Browser.close")  # no answer awaited: the pipe closes with the browser
    finally:
        os.close(to_chrome[1])
        os.close(from_chrome[0])
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return [line for event in events if (line := _error_line(event))]


def _error_line(event: dict) -> str | None:
    """A DevTools event as one line if it is error-level, else None."""
    method, params = event.get("method"), event.get("params", {})
    if method == "Log.entryAdded" and params["entry"]["level"] == "error":
        entry = params["entry"]
        return f"{entry['source']} error: {entry['text']} ({entry.get('url', '')})"
    if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        frames = params.get("stackTrace", {}).get("callFrames", [{}])
        return f"console.{params['type']}: {args} ({frames[0].get('url', '')})"
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        description = details.get("exception", {}).get("description", "").split("\n")[0]
        return f"{details['text']} {description} ({details.get('url', '')}:{details.get('lineNumber', 0) + 1})"
    return None


# --- PDF through pdftotext -bbox -------------------------------------------------------------------------------


@dataclass
class Word:
    text: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float


@dataclass
class PdfPage:
    number: int  # 1-based
    width: float  # points; y grows downwards from the top edge, as pdftotext reports it
    height: float
    words: list[Word] = field(default_factory=list)


class _BboxParser(HTMLParser):
    """Reads pdftotext's XHTML: <page width height> holding <word xMin yMin xMax yMax>text</word>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # unescapes &amp; and friends in word text
        self.pages: list[PdfPage] = []
        self.word: Word | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): float(v or 0) for k, v in attrs if k.lower() in
             ("width", "height", "xmin", "ymin", "xmax", "ymax")}
        if tag == "page":
            self.pages.append(PdfPage(len(self.pages) + 1, a["width"], a["height"]))
        elif tag == "word":
            self.word = Word("", a["xmin"], a["ymin"], a["xmax"], a["ymax"])

    def handle_data(self, data: str) -> None:
        if self.word is not None:
            self.word.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "word" and self.word is not None:
            self.pages[-1].words.append(self.word)
            self.word = None


def pdf_words(pdf_path: Path) -> list[PdfPage]:
    """Every page of the PDF with its size and the bounding box of each word, from `pdftotext -bbox`."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed: `make test` should `apt-get install -y poppler-utils`")
    run = subprocess.run(["pdftotext", "-bbox", str(pdf_path), "-"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    parser = _BboxParser()
    parser.feed(run.stdout)
    parser.close()
    return parser.pages


def lines(page: PdfPage, tolerance: float = 2.0) -> list[list[Word]]:
    """The page's words grouped into visual lines (tops within `tolerance` pt), top to bottom, left to right."""
    grouped: list[list[Word]] = []
    for word in sorted(page.words, key=lambda w: (w.y_min, w.x_min)):
        if grouped and abs(word.y_min - grouped[-1][0].y_min) <= tolerance:
            grouped[-1].append(word)
        else:
            grouped.append([word])
    return [sorted(line, key=lambda w: w.x_min) for line in grouped]


def beyond_right_margin(pages: Iterable[PdfPage], margin_pt: float) -> list[str]:
    """Words that end inside the right margin (0.5 pt slack): text pushed or clipped past the printable area."""
    return [f"page {page.number}: {word.text!r} ends at {word.x_max:.1f} pt, margin at {page.width - margin_pt:.1f} pt"
            for page in pages for word in page.words if word.x_max > page.width - margin_pt + 0.5]


def _text(line: list[Word]) -> str:
    return " ".join(" ".join(w.text for w in line).split())


def body_lines(page: PdfPage, footer_mm: float = 15.0, header_mm: float = 12.0) -> list[list[Word]]:
    """The page's lines less running headers and footers ("Page N of M", or wholly in the top/bottom band)."""
    bottom, top = page.height - footer_mm * PT_PER_MM, header_mm * PT_PER_MM
    return [line for line in lines(page) if not (
        re.fullmatch(r"Page \d+ of \d+", _text(line))
        or min(w.y_min for w in line) >= bottom or max(w.y_max for w in line) <= top)]


def last_line_text(page: PdfPage, footer_mm: float = 15.0, header_mm: float = 12.0) -> str:
    """Text of the lowest line of the page that is not a running header or footer ("" for an empty page)."""
    body = body_lines(page, footer_mm, header_mm)
    return _text(body[-1]) if body else ""


def headings_at_page_bottom(pages: Iterable[PdfPage], headings: Iterable[str],
                            footer_mm: float = 15.0, header_mm: float = 12.0) -> list[str]:
    """Pages whose last body line is (or starts with) a heading: a heading stranded from the text it introduces."""
    wanted = [" ".join(h.split()) for h in headings if h.strip()]
    found = []
    for page in pages:
        last = last_line_text(page, footer_mm, header_mm)
        hit = next((h for h in wanted if last == h or last.startswith(h + " ")), None)
        if hit is not None:
            found.append(f"page {page.number} ends with heading {hit!r} (last line {last!r})")
    return found


# A printed number: optional (Unicode) minus, digits with optional thousands commas, decimals, exponent; not part
# of a longer word such as a hash or an identifier.
NUMBER = re.compile(r"(?<![\w.])[-\u2212+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-\u2212+]?\d+)?(?!\w|\.\d)")


def large_numbers(text: str, limit: float = 1e15) -> list[str]:
    """Numbers printed in `text` whose absolute value exceeds `limit`: a blown-up estimate or a unit slip."""
    return [m[0] for m in NUMBER.finditer(text)
            if abs(float(m[0].replace(",", "").replace("\u2212", "-"))) > limit]


# --- a whole report -------------------------------------------------------------------------------------------


def report_problems(out: Path, tmp_path: Path, headings: Iterable[str], sections: Iterable[str] = (), *,
                    margin_mm: float = 16.0, widths: Iterable[int] = (1280, 900),
                    section_pages: int = 2) -> tuple[list[str], int]:
    """Everything wrong with the layout of the report in `out` and the number of body pages (before the page
    that starts the appendix): tables or figures wider than their container in Chromium at each window width,
    console errors, PDF words past the right margin, headings left last on a page, a body section (by its
    numbered heading in `sections`) running over more than `section_pages` pages, and in the body a number
    above 1e15 or a flattened-dictionary row ("›")."""
    page = out / "report.html"
    problems = [f"HTML at {w} px: {found}" for w in widths for found in overflowing(page, tmp_path, w)]
    problems += [f"console: {error}" for error in console_errors(page, tmp_path)]
    pages = pdf_words(out / "report.pdf")
    problems += beyond_right_margin(pages, margin_mm * PT_PER_MM)
    problems += headings_at_page_bottom(pages, headings)
    starts = [p.number for p in pages if any(_text(line) == "Appendix" for line in body_lines(p))]
    body = pages[:starts[0] - 1] if starts else pages
    text = " ".join(_text(line) for p in body for line in body_lines(p))
    problems += [f"the body prints {number}" for number in large_numbers(text)]
    if "›" in text:
        problems.append("the body has a flattened-dictionary row (›)")
    found: dict[str, tuple[int, int]] = {}  # heading -> (page, line on that page)
    for p in body:
        for k, line in enumerate(body_lines(p)):
            if _text(line) in sections and _text(line) not in found:
                found[_text(line)] = (p.number, k)
    order = sorted(found.items(), key=lambda item: item[1])
    for (heading, (start, _)), following in zip(order, [*order[1:], None], strict=True):
        # a section ends on the page before the next one when that one opens its page, else on the same page
        end = len(body) if following is None else following[1][0] - (following[1][1] == 0)
        if end - start + 1 > section_pages:
            problems.append(f"section {heading!r} runs over pages {start}-{end}")
    return problems, len(body)
