"""`--format html`: one self-contained page, hostile names shown as text, checked in a real browser.

The browser half drives the distribution's Chromium through Playwright (its own
browser download is not available where CI runs); a missing Chromium fails
the suite, since CI installs it (`.ci/run`).
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.builders import TINY_CARD, safetensors_bytes, write_tiny_model

BASE = "<script>alert(1)</script>"  # the model's declared base model (its card says so)
FOLDER = "<svg onload=alert(3)>"  # the model's name (from its folder)
FILE = '"><img src=x onerror=alert(2)>.bin'  # a file name that closes an attribute
HOSTILE = (BASE, FOLDER, FILE)
RULES = {"AUD-PKL-001": "critical", "AUD-ST-002": "high", "AUD-SCAN-003": "high",
         "AUD-FILE-001": "high"}


@pytest.fixture
def hostile_model(tmp_path: Path) -> Path:
    """Names with markup everywhere the artifact chooses a name, and findings of two severities."""
    model = write_tiny_model(tmp_path / FOLDER)
    (model / "README.md").write_text(TINY_CARD.replace("example-org/tiny-base", f'"{BASE}"'))
    (model / FILE).write_bytes(b"\x80\x04cos\nsystem\n(S'echo hi'\ntR.")
    (model / "broken.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [2])})[:12])
    (model / "notes.txt.pkl").write_bytes(b"\x13\x37\x00\x00" * 8)
    return model


@pytest.fixture
def scan_page(run_cli, hostile_model: Path, tmp_path: Path) -> Path:
    out = tmp_path / "scan.html"
    run = run_cli("scan", hostile_model, "--format", "html", "-o", out)
    assert run.code == 1, run.err
    return out


WAIVER_REASON = "<b>accepted</b> until the vendor re-exports it"


@pytest.fixture
def gate_page(run_cli, hostile_model: Path, tmp_path: Path) -> Path:
    """The baseline verdict, with one violation waived (its reason has markup too)."""
    expires = datetime.date.today() + datetime.timedelta(days=30)
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(f"""policy: waivers
description: One accepted exception.
waivers:
  - rule: BASE-004
    model: {json.dumps(FOLDER)}
    reason: {json.dumps(WAIVER_REASON)}
    approver: security@example.org
    expires: {expires.isoformat()}
""")
    out = tmp_path / "gate.html"
    run = run_cli("gate", hostile_model, "--policy", "baseline", "--policy", waivers,
                  "--format", "html", "-o", out)
    assert run.code == 1, run.err
    return out


# -- the markup itself ------------------------------------------------------------------


class _Tags(HTMLParser):
    """Every element and attribute as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _no_hostile_markup(text: str) -> None:
    for raw in HOSTILE:
        assert raw not in text
    parser = _Tags()
    parser.feed(text)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"img", "svg", "iframe", "object", "embed", "link", "base", "a"}
    assert [attrs.get("type") for tag, attrs in parser.tags if tag == "script"] == [
        "application/json", None]  # the data block and the one script, both inline
    for _, attrs in parser.tags:
        assert not {"src", "href", "action", "srcset"} & set(attrs)  # nothing to load
        assert not [a for a in attrs if a.startswith("on")]  # no handler from the artifact


