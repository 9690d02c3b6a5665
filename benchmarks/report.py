"""Benchmark the HTML report at trial scale: build, file size, first render and filter in headless Chromium.

    .venv/bin/python benchmarks/report.py --genes 60000 --samples 900 --contrasts 6 --workdir /tmp/cfrna_bench_report

Steps: (1) write a synthetic results tree (tests/report_fixtures.py) unless it exists; (2) run
``cfrna report`` in a subprocess and record wall time and peak RSS; (3) open the file in the system
Chromium (Playwright, offline, fresh profile) and record first render (navigation start to the DE table
and plots drawn, from ``performance.now()``), a search and a padj/|log2FC| filter (median of 5, each
including the table redraw and the next two animation frames), and the JS heap. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

FILTER_JS = """async ([q, padj, lfc]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const t0 = performance.now();
  const n = window.cfrnaFilter(q, padj, lfc);
  await frame(); await frame();
  return [performance.now() - t0, n];
}"""


def build(workdir: Path, *, genes: int, samples: int, contrasts: int) -> tuple[Path, float]:
    from tests.helpers.report import build_results

    out = workdir / f"results_{genes}x{samples}x{contrasts}"
    if (out / "pipeline_info" / "input_checksums.tsv").is_file():  # written last
        return out, 0.0
    t0 = time.perf_counter()
    build_results(out, n_genes=genes, n_patients=samples // 2, n_visits=2, n_contrasts=contrasts,
                  n_failed=max(1, samples // 50), n_de=max(genes // 30, 10))
    return out, time.perf_counter() - t0


def report(results: Path) -> tuple[Path, float, float]:
    code = ("import sys; from cfrna.report import run_report; "
            "run_report(sys.argv[1], anndata=False)")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(results)], check=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return results / "report" / "index.html", wall, peak_mb


def browse(html: Path, *, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    attempts: list[str] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as prof:
        ctx = pw.chromium.launch_persistent_context(prof, executable_path=chromium, headless=True,
                                                    args=CHROMIUM_ARGS, viewport={"width": 1500, "height": 1000})
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                  else (attempts.append(r.request.url), r.abort()))
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(html.as_uri(), timeout=120_000)
        page.wait_for_selector("body[data-ready='1'][data-plots='1']", timeout=120_000)
        page.wait_for_selector("#de-table .tabulator-row")
        painted_ms = page.evaluate(
            "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
        )
        wall_load = time.perf_counter() - t0
        timing = page.evaluate("window.cfrnaTiming")
        dcl_ms = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
        searches, filters = [], []
        for q in ("GENE12", "IFI27", "ENSG0000000", "GENE5", "HBB"):
            ms, n = page.evaluate(FILTER_JS, [q, 1, 0])
            searches.append(ms)
        for padj in (0.05, 0.01, 0.1, 0.2, 0.001):
            ms, n = page.evaluate(FILTER_JS, ["", padj, 1.0])
            filters.append(ms)
        ms_reset, _ = page.evaluate(FILTER_JS, ["", 1, 0])
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : null")
        ctx.close()
    assert not attempts, attempts
    return {
        "first_render_ms": round(painted_ms),
        "script_start_ms": round(timing["start"]),
        "table_built_ms": round(timing["table"]),
        "plots_drawn_ms": round(timing["plots"]),
        "all_data_parsed_ms": round(dcl_ms),
        "load_wall_s": round(wall_load, 2),
        "search_ms_median": round(statistics.median(searches), 1),
        "filter_ms_median": round(statistics.median(filters), 1),
        "filter_reset_ms": round(ms_reset, 1),
        "js_heap_mb": round(heap / 2**20, 1) if heap else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=60_000)
    ap.add_argument("--samples", type=int, default=900)
    ap.add_argument("--contrasts", type=int, default=6)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cfrna_bench_report")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results, t_build = build(args.workdir, genes=args.genes, samples=args.samples, contrasts=args.contrasts)
    html, t_report, peak = report(results)
    out = {"genes": args.genes, "samples": args.samples, "contrasts": args.contrasts,
           "synthetic_tree_s": round(t_build, 1), "report_build_s": round(t_report, 1),
           "report_build_peak_rss_mb": round(peak), "html_mb": round(html.stat().st_size / 1e6, 2)}
    out.update(browse(html, chromium=args.chromium))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
