"""The report in a real browser: headless system Chromium driven by Playwright, fully offline."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import require_module, require_tool
from tests.helpers.report import build_results, require_vendor

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from cfrna.report import report_folder

    require_vendor()
    out = build_results(tmp_path_factory.mktemp("results"))
    return report_folder(out, title="Browser test", anndata=False)


@pytest.fixture()
def page(tmp_path):
    """A fresh Chromium (system binary, own profile) whose every non-file:// request is blocked and recorded."""
    exe = require_tool("chromium")
    require_vendor()
    sync_api = require_module("playwright.sync_api")
    attempts: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=exe,
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1500, "height": 1000},
        )

        def guard(route):
            url = route.request.url
            if url.startswith(("file://", "data:", "blob:")):
                route.continue_()
            else:
                attempts.append(url)
                route.abort()

        ctx.route("**/*", guard)
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        pg.attempts = attempts  # type: ignore[attr-defined]
        pg.errors = errors  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            ctx.close()
    assert attempts == [], f"the report tried to reach the network: {attempts}"


def _save_artifact(path: Path) -> None:
    dest = os.environ.get("CFRNA_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(dest) / path.name)


def test_report_end_to_end_in_chromium(report: Path, page, tmp_path: Path) -> None:
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready='1'][data-plots='1']", timeout=30_000)
    page.wait_for_selector("#de-table .tabulator-row")
    assert page.locator('[data-tab="de"]').get_attribute("aria-selected") == "true"
    total = page.locator("#de-count").inner_text()
    assert total.startswith("300 of 300"), total
    # sorted by padj with NA last: the first row is the most significant gene
    first_padj = page.locator("#de-table .tabulator-row").first.locator(".tabulator-cell[tabulator-field='padj']")
    assert first_padj.inner_text() != "NA"
    assert page.evaluate("window.cfrnaFilter('', 0.05, 0)") == page.evaluate(
        "document.querySelectorAll('#de-table .tabulator-row').length"
    )
    page.evaluate("window.cfrnaFilter('', 1, 0)")

    # search a planted DE gene
    page.fill("#de-search", "ifi27")
    page.wait_for_function("document.querySelector('#de-count').textContent.startsWith('1 of')")
    rows = page.locator("#de-table .tabulator-row")
    assert rows.count() == 1
    assert "IFI27" in rows.first.inner_text()
    rows.first.locator(".tabulator-cell[tabulator-field='name']").click()
    page.wait_for_selector("#gene-card h3")
    assert "IFI27" in page.locator("#gene-card h3").inner_text()
    page.wait_for_selector("#gc-group .scatterlayer .point")
    assert page.locator("#gc-visit .scatterlayer .trace").count() >= 2  # flare and no_flare lines

    # filter by padj: only the planted genes (and any chance hits) remain, all with padj <= 0.05
    page.fill("#de-search", "")
    page.wait_for_function("document.querySelector('#de-count').textContent.startsWith('300 of')")
    page.fill("#de-padj", "0.05")
    page.wait_for_function("!document.querySelector('#de-count').textContent.startsWith('300 of')")
    shown = int(page.locator("#de-count").inner_text().split()[0])
    assert 1 <= shown < 300
    names = page.locator("#de-table .tabulator-row .tabulator-cell[tabulator-field='name']").all_inner_texts()
    assert "IFI27" in names

    # export the filtered rows as CSV and check them
    with page.expect_download() as dl_info:
        page.click("#de-export")
    dl = dl_info.value
    csv_path = tmp_path / "export.csv"
    dl.save_as(csv_path)
    with csv_path.open(newline="") as fh:
        data = list(csv.DictReader(fh))
    assert len(data) == shown
    assert {"gene_name", "gene_id", "baseMean", "log2FoldChange", "log2FoldChange_shrunk", "padj"} <= set(data[0])
    assert all(float(r["padj"]) <= 0.05 for r in data)
    assert "IFI27" in {r["gene_name"] for r in data}

    # click a volcano point: the gene card switches to that gene and the table selects it
    page.fill("#de-padj", "1")
    page.wait_for_function("document.querySelector('#de-count').textContent.startsWith('300 of')")
    gene = page.evaluate(
        """() => {
        const el = document.getElementById('volcano');
        const tr = el.data.findIndex(t => t.name.startsWith('up'));
        const k = el.data[tr].customdata.length - 1;
        return {tr, k, text: el.data[tr].text[k]};
    }"""
    )
    pt = page.locator("#volcano .scatterlayer .trace").nth(gene["tr"]).locator(".point").nth(gene["k"])
    box = pt.bounding_box()  # Plotly's drag layer covers the points: use real mouse events at the point
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.wait_for_selector("#volcano .hoverlayer .hovertext")
    hover = page.locator("#volcano .hoverlayer").text_content() or ""
    page.mouse.click(cx, cy)
    page.wait_for_function("document.querySelector('#gene-card h3') && !document.querySelector('#gene-card h3').textContent.startsWith('IFI27 ')")
    title = page.locator("#gene-card h3").inner_text()
    symbol = title.split()[0]
    assert symbol in gene["text"] and symbol in hover
    selected = page.locator("#de-table .tabulator-row.sel")
    assert selected.count() == 1 and symbol in selected.inner_text()

    # keyboard: focus the table, arrow down moves the selection and the gene card
    page.focus("#de-table")
    page.keyboard.press("Home")
    first = page.locator("#gene-card h3").inner_text()
    page.keyboard.press("ArrowDown")
    page.wait_for_function(f"document.querySelector('#gene-card h3').textContent !== {first!r}")

    # switch contrast (its data block is parsed on first use): table, plots and the card follow
    page.select_option("#de-contrast", "1")
    page.wait_for_function("document.getElementById('volcano').layout.title.text === 'Volcano: visit_1'")
    assert page.locator("#de-count").inner_text().startswith("300 of 300")
    assert "visit_1" in page.locator("#gene-card").inner_text()
    page.select_option("#de-contrast", "0")

    # pathways: a leading-edge gene opens its gene card
    page.click('[data-tab="pathways"]')
    page.wait_for_selector("#pw-table a.gene-link[data-gene='RSAD2']")
    page.click("#pw-table a.gene-link[data-gene='RSAD2']")
    page.wait_for_function("document.querySelector('#gene-card h3').textContent.startsWith('RSAD2')")

    # the other tabs render
    page.click('[data-tab="qc"]')
    page.wait_for_selector("#qc-table .badge.fail")
    assert "P005_V1" in page.locator("#qc-excluded").inner_text()
    page.click('[data-tab="pca"]')
    page.wait_for_selector("#pca-plot .scatterlayer .point")
    page.click('[data-tab="signatures"]')
    page.wait_for_selector("#sig-plot .scatterlayer .point")
    page.select_option("#sig-group", "arm")
    page.wait_for_function("document.getElementById('sig-plot').layout.title.text.endsWith('by arm')")
    assert page.locator("#sig-plot .xtick").count() == 2  # steroid_maintenance, steroid_tapering
    page.click('[data-tab="provenance"]')
    assert "featureCounts" in page.locator("#prov-body").inner_text()

    page.click('[data-tab="de"]')
    shot = tmp_path / "report_de.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    _save_artifact(shot)
    assert page.errors == [], page.errors


