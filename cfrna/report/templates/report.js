/* cfrna report — the project's own browser code (MIT). Libraries: Tabulator (tables), Plotly basic (plots).
 * Everything is read from the inline JSON payload (#cfrna-data); nothing is fetched. */
(function () {
  "use strict";
  const T = { start: performance.now() };
  const D = JSON.parse(document.getElementById("cfrna-data").textContent);
  T.parsed = performance.now();
  const $ = (sel, el) => (el || document).querySelector(sel);
  const $$ = (sel, el) => Array.from((el || document).querySelectorAll(sel));
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const COL = { up: "#D55E00", down: "#0072B2", ns: "#9a9a9a", sel: "#000000", flare: "#D55E00", no_flare: "#0072B2", other: "#6a6a6a" };
  const PLOT_CFG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const SIG_PADJ = 0.05;

  function dec(col) {
    if (!col) return null;
    const kind = Object.keys(col)[0];
    const bin = atob(col[kind]);
    const buf = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) buf[i] = bin.charCodeAt(i);
    if (kind === "f32") return new Float32Array(buf.buffer);
    if (kind === "i32") return new Int32Array(buf.buffer);
    if (kind === "i16m") {  // Int16 thousandths, -32768 = NaN
      const q = new Int16Array(buf.buffer), out = new Float64Array(q.length);
      for (let i = 0; i < q.length; i++) out[i] = q[i] === -32768 ? NaN : q[i] / 1000;
      return out;
    }
    if (kind === "nlog10") {  // Float32 of -log10(p)
      const q = new Float32Array(buf.buffer), out = new Float64Array(q.length);
      for (let i = 0; i < q.length; i++) out[i] = Math.pow(10, -q[i]);
      return out;
    }
    return buf;
  }
  function fmt(v, digits) {
    if (v == null || Number.isNaN(v)) return "NA";
    if (typeof v !== "number") return String(v);  // text cells (e.g. strandedness, sex) are shown as they are
    const a = Math.abs(v);
    if (a !== 0 && a <= 1.0000001e-300) return "< 1e-300";  // p-values are stored down to 1e-300
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return (+v.toPrecision(digits || 4)).toString();
  }
  // file sizes in SI units (1 kB = 1000 bytes), as the run log prints them
  function bytes(v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return fmt(v);
    const units = ["bytes", "kB", "MB", "GB", "TB"];
    let k = 0, x = v;
    while (x >= 1000 && k < units.length - 1) { x /= 1000; k++; }
    return (k ? x.toFixed(x < 10 ? 1 : 0) : String(x)) + " " + units[k];
  }
  const isBytes = (c) => c === "bytes" || c.endsWith("_bytes");
  // bulky blocks placed after this script (html.py split_payload): parsed on first use
  function deferred(obj) {
    if (!obj || !obj.deferred) return obj;
    const el = document.getElementById(obj.deferred);
    if (!el) throw new Error("report data block " + obj.deferred + " not loaded yet");
    const parts = [el.textContent];
    for (let k = 1; k < +el.dataset.parts; k++) parts.push(document.getElementById(obj.deferred + "~" + k).textContent);
    return JSON.parse(parts.join(""));
  }
  const whenParsed = (fn) => (document.readyState === "loading" ? document.addEventListener("DOMContentLoaded", fn, { once: true }) : fn());
  const num = (v) => (v == null || Number.isNaN(v) ? null : v);

  // ------------------------------------------------------------------ genes and sample metadata
  const geneId = D.genes.id, geneName = D.genes.name;
  const label = (g) => geneName[g] || geneId[g];
  const byName = new Map();
  for (let g = geneId.length - 1; g >= 0; g--) {
    if (geneName[g]) byName.set(geneName[g].toUpperCase(), g);
    byName.set(geneId[g].toUpperCase(), g);
  }
  const meta = {};
  {
    const cols = D.samples.columns;
    for (const r of D.samples.rows) {
      const o = {};
      cols.forEach((c, k) => (o[c] = r[k]));
      meta[o.sample] = o;
    }
  }
  const groupOf = (s) => (meta[s] && meta[s].flare) || "unknown";
  const PAL = ["#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442", "#000000"];  // Okabe-Ito
  const groupColor = (g, i) => COL[g] || (i == null ? COL.other : PAL[i % PAL.length]);

  // ------------------------------------------------------------------ contrasts (decoded lazily)
  const C = D.contrasts.map((c) => ({ raw: c, id: c.id, n: c.n, nSig: c.n_sig, design: c.design || {}, top: c.top || { up: [], down: [] } }));
  // samples a plot or table leaves out, with the reason (excluded from DE by QC, or absent from its source table)
  const allSamples = D.samples.rows.map((r) => String(r[D.samples.columns.indexOf("sample")]));
  function droppedNote(shown, what) {
    const on = new Set(shown.map(String));
    const miss = allSamples.filter((s) => !on.has(s));
    if (!miss.length) return "";
    const ex = new Set(D.excluded.map(String));
    const a = miss.filter((s) => ex.has(s)), b = miss.filter((s) => !ex.has(s));
    const parts = [];
    if (a.length) parts.push(a.map(esc).join(", ") + " (excluded from DE by QC)");
    if (b.length) parts.push(b.map(esc).join(", ") + " (not in this table)");
    return what + " leaves out " + miss.length + " of " + allSamples.length + " samples: " + parts.join("; ") + ".";
  }
  function signText(k) {
    const d = C[k].design;
    if (d.target == null) return "<strong>log2FC &gt; 0 = higher in the target level</strong> of contrast " + esc(C[k].id) + ".";
    let t = "<strong>log2FC &gt; 0 = higher in " + esc(d.target) + "</strong> than in " + esc(d.reference) + " (" + esc(d.variable) + "; " + esc(d.n_target) + " vs " + esc(d.n_reference) + " samples";
    if (d.formula) t += ", design " + esc(d.formula);
    if (d.excluded && d.excluded.length) t += "; excluded by QC: " + d.excluded.map(esc).join(", ");
    return t + ").";
  }
  // pathway tables in contrast order (as the DE tab), then any other
  const pwIds = C.map((c) => c.id).filter((id) => D.pathways[id]).concat(Object.keys(D.pathways).filter((id) => !C.some((c) => c.id === id)));
  function topPathways(cid, n) {
    const t = D.pathways[cid];
    if (!t) return [];
    const ix = (c) => t.columns.indexOf(c);
    const gs = ix("gene_set"), nes = ix("nes"), fdr = ix("fdr");
    const key = (r) => (r[fdr] == null ? Infinity : r[fdr]);
    return t.rows.slice().sort((a, b) => key(a) - key(b) || Math.abs(b[nes] || 0) - Math.abs(a[nes] || 0)).slice(0, n)
      .map((r) => ({ name: r[gs], nes: r[nes], fdr: r[fdr] }));
  }
  const pvalFmt = (cell) => {
    const v = cell.getValue(), n = D.meta.gsea_permutations;
    return v === 0 && n ? "< 1/" + n : fmt(v);
  };
  function contrast(k) {
    const c = C[k];
    if (!c.g) {
      c.raw = deferred(c.raw);
      c.g = c.raw.g ? dec(c.raw.g) : Int32Array.from({ length: c.n }, (_, i) => i);
      c.bm = dec(c.raw.baseMean); c.lfc = dec(c.raw.lfc);
      c.lfcs = dec(c.raw.lfc_shrunk); c.padj = dec(c.raw.padj); c.plot = dec(c.raw.plot);
      // table order: padj ascending, NaN last, then gene order
      const key = Float64Array.from(c.padj, (p) => (Number.isNaN(p) ? Infinity : p));
      c.order = Int32Array.from({ length: c.n }, (_, i) => i).sort((a, b) => key[a] - key[b] || a - b);
      c.rowOfGene = new Map();
      for (let i = 0; i < c.g.length; i++) c.rowOfGene.set(c.g[i], i);
    }
    return c;
  }
  let expr = null;
  function exprData() {
    if (!D.expr) return null;
    if (!expr) {
      const X = deferred(D.expr);
      const g = dec(X.g);
      const rowOf = new Map();
      for (let k = 0; k < g.length; k++) rowOf.set(g[k], k);
      expr = { samples: X.samples, values: dec(X.values), rowOf: rowOf, scale: X.scale };
    }
    return expr;
  }

  // ------------------------------------------------------------------ tabs
  const inited = {};
  const initers = {};
  function showTab(name) {
    for (const b of $$('[role="tab"]')) {
      const on = b.dataset.tab === name;
      b.setAttribute("aria-selected", on ? "true" : "false");
      b.tabIndex = on ? 0 : -1;
    }
    for (const p of $$('[role="tabpanel"]')) p.hidden = p.id !== "panel-" + name;
    if (!inited[name] && initers[name]) { inited[name] = true; initers[name](); return; }
    // plots and tables drawn while their tab was hidden need their size recomputed
    for (const el of $$("#panel-" + name + " .js-plotly-plot")) Plotly.Plots.resize(el);
    if (name === "de" && deTable) deTable.redraw();
  }
  $("#tabs").addEventListener("click", (e) => { const b = e.target.closest('[role="tab"]'); if (b) showTab(b.dataset.tab); });
  $("#tabs").addEventListener("keydown", (e) => {
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    const tabs = $$('[role="tab"]').filter((b) => !b.hidden);
    const k = tabs.indexOf(document.activeElement);
    if (k < 0) return;
    const next = tabs[(k + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus(); showTab(next.dataset.tab);
  });

  function htmlTable(t, opts) {
    if (!t || !t.rows) return "<p>Not available.</p>";
    const o = opts || {};
    let h = '<table class="plain"' + (o.caption ? "" : "") + ">";
    if (o.caption) h += "<caption>" + esc(o.caption) + "</caption>";
    h += "<thead><tr>" + t.columns.map((c) => '<th scope="col">' + esc(c) + "</th>").join("") + "</tr></thead><tbody>";
    const big = t.columns.map(isBytes);
    for (const r of t.rows) h += "<tr>" + r.map((v, k) => "<td>" + esc(big[k] ? bytes(v) : typeof v === "number" ? fmt(v) : v) + "</td>").join("") + "</tr>";
    return h + "</tbody></table>";
  }

  // ------------------------------------------------------------------ summary
  initers.summary = function () {
    const m = D.meta;
    const st = { pass: 0, warn: 0, fail: 0 };
    const si = D.qc.columns.indexOf("status");
    for (const r of D.qc.rows) st[r[si]] = (st[r[si]] || 0) + 1;
    let h = "<dl class=\"facts\"><dt>Samples</dt><dd>" + m.n_samples + " (QC: " + st.pass + " pass, " + st.warn + " warn, " + st.fail + " fail; " + D.excluded.length + " excluded from DE)</dd>";
    h += "<dt>Genes</dt><dd>" + m.n_genes + "</dd><dt>Contrasts</dt><dd>" + (C.length ? C.map((c) => esc(c.id) + " (" + c.nSig + " genes padj&nbsp;&lt;&nbsp;0.05)").join(", ") : "none") + "</dd>";
    h += "<dt>cfrna</dt><dd>" + esc(m.version) + ", report generated " + esc(m.generated) + "</dd></dl>";
    if (C.length) {
      h += '<h3>Top results per contrast</h3><table class="plain" id="summary-top"><caption>Five genes of smallest padj in each direction (hover for log2FC and padj; click for the gene card) and the three gene sets of smallest FDR</caption>';
      h += '<thead><tr><th scope="col">Contrast</th><th scope="col">Comparison</th><th scope="col">Genes padj&nbsp;&lt;&nbsp;0.05</th><th scope="col">Top genes higher in target</th><th scope="col">Top genes lower in target</th><th scope="col">Top pathways (NES, FDR)</th></tr></thead><tbody>';
      C.forEach((c, k) => {
        const d = c.design;
        const cmp = d.target != null ? esc(d.target) + " (n=" + esc(d.n_target) + ") vs " + esc(d.reference) + " (n=" + esc(d.n_reference) + ")" : "";
        const genes = (list) => list.map(([g, l, p]) => '<a href="#" class="gene-link" data-k="' + k + '" data-g="' + g + '" title="log2FC ' + fmt(l) + ", padj " + fmt(p) + '">' + esc(label(g)) + "</a>").join(" ") || "none";
        const pw = topPathways(c.id, 3).map((x) => esc(x.name) + " (" + fmt(x.nes) + ", " + fmt(x.fdr) + ")").join("; ") || (D.pathways[c.id] ? "none" : "not run");
        h += "<tr><td>" + esc(c.id) + "</td><td>" + cmp + "</td><td>" + c.nSig + "</td><td>" + genes(c.top.up) + "</td><td>" + genes(c.top.down) + "</td><td>" + pw + "</td></tr>";
      });
      h += "</tbody></table>";
    }
    if (D.notes.length) h += '<h3>What is not in this report</h3><ul class="notes">' + D.notes.map((n) => "<li>" + esc(n) + "</li>").join("") + "</ul>";
    $("#summary-body").innerHTML = h;
    $("#summary-body").addEventListener("click", (e) => {
      const a = e.target.closest("a.gene-link");
      if (!a) return;
      e.preventDefault();
      showTab("de");
      if (+a.dataset.k !== deK) setContrast(+a.dataset.k);
      selectGene(+a.dataset.g, {});
    });
  };

  // ------------------------------------------------------------------ DE tab
  let deTable = null, deK = 0, selGene = null, deRowsCache = {};
  const deState = { q: "", padj: 1, lfc: 0 };
  function deRows(k) {
    if (deRowsCache[k]) return deRowsCache[k];
    const c = contrast(k);
    const rows = new Array(c.n);
    for (let r = 0; r < c.n; r++) {
      const i = c.order[r], g = c.g[i];
      rows[r] = { i: i, g: g, name: geneName[g] || "", id: geneId[g], bm: num(c.bm[i]), lfc: num(c.lfc[i]), lfcs: num(c.lfcs[i]), padj: num(c.padj[i]),
        key: ((geneName[g] || "") + " " + geneId[g]).toUpperCase() };
    }
    deRowsCache = {}; deRowsCache[k] = rows;
    return rows;
  }
  function deFilter(row) {
    if (deState.q && row.key.indexOf(deState.q) < 0) return false;
    if (deState.padj < 1 && !(row.padj != null && row.padj <= deState.padj)) return false;
    if (deState.lfc > 0 && !(row.lfc != null && Math.abs(row.lfc) >= deState.lfc)) return false;
    return true;
  }
  const dl = (digits) => (cell) => { const v = cell; return v == null ? "NA" : +(+v).toPrecision(digits); };
  const numFmt = (cell) => fmt(cell.getValue());
  let filterOn = false;
  function applyDeFilter() {
    if (!deTable) return;
    const want = Boolean(deState.q || deState.padj < 1 || deState.lfc > 0);
    if (want) deTable.setFilter(deFilter);
    else if (filterOn) deTable.clearFilter();
    filterOn = want;
    if (!want) setTimeout(updateCount, 0);
  }
  function updateCount() {
    if (!deTable) return;
    const n = deTable.getDataCount("active");
    $("#de-count").textContent = n + " of " + C[deK].n + " genes shown";
  }
  function buildDeTable() {
    const rows = deRows(deK);
    T.rows = performance.now();
    deTable = new Tabulator("#de-table", {
      data: rows, index: "i", height: "440px", layout: "fitColumns",
      rowFormatter: (row) => { const on = row.getData().g === selGene; row.getElement().classList.toggle("sel", on); row.getElement().setAttribute("aria-selected", on ? "true" : "false"); },
      placeholder: "No gene passes the filters",
      columns: [
        { title: "Gene", field: "name", headerTooltip: "Gene symbol (from the GTF gene_name)", titleDownload: "gene_name", minWidth: 90 },
        { title: "Gene ID", field: "id", headerTooltip: "Gene identifier (GTF gene_id)", titleDownload: "gene_id", minWidth: 140 },
        { title: "baseMean", field: "bm", sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: numFmt, accessorDownload: dl(6), titleDownload: "baseMean",
          headerTooltip: "Mean of size-factor-normalized counts over the samples in the contrast (normalized reads)" },
        { title: "log2FC", field: "lfc", sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: numFmt, accessorDownload: dl(6), titleDownload: "log2FoldChange",
          headerTooltip: "log2 fold change target vs reference (DESeq2 MLE; > 0 = higher in target, 1 = two-fold higher)" },
        { title: "log2FC (shrunk)", field: "lfcs", sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: numFmt, accessorDownload: dl(6), titleDownload: "log2FoldChange_shrunk",
          headerTooltip: "Shrunken log2 fold change (noise-moderated; use for ranking and effect size)" },
        { title: "padj", field: "padj", sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: numFmt, accessorDownload: dl(6), titleDownload: "padj",
          headerTooltip: "Benjamini-Hochberg adjusted Wald-test p-value (false discovery rate); NA = filtered by DESeq2 (outlier or low counts)" },
      ],
    });
    deTable.on("tableBuilt", () => { applyDeFilter(); updateCount(); });
    deTable.on("dataFiltered", () => setTimeout(updateCount, 0));
    // row clicks via delegation (independent of the library's event plumbing)
    $("#de-table").addEventListener("click", (e) => {
      const el = e.target.closest(".tabulator-row");
      if (!el) return;
      const row = deTable.getRows("active").find((r) => r.getElement() === el);
      if (!row) return;
      selectGene(row.getData().g, { from: "table" });
    });
  }
  function sigClass(c, i) {
    const p = c.padj[i];
    if (!(p < SIG_PADJ)) return "ns";
    return c.lfc[i] > 0 ? "up" : c.lfc[i] < 0 ? "down" : "ns";
  }
  function hoverText(c, i) {
    const g = c.g[i];
    return "<b>" + esc(label(g)) + "</b> " + esc(geneId[g]) + "<br>log2FC " + fmt(c.lfc[i]) + ", padj " + fmt(c.padj[i]) + "<br>baseMean " + fmt(c.bm[i]);
  }
  function drawPlots() {
    const c = contrast(deK);
    const parts = { up: [], down: [], ns: [] };
    for (const i of c.plot) parts[sigClass(c, i)].push(i);
    const tgt = c.design.target != null ? " in " + esc(c.design.target) : "";
    const names = { up: "up" + tgt + " (padj < " + SIG_PADJ + ")", down: "down" + tgt + " (padj < " + SIG_PADJ + ")", ns: "not significant" };
    const mk = (key, xf, yf) => {
      const ix = parts[key];
      return { type: "scatter", mode: "markers", name: names[key] + " (" + ix.length + " drawn)", x: ix.map(xf), y: ix.map(yf), customdata: ix,
        text: ix.map((i) => hoverText(c, i)), hoverinfo: "text", marker: { color: COL[key], size: key === "ns" ? 4 : 6, opacity: key === "ns" ? 0.5 : 0.85 } };
    };
    const nlp = (i) => { const p = c.padj[i]; return Number.isNaN(p) ? 0 : -Math.log10(Math.max(p, 1e-300)); };
    const lfc = (i) => c.lfc[i];
    const bm = (i) => Math.max(c.bm[i], 0.1);
    const sel = () => ({ type: "scatter", mode: "markers+text", name: "selected", x: [], y: [], customdata: [], text: [], textposition: "top center", hoverinfo: "skip",
      marker: { color: "rgba(0,0,0,0)", size: 14, line: { color: COL.sel, width: 2.5 } } });
    const lay = (xt, yt, xtype) => ({ margin: { l: 55, r: 10, t: 30, b: 45 }, hovermode: "closest", legend: { orientation: "h", y: -0.3, yanchor: "top" }, uirevision: "k" + deK,
      xaxis: { title: { text: xt }, type: xtype || "linear", zeroline: true }, yaxis: { title: { text: yt } } });
    const vt = ["ns", "down", "up"].map((k) => mk(k, lfc, nlp)).concat([sel()]);
    const mt = ["ns", "down", "up"].map((k) => mk(k, bm, lfc)).concat([sel()]);
    Plotly.react("volcano", vt, Object.assign(lay("log2 fold change", "−log10 padj"), { title: { text: "Volcano: " + c.id, font: { size: 14 } } }), PLOT_CFG);
    Plotly.react("ma", mt, Object.assign(lay("baseMean (normalized reads, log scale)", "log2 fold change", "log"), { title: { text: "MA: " + c.id, font: { size: 14 } } }), PLOT_CFG);
    for (const id of ["volcano", "ma"]) {
      const el = document.getElementById(id);
      if (!el._cfrnaBound) {
        el._cfrnaBound = true;
        el.on("plotly_click", (ev) => { const pt = ev.points && ev.points[0]; if (pt && pt.customdata != null && pt.curveNumber < 3) selectGene(contrast(deK).g[pt.customdata], { from: "plot" }); });
      }
    }
    $("#plot-note").textContent = c.plot.length + " of " + c.n + " genes drawn: every gene with padj < 0.1 (the 2,500 most significant at most) plus one gene per occupied grid cell of the background; the table holds all genes.";
    markSelected();
  }
  function markSelected() {
    if (selGene == null || !document.getElementById("volcano").data) return;
    const c = contrast(deK);
    const i = c.rowOfGene.get(selGene);
    const has = i != null;
    const p = has ? c.padj[i] : NaN;
    Plotly.restyle("volcano", { x: [has ? [c.lfc[i]] : []], y: [has ? [Number.isNaN(p) ? 0 : -Math.log10(Math.max(p, 1e-300))] : []], text: [has ? [label(selGene)] : []] }, [3]);
    Plotly.restyle("ma", { x: [has ? [Math.max(c.bm[i], 0.1)] : []], y: [has ? [c.lfc[i]] : []], text: [has ? [label(selGene)] : []] }, [3]);
  }
  function setContrast(k) {
    if (document.readyState === "loading") { whenParsed(() => setContrast(k)); return; }
    deK = k;
    $("#de-contrast").value = String(k);
    $("#de-sign").innerHTML = signText(k);
    if (deTable) { deTable.replaceData(deRows(k)).then(() => { applyDeFilter(); updateCount(); }); }
    drawPlots();
    if (selGene != null) geneCard(selGene);
  }
  initers.de = function () {
    const sel = $("#de-contrast");
    sel.innerHTML = C.map((c, k) => '<option value="' + k + '">' + esc(c.id) + " (" + c.n + " genes)</option>").join("");
    sel.addEventListener("change", () => setContrast(+sel.value));
    $("#de-sign").innerHTML = signText(deK);
    let timer = null;
    const onInput = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        deState.q = $("#de-search").value.trim().toUpperCase();
        const p = parseFloat($("#de-padj").value); deState.padj = Number.isFinite(p) && p > 0 ? Math.min(p, 1) : 1;
        const l = parseFloat($("#de-lfc").value); deState.lfc = Number.isFinite(l) && l > 0 ? l : 0;
        applyDeFilter();
      }, 120);
    };
    for (const id of ["#de-search", "#de-padj", "#de-lfc"]) $(id).addEventListener("input", onInput);
    $("#de-export").addEventListener("click", () => {
      deTable.download("csv", "cfrna_" + C[deK].id + "_filtered.csv", {}, "active");
    });
    // keyboard navigation of the table: arrows move the selection, Enter opens the gene card
    const host = $("#de-table");
    host.tabIndex = 0;
    host.addEventListener("keydown", (e) => {
      if (!["ArrowDown", "ArrowUp", "Home", "End", "Enter", "PageDown", "PageUp"].includes(e.key)) return;
      const rows = deTable.getRows("active");
      if (!rows.length) return;
      e.preventDefault();
      let pos = selGene == null ? -1 : rows.findIndex((r) => r.getData().g === selGene);
      const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 }[e.key];
      if (step) pos = Math.max(0, Math.min(rows.length - 1, pos + step));
      else if (e.key === "Home") pos = 0;
      else if (e.key === "End") pos = rows.length - 1;
      else if (pos < 0) pos = 0;
      const row = rows[pos];
      deTable.scrollToRow(row, "nearest", false).catch(() => {});
      selectGene(row.getData().g, { from: "keyboard" });
    });
    buildDeTable();
    T.table = performance.now();
    // plots after the table's first paint, so the table is usable at once
    requestAnimationFrame(() => setTimeout(() => { drawPlots(); T.plots = performance.now(); document.body.dataset.plots = "1"; }, 0));
  };

  function selectGene(g, opts) {
    if (document.readyState === "loading") { whenParsed(() => selectGene(g, opts)); return; }
    const prev = selGene;
    selGene = g;
    const from = (opts && opts.from) || "";
    if (deTable) {
      const c = contrast(deK);
      for (const gg of [prev, g]) {
        const i = gg == null ? undefined : c.rowOfGene.get(gg);
        const row = i == null ? false : deTable.getRow(i);
        if (row) row.reformat();
      }
      const i = c.rowOfGene.get(g);
      const row = i == null ? false : deTable.getRow(i);
      if (row && from !== "table" && from !== "keyboard" && deTable.getRows("active").indexOf(row) >= 0) {
        deTable.scrollToRow(row, "center", false).catch(() => {});
      }
    }
    markSelected();
    geneCard(g);
  }
  window.cfrnaSelectGene = (q) => { const g = byName.get(String(q).toUpperCase()); if (g != null) selectGene(g, {}); return g != null; };

  function geneCard(g) {
    const card = $("#gene-card");
    card.hidden = false;
    let h = "<h3>" + esc(label(g)) + ' <span class="muted">' + esc(geneId[g]) + "</span></h3>";
    h += '<table class="plain"><caption>Differential expression of this gene in each contrast</caption><thead><tr><th scope="col">contrast</th><th scope="col" title="mean normalized count">baseMean</th><th scope="col" title="log2 fold change target vs reference">log2FC</th><th scope="col" title="shrunken log2 fold change">log2FC (shrunk)</th><th scope="col" title="BH-adjusted p-value">padj</th></tr></thead><tbody>';
    C.forEach((c0, k) => {
      const c = contrast(k);
      const i = c.rowOfGene.get(g);
      h += "<tr><td>" + esc(c.id) + "</td>" + (i == null ? '<td colspan="4">not tested</td>' : "<td>" + fmt(c.bm[i]) + "</td><td>" + fmt(c.lfc[i]) + "</td><td>" + fmt(c.lfcs[i]) + "</td><td>" + fmt(c.padj[i]) + "</td>") + "</tr>";
    });
    h += "</tbody></table>";
    const E = exprData();
    const k = E ? E.rowOf.get(g) : undefined;
    if (k == null) {
      h += '<p class="muted">Per-sample expression is not embedded for this gene' + (D.expr ? " (embedded: " + esc(D.expr.rule) + ")" : "") + "; see de/normalized_counts.tsv or matrix/cfrna.h5ad.</p>";
      card.innerHTML = h;
      return;
    }
    h += '<div class="cardplots"><div id="gc-group" class="plot small" role="img" aria-label="normalized expression by flare group"></div><div id="gc-visit" class="plot small" role="img" aria-label="normalized expression per patient over visits"></div></div>';
    h += '<p class="muted">Expression: log2(normalized count + 1), quantized to 0.1 (normalized count = reads / DESeq2 size factor). ' + droppedNote(E.samples, "These plots") + "</p>";
    card.innerHTML = h;
    const ns = E.samples.length;
    const y = E.samples.map((s, j) => E.values[k * ns + j] / E.scale);
    const groups = Array.from(new Set(E.samples.map(groupOf))).sort();
    const jit = (j) => ((j * 2654435761) % 1000) / 1000 * 0.5 - 0.25;
    const gt = groups.map((grp, gi) => {
      const js = E.samples.map((s, j) => j).filter((j) => groupOf(E.samples[j]) === grp);
      return { type: "scatter", mode: "markers", name: grp, x: js.map((j) => gi + jit(j)), y: js.map((j) => y[j]), text: js.map((j) => esc(E.samples[j]) + ": " + y[j].toFixed(1)),
        hoverinfo: "text", marker: { color: groupColor(grp), size: 7, opacity: 0.8 } };
    });
    Plotly.newPlot("gc-group", gt, { margin: { l: 50, r: 10, t: 30, b: 40 }, showlegend: false, title: { text: "By flare group", font: { size: 13 } },
      xaxis: { tickvals: groups.map((g0, i) => i), ticktext: groups, range: [-0.6, groups.length - 0.4], zeroline: false }, yaxis: { title: { text: "log2(norm + 1)" } } }, PLOT_CFG);
    // per patient over visits: grey lines join a patient's visits (gaps between patients);
    // markers are coloured by each visit's own flare status (flare is a per-visit label)
    const byPat = {};
    E.samples.forEach((s, j) => { const m = meta[s] || {}; const p = m.patient_id || s; (byPat[p] = byPat[p] || []).push(j); });
    const line = { type: "scatter", mode: "lines", name: "patient", x: [], y: [], hoverinfo: "skip", connectgaps: false, showlegend: false, line: { color: "#8c8c8c", width: 1 } };
    const marks = {};
    for (const p of Object.keys(byPat)) {
      const js = byPat[p].filter((j) => meta[E.samples[j]] && meta[E.samples[j]].visit_month != null).sort((a, b) => meta[E.samples[a]].visit_month - meta[E.samples[b]].visit_month);
      if (!js.length) continue;
      for (const j of js) {
        const s = E.samples[j], vm = meta[s].visit_month, grp = groupOf(s);
        line.x.push(vm); line.y.push(y[j]);
        const t = (marks[grp] = marks[grp] || { type: "scatter", mode: "markers", name: grp, x: [], y: [], text: [], hoverinfo: "text", marker: { color: groupColor(grp), size: 6 } });
        t.x.push(vm); t.y.push(y[j]); t.text.push(esc(p) + " (" + esc(s) + ") month " + esc(vm) + ": " + y[j].toFixed(1));
      }
      line.x.push(null); line.y.push(null);
    }
    Plotly.newPlot("gc-visit", [line].concat(Object.values(marks)), { margin: { l: 50, r: 10, t: 30, b: 70 }, title: { text: "Per patient over visits", font: { size: 13 } },
      legend: { orientation: "h", y: -0.4 }, xaxis: { title: { text: "visit (months)" } }, yaxis: { title: { text: "log2(norm + 1)" } } }, PLOT_CFG);
  }

  // ------------------------------------------------------------------ pathways
  let pwTable = null;
  function pwData(cid) {
    const t = D.pathways[cid];
    return t.rows.map((r) => { const o = {}; t.columns.forEach((c, k) => (o[c] = r[k])); return o; });
  }
  initers.pathways = function () {
    const ids = pwIds;
    const sel = $("#pw-contrast");
    sel.innerHTML = ids.map((c) => '<option value="' + esc(c) + '">' + esc(c) + "</option>").join("");
    const tip = { gene_set: "Gene set name", source: "Gene-set collection (GMT file)", size: "Genes of the set found among tested genes", es: "GSEA enrichment score",
      nes: "Normalized enrichment score (positive: up in target)", pvalue: "Permutation p-value (0 permutations as extreme reads < 1/permutations)", fdr: "False discovery rate (GSEA q-value)",
      leading_edge: "Leading-edge genes driving the enrichment; click a gene for its card" };
    const cols = D.pathways[ids[0]].columns.map((c) => {
      const o = { title: c, field: c, headerTooltip: tip[c] || c };
      if (["size", "es", "nes", "pvalue", "fdr"].includes(c)) Object.assign(o, { sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: c === "pvalue" ? pvalFmt : numFmt, width: 90 });
      if (c === "leading_edge") Object.assign(o, { formatter: (cell) => String(cell.getValue() || "").split(";").filter(Boolean)
        .map((s) => '<a href="#" class="gene-link" data-gene="' + esc(s) + '">' + esc(s) + "</a>").join(" "), formatterParams: {}, widthGrow: 3, variableHeight: true });
      return o;
    });
    if (D.meta.gsea_permutations) $("#pw-note").textContent = "GSEA prerank with " + D.meta.gsea_permutations + " permutations: a p-value of 0 (no permutation as extreme) reads < 1/" + D.meta.gsea_permutations + ".";
    pwTable = new Tabulator("#pw-table", { data: pwData(ids[0]), height: "480px", layout: "fitColumns", columns: cols, initialSort: [{ column: "fdr", dir: "asc" }] });
    sel.addEventListener("change", () => pwTable.replaceData(pwData(sel.value)));
    $("#pw-table").addEventListener("click", (e) => {
      const a = e.target.closest("a.gene-link");
      if (!a) return;
      e.preventDefault();
      const g = byName.get(a.dataset.gene.toUpperCase());
      if (g == null) { a.title = "gene not in the count matrix"; return; }
      const pc = C.findIndex((c) => c.id === sel.value);
      showTab("de");
      if (pc >= 0 && pc !== deK) setContrast(pc);
      selectGene(g, {});
      $("#gene-card").scrollIntoView({ block: "nearest" });
    });
  };

  // ------------------------------------------------------------------ signatures
  initers.signatures = function () {
    const S = D.signatures;
    $("#sig-assoc").innerHTML = S.association ? htmlTable(S.association, { caption: "Association of signature scores with the design variables" }) : "<p>No signature association table.</p>";
    if (!S.scores) { $("#sig-plot").innerHTML = "<p>No signature scores (pathways/signature_scores.tsv).</p>"; return; }
    const cols = S.scores.columns.slice(1);
    const sel = $("#sig-select");
    sel.innerHTML = cols.map((c, k) => '<option value="' + (k + 1) + '">' + esc(c) + "</option>").join("");
    const by = $("#sig-group");
    const cats = ["flare", "arm", "qc_status", "batch", "visit_month"].filter((c) => D.samples.columns.includes(c));
    by.innerHTML = cats.map((c) => '<option value="' + esc(c) + '">' + esc(c) + "</option>").join("");
    const groupBy = (s) => { const m = meta[s]; const v = m && by.value ? m[by.value] : null; return v == null || v === "" ? "unknown" : String(v); };
    const draw = () => {
      const k = +sel.value;
      const rows = S.scores.rows;
      const groupOf = groupBy;
      const groups = Array.from(new Set(rows.map((r) => groupOf(r[0])))).sort();
      const jit = (j) => ((j * 2654435761) % 1000) / 1000 * 0.5 - 0.25;
      const tr = groups.map((grp, gi) => {
        const rs = rows.map((r, j) => [r, j]).filter(([r]) => groupOf(r[0]) === grp);
        return { type: "scatter", mode: "markers", name: grp, x: rs.map(([, j]) => gi + jit(j)), y: rs.map(([r]) => r[k]), text: rs.map(([r]) => esc(r[0]) + ": " + fmt(r[k])),
          hoverinfo: "text", marker: { color: groupColor(grp, gi), size: 8, opacity: 0.8 } };
      });
      Plotly.react("sig-plot", tr, { margin: { l: 55, r: 10, t: 30, b: 40 }, title: { text: cols[k - 1] + " score by " + (by.value || "group"), font: { size: 14 } }, showlegend: false,
        xaxis: { tickvals: groups.map((g0, i) => i), ticktext: groups, range: [-0.6, groups.length - 0.4], zeroline: false }, yaxis: { title: { text: "signature score" } } }, PLOT_CFG);
    };
    sel.addEventListener("change", draw);
    by.addEventListener("change", draw);
    draw();
    $("#sig-note").innerHTML = droppedNote(S.scores.rows.map((r) => r[0]), "This plot");
  };

  // ------------------------------------------------------------------ QC passport
  initers.qc = function () {
    const q = D.qc;
    const ex = D.excluded;
    $("#qc-excluded").innerHTML = ex.length ? "<strong>Excluded from DE (" + ex.length + "):</strong> " + ex.map(esc).join(", ") : "No sample was excluded.";
    const rows = q.rows.map((r) => { const o = {}; q.columns.forEach((c, k) => (o[c] = r[k])); return o; });
    const badge = (cell) => { const v = cell.getValue(); return v == null ? "" : '<span class="badge ' + esc(v) + '">' + esc(v) + "</span>"; };
    // a column is numeric only when every non-empty value is a number (strandedness_*, gdna_method, sex_* hold text)
    const numeric = q.columns.map((c, k) => q.rows.every((r) => r[k] == null || typeof r[k] === "number"));
    const cols = q.columns.map((c, k) => {
      const o = { title: c, field: c, headerTooltip: c };
      if (c === "status" || c.endsWith("_status")) Object.assign(o, { formatter: badge, headerTooltip: c === "status" ? "Worst status over all QC rules: pass, warn or fail" : "Status of this metric's rule" });
      else if (c === "reasons") Object.assign(o, { widthGrow: 3, maxWidth: 420, tooltip: true, headerTooltip: "Rules that fired (threshold and whether literature default or cohort outlier)" });
      else if (c === "excluded") o.headerTooltip = "Excluded from DE (status fail and --keep-failed not set)";
      else if (c !== "sample" && numeric[k]) Object.assign(o, { sorter: "number", sorterParams: { alignEmptyValues: "bottom" }, hozAlign: "right", formatter: numFmt });
      if (c === "sample") o.frozen = true;
      return o;
    });
    new Tabulator("#qc-table", { data: rows, height: "480px", layout: "fitDataStretch", columns: cols });
    drawComplexity();
  };

  // library-complexity curves (qc/complexity_curves.tsv, present when counting deduplicated)
  function drawComplexity() {
    const C = D.complexity;
    const box = $("#qc-complexity-box");
    if (!C || !C.rows.length) { box.hidden = true; return; }
    box.hidden = false;
    const ci = (n) => C.columns.indexOf(n);
    const [is, ix, iy, ik] = ["sample", "fragments", "unique", "kind"].map(ci);
    const by = {};
    for (const r of C.rows) (by[r[is]] = by[r[is]] || []).push(r);
    const tr = [];
    Object.keys(by).forEach((s, k) => {
      const rs = by[s];
      const col = PAL[k % PAL.length];
      const inner = rs.filter((r) => r[ik] !== "extrapolated");
      const outer = rs.filter((r) => r[ik] !== "interpolated");
      tr.push({ type: "scatter", mode: "lines", name: s, legendgroup: s, x: inner.map((r) => r[ix]), y: inner.map((r) => r[iy]),
        line: { color: col }, hovertemplate: esc(s) + ": %{y:,.0f} unique of %{x:,.0f}<extra></extra>" });
      tr.push({ type: "scatter", mode: "lines", name: s + " (2x extrapolated)", legendgroup: s, showlegend: false,
        x: outer.map((r) => r[ix]), y: outer.map((r) => r[iy]), line: { color: col, dash: "dot" },
        hovertemplate: esc(s) + " extrapolated: %{y:,.0f} unique at %{x:,.0f}<extra></extra>" });
    });
    Plotly.newPlot("qc-complexity", tr, { margin: { l: 65, r: 10, t: 30, b: 45 }, hovermode: "closest",
      title: { text: "Library complexity: unique vs sequenced fragments", font: { size: 14 } },
      xaxis: { title: { text: "fragments sequenced" }, rangemode: "tozero" }, yaxis: { title: { text: "unique fragments" }, rangemode: "tozero" } }, PLOT_CFG);
  }

  // ------------------------------------------------------------------ PCA
  initers.pca = function () {
    const P = D.pca;
    if (!P) { $("#pca-plot").innerHTML = "<p>PCA not available (needs de/vst.tsv with at least 3 samples).</p>"; return; }
    const groups = Array.from(new Set(P.samples.map(groupOf))).sort();
    const tr = groups.map((grp) => {
      const js = P.samples.map((s, j) => j).filter((j) => groupOf(P.samples[j]) === grp);
      return { type: "scatter", mode: "markers", name: grp, x: js.map((j) => P.pc1[j]), y: js.map((j) => P.pc2[j]),
        text: js.map((j) => { const m = meta[P.samples[j]] || {}; return esc(P.samples[j]) + (m.patient_id ? " (" + esc(m.patient_id) + ", month " + esc(m.visit_month) + ")" : ""); }),
        hoverinfo: "text", marker: { color: groupColor(grp), size: 9, opacity: 0.85 } };
    });
    $("#pca-note").innerHTML = droppedNote(P.samples, "The PCA (of de/vst.tsv)");
    Plotly.newPlot("pca-plot", tr, { margin: { l: 55, r: 10, t: 30, b: 45 }, title: { text: "PCA of vst, top " + P.n_genes + " most variable genes", font: { size: 14 } },
      xaxis: { title: { text: "PC1 (" + (100 * P.explained[0]).toFixed(1) + "% of variance)" } }, yaxis: { title: { text: "PC2 (" + (100 * P.explained[1]).toFixed(1) + "% of variance)" } } }, PLOT_CFG);
  };

  // ------------------------------------------------------------------ provenance
  initers.provenance = function () {
    const P = D.provenance;
    let h = "<dl class=\"facts\"><dt>cfrna version</dt><dd>" + esc(D.meta.version) + "</dd><dt>Report generated</dt><dd>" + esc(D.meta.generated) + "</dd></dl>";
    h += "<h3>Parameters</h3>" + (P.params ? "<pre>" + esc(JSON.stringify(P.params, null, 2)) + "</pre>" : "<p>Not recorded (pipeline_info/params.json absent).</p>");
    h += "<h3>Software versions</h3>" + (P.software_versions_text ? "<pre>" + esc(P.software_versions_text) + "</pre>" : "<p>Not recorded (pipeline_info/software_versions.yml absent).</p>");
    h += "<h3>Input checksums</h3>" + (P.checksums ? htmlTable(P.checksums) : "<p>Not recorded (pipeline_info/input_checksums.tsv absent).</p>");
    if (D.design) h += "<h3>DE design</h3>" + htmlTable(D.design);
    $("#prov-body").innerHTML = h;
  };

  // ------------------------------------------------------------------ start
  if (!C.length) { for (const t of ["de"]) $('[data-tab="' + t + '"]').hidden = true; }
  if (!Object.keys(D.pathways).length) $('[data-tab="pathways"]').hidden = true;
  $("#no-de").hidden = C.length > 0;
  showTab(C.length ? "de" : "summary");
  initers.summary(); inited.summary = true;
  // hooks for tests and benchmarks/report.py (no effect on the page)
  window.cfrnaFilter = (q, padj, lfc) => {
    deState.q = String(q || "").toUpperCase(); deState.padj = padj == null ? 1 : padj; deState.lfc = lfc || 0;
    applyDeFilter();
    return deTable ? deTable.getDataCount("active") : 0;
  };
  T.ready = performance.now();
  window.cfrnaTiming = T;
  document.body.dataset.ready = "1";
})();