@pytest.mark.parametrize("page", ["scan_page", "gate_page"])
def test_artifact_names_are_escaped_and_nothing_is_loaded(page: str, request) -> None:
    text = request.getfixturevalue(page).read_text()
    _no_hostile_markup(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.bin" in text
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', text)
    assert csp and "default-src &#x27;none&#x27;" in csp.group(1)
    assert "unsafe-inline" not in csp.group(1)


def test_scan_page_names_each_excluded_file_with_its_pattern(run_cli, hostile_model, tmp_path):
    out = tmp_path / "scan.html"
    run = run_cli("scan", hostile_model, "--exclude", "notes.*", "--format", "html", "-o", out)
    assert run.code == 1, run.err
    text = out.read_text()
    assert "<tr><td>notes.txt.pkl</td><td>notes.*</td></tr>" in text
    assert "2 findings</p>" in text  # its two findings went with it


def test_gate_page_names_each_excluded_file_with_its_pattern(run_cli, hostile_model, tmp_path):
    out = tmp_path / "gate.html"
    run = run_cli("gate", hostile_model, "--exclude", "notes.*", "--policy", "baseline",
                  "--format", "html", "-o", out)
    assert run.code == 1, run.err
    text = out.read_text()
    assert "1 file(s) left out by an exclude pattern" in text
    assert "<td>notes.txt.pkl (notes.*)</td>" in text  # read back from the SBOM


def test_json_data_block_cannot_end_its_script() -> None:
    from auditor.report.html_page import json_block

    block = json_block("x", [{"rule": "</script><!--<script>alert(1)\u2028&"}])
    body = block.removeprefix('<script type="application/json" id="x">').removesuffix("</script>")
    assert not set("<>&\u2028") & set(body)
    assert json.loads(body) == [{"rule": "</script><!--<script>alert(1)\u2028&"}]


def test_html_is_a_format_of_scan_and_gate() -> None:
    from auditor.report import SCAN_REPORTERS, VERDICT_REPORTERS

    assert SCAN_REPORTERS["html"] == "scan_html"
    assert VERDICT_REPORTERS["html"] == "verdict_html"


# -- a real browser ---------------------------------------------------------------------


@pytest.fixture
def browser_page(request, tmp_path: Path):
    """A headless Chromium page recording dialogs, requests and console errors; a PNG on failure."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: install the `chromium` package "
                    "(apt-get install chromium); .ci/run does this on CI")
    failed_before = request.session.testsfailed
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox"])
        page = browser.new_page()
        page.seen = {"dialogs": [], "requests": [], "errors": []}  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (page.seen["dialogs"].append(d.message), d.dismiss()))
        page.on("request", lambda r: page.seen["requests"].append(r.url))
        page.on("console", lambda m: m.type == "error" and page.seen["errors"].append(m.text))
        page.on("pageerror", lambda e: page.seen["errors"].append(str(e)))
        yield page
        # The call's report is logged before teardown: a failure shows in the session count.
        if request.session.testsfailed > failed_before:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page: {shot}")
        browser.close()


def _open(page, path: Path, tmp_path: Path) -> None:
    page.goto(path.as_uri())
    page.wait_for_selector("#verdict")
    shot = tmp_path / f"{path.stem}.png"
    page.screenshot(path=str(shot), full_page=True)  # the screenshot step: kept for a person
    assert shot.stat().st_size > 0


def _visible_rules(page) -> list[str]:
    return page.eval_on_selector_all(
        "#findings tbody tr:not([hidden]) td:nth-child(2)",
        "cells => cells.map(c => c.textContent)")


def _nothing_ran_or_loaded(page, path: Path) -> None:
    text = page.inner_text("body")
    for raw in HOSTILE:
        assert raw in text  # shown as the literal text the artifact wrote
    assert page.seen["dialogs"] == []
    assert page.seen["requests"] == [path.as_uri()]
    assert page.seen["errors"] == []
    assert page.locator("img, svg, iframe, object, embed").count() == 0


def test_scan_report_renders_filters_and_shows_hostile_names_as_text(
        browser_page, scan_page: Path, tmp_path: Path) -> None:
    page = browser_page
    _open(page, scan_page, tmp_path)
    assert page.inner_text("#verdict").startswith("FAIL — 4 finding(s)")
    assert page.inner_text("#findings-count") == "4 findings"
    assert sorted(_visible_rules(page)) == sorted(RULES)
    assert page.inner_text("#shown") == "4 of 4 shown"

    page.uncheck("#filters input[value=high]")
    assert _visible_rules(page) == ["AUD-PKL-001"]
    page.check("#filters input[value=high]")
    page.select_option("#rule-filter", "AUD-FILE-001")
    assert _visible_rules(page) == ["AUD-FILE-001"]
    page.uncheck("#filters input[value=high]")
    assert _visible_rules(page) == []
    assert page.inner_text("#shown") == "0 of 4 shown"
    page.select_option("#rule-filter", "")
    assert _visible_rules(page) == ["AUD-PKL-001"]

    _nothing_ran_or_loaded(page, scan_page)


def test_gate_report_renders_the_verdict_and_the_evidence(
        browser_page, gate_page: Path, tmp_path: Path) -> None:
    page = browser_page
    _open(page, gate_page, tmp_path)
    assert page.inner_text("#verdict").startswith("FAIL — ")
    assert "baseline.yaml" in page.inner_text("#verdict ~ section")
    assert page.locator("#failed tbody tr").count() >= 1
    assert page.inner_text("#findings-count") == "4 findings"
    page.select_option("#rule-filter", "AUD-PKL-001")
    assert _visible_rules(page) == ["AUD-PKL-001"]
    body = page.inner_text("body")
    assert "Coverage" in body and "unsigned" in body
    waived = page.eval_on_selector_all(
        "#waivers tbody td", "cells => cells.map(c => c.textContent)")
    assert waived[:2] == ["BASE-004", FOLDER] and WAIVER_REASON in waived
    assert "security@example.org" in waived
    assert "BASE-004" not in page.inner_text("#failed")
    _nothing_ran_or_loaded(page, gate_page)


def test_without_javascript_every_row_is_shown_and_no_dead_control(
        browser_page, scan_page: Path) -> None:
    context = browser_page.context.browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(scan_page.as_uri())
    assert page.locator("#findings tbody tr:not([hidden])").count() == 4
    assert not page.is_visible("#filters")
    context.close()


def test_clean_model_page_passes_with_no_findings_table_and_no_error(
        browser_page, run_cli, tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "tiny")
    out = tmp_path / "clean.html"
    assert run_cli("gate", model, "--policy", "baseline", "--format", "html", "-o", out).code == 0
    _open(browser_page, out, tmp_path)
    assert browser_page.inner_text("#verdict") == "PASS — no violation at or above low"
    assert browser_page.inner_text("#findings-count") == "0 findings"
    assert browser_page.locator("#findings, #filters").count() == 0
    assert browser_page.seen["errors"] == [] and browser_page.seen["requests"] == [out.as_uri()]