def test_report_without_de_in_chromium(tmp_path: Path, page) -> None:
    from cfrna.report import report_folder

    out = build_results(tmp_path / "res", with_de=False, with_pathways=False, with_info=False)
    html = report_folder(out, anndata=False)
    page.goto(html.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.locator('[data-tab="de"]').is_hidden()
    assert page.locator("#no-de").is_visible()
    assert "No differential expression results" in page.locator("#summary-body").inner_text()
    page.click('[data-tab="qc"]')
    page.wait_for_selector("#qc-table .tabulator-row")
    assert page.errors == [], page.errors


#: JS: the tables of the visible panel that have no data row (Tabulator and plain), and its plots without a trace
_EMPTY_PARTS = """() => {
  const panel = Array.from(document.querySelectorAll('[role="tabpanel"]')).find((p) => !p.hidden);
  const name = (el) => el.id || (el.closest('[id]') || {}).id || el.className;
  const out = [];
  for (const t of panel.querySelectorAll('.tabulator')) if (!t.querySelector('.tabulator-row')) out.push('table ' + name(t));
  for (const t of panel.querySelectorAll('table.plain')) if (!t.querySelector('tbody tr')) out.push('table ' + name(t));
  for (const p of panel.querySelectorAll('.js-plotly-plot')) if (!p.querySelector('.scatterlayer .trace')) out.push('plot ' + name(p));
  return {panel: panel.id, tables: panel.querySelectorAll('.tabulator, table.plain').length, empty: out};
}"""


def visit_every_tab(page, html: Path) -> dict[str, int]:
    """Open ``html``, click every visible tab and check each table has rows and each plot a trace.

    Returns the number of tables per tab; fails on any page error or console error.
    """
    page.goto(html.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    tabs = [t for t in page.locator('[role="tab"]').all() if t.is_visible()]
    names = [t.get_attribute("data-tab") for t in tabs]
    assert {"summary", "qc", "provenance"} <= set(names), names
    seen: dict[str, int] = {}
    for tab, name in zip(tabs, names, strict=True):
        tab.click()
        assert page.locator(f"#panel-{name}").is_visible(), name
        # tables and plots fill asynchronously: wait until nothing is empty, then say what stayed empty
        with contextlib.suppress(require_module("playwright.sync_api").TimeoutError):
            page.wait_for_function(f"({_EMPTY_PARTS})().empty.length === 0", timeout=15_000)
        state = page.evaluate(_EMPTY_PARTS)
        assert state["empty"] == [], f"tab {name}: empty {state['empty']}; page errors: {page.errors}"
        assert page.errors == [], f"tab {name}: {page.errors}"
        seen[name] = state["tables"]
    return seen


@pytest.mark.slow
@pytest.mark.timeout(1500)  # includes the session's one `cfrna run` (pipeline_run)
def test_every_tab_of_a_real_run(pipeline_run: Path, page) -> None:
    """The report that `cfrna run` wrote: every tab renders, every table has rows, no page or console error."""
    require_vendor()
    html = pipeline_run / "report" / "index.html"
    seen = visit_every_tab(page, html)
    assert set(seen) == {"summary", "de", "pathways", "signatures", "qc", "pca", "provenance"}, seen
    assert all(seen[t] >= 1 for t in ("de", "pathways", "qc", "provenance")), seen
    # the QC passport shows the text columns of a real run as text
    page.click('[data-tab="qc"]')
    qc_row = page.locator("#qc-table .tabulator-row").first
    assert qc_row.locator(".tabulator-cell[tabulator-field='strandedness_used']").inner_text() in ("forward", "reverse", "unstranded")
    assert qc_row.locator(".tabulator-cell[tabulator-field='gdna_method']").inner_text() not in ("", "NA")
    n_qc = page.locator("#qc-table .tabulator-row").count()
    assert n_qc == len(pd.read_csv(pipeline_run / "qc" / "qc_summary.tsv", sep="\t"))


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_report_every_tab(demo_run, page) -> None:
    """`cfrna demo` as a new user runs it (the session's one run, conftest ``demo_run``): its report has no
    page or console error on any tab."""
    require_vendor()
    assert demo_run["proc"].returncode == 0, demo_run["proc"].stderr[-4000:]
    seen = visit_every_tab(page, demo_run["root"] / "results" / "report" / "index.html")
    assert {"summary", "de", "qc", "pca", "provenance"} <= set(seen), seen


def test_report_story_in_chromium(report: Path, page) -> None:
    """What the reader is told: sign of log2FC, first contrast everywhere, top results, dropped samples,
    GSEA p-values of 0 and file sizes in words."""
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready='1'][data-plots='1']", timeout=30_000)
    sign = page.locator("#de-sign").inner_text()
    assert "log2FC > 0 = higher in flare" in sign and "no_flare" in sign and "P005_V1" in sign, sign
    page.select_option("#de-contrast", "1")
    page.wait_for_function("document.querySelector('#de-sign').textContent.includes('higher in 6')")
    page.select_option("#de-contrast", "0")

    page.click('[data-tab="summary"]')
    top = page.locator("#summary-top tbody tr")
    assert top.count() == 2
    first = top.first.inner_text()
    assert first.startswith("flare_vs_no_flare") and "IFI27" in first and "HBB" in first and "IFN_4GENE" in first, first
    page.click("#summary-top a.gene-link[data-g]:text('HBB')")
    page.wait_for_function("document.querySelector('#gene-card h3') && document.querySelector('#gene-card h3').textContent.startsWith('HBB')")
    assert "P005_V1" in page.locator("#gene-card").inner_text()  # the excluded sample is named under its plots

    page.click('[data-tab="pathways"]')
    page.wait_for_selector("#pw-table .tabulator-row")
    assert page.locator("#pw-contrast").input_value() == "flare_vs_no_flare"  # the first contrast, as DE
    p0 = page.locator("#pw-table .tabulator-cell[tabulator-field='pvalue']").all_inner_texts()
    assert "< 1/1000" in p0, p0
    assert "1000 permutations" in page.locator("#pw-note").inner_text()

    page.click('[data-tab="pca"]')
    page.wait_for_selector("#pca-plot .scatterlayer .point")
    assert "P005_V1 (excluded from DE by QC)" in page.locator("#pca-note").inner_text()

    page.click('[data-tab="provenance"]')
    prov = page.locator("#prov-body").inner_text()
    assert "1.7 MB" in prov and "1.4 kB" in prov and "1407" not in prov, prov
    assert "no residual degrees" not in prov  # the long sensitivity message stays in the log and design.tsv
    assert page.errors == [], page.errors
