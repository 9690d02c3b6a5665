"""The report in a real browser: headless system Chromium driven by Playwright, fully offline."""

from __future__ import annotations

import csv
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import require_tool
from report_fixtures import build_results, require_vendor

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
    from cfrna.report import run_report

    require_vendor()
    out = build_results(tmp_path_factory.mktemp("results"))
    return run_report(out, title="Browser test", anndata=False)


@pytest.fixture()
def page(tmp_path):
    """A fresh Chromium (system binary, own profile) whose every non-file:// request is blocked and recorded."""
    exe = require_tool("chromium")
    require_vendor()
    sync_api = pytest.importorskip("playwright.sync_api")
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
    from cfrna.report import run_report

    out = build_results(tmp_path / "res", with_de=False, with_pathways=False, with_info=False)
    html = run_report(out, anndata=False)
    page.goto(html.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert page.locator('[data-tab="de"]').is_hidden()
    assert page.locator("#no-de").is_visible()
    assert "No differential expression results" in page.locator("#summary-body").inner_text()
    page.click('[data-tab="qc"]')
    page.wait_for_selector("#qc-table .tabulator-row")
    assert page.errors == [], page.errors
