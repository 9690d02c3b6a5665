"""Assemble the self-contained HTML report: template + vendored libraries + own JS/CSS + JSON payload."""

from __future__ import annotations

import html as _html
import json
import logging
import re
from pathlib import Path
from typing import Any

from cfrna import __version__
from cfrna.errors import ToolMissingError

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
TEMPLATES = _HERE / "templates"
VENDOR = _HERE / "_vendor"
#: vendored files (scripts/vendor_js.sh), in load order
VENDOR_JS = ("plotly-basic.min.js", "tabulator.min.js")
VENDOR_CSS = ("tabulator.min.css",)
_SLOT = re.compile(r"\{\{([A-Z_]+)\}\}")


def vendor_dir() -> Path:
    """The folder of vendored browser libraries; a clear error when ``scripts/vendor_js.sh`` never ran."""
    missing = [n for n in (*VENDOR_JS, *VENDOR_CSS) if not (VENDOR / n).is_file()]
    if missing:
        raise ToolMissingError(
            f"report libraries missing ({', '.join(missing)})",
            where=str(VENDOR),
            hint="run scripts/vendor_js.sh (needs npm) or install a cfrna wheel built after it",
        )
    return VENDOR


def _inline_script(text: str) -> str:
    """Make code safe inside ``<script>``: ``</script`` and ``<!--`` cannot end or confuse the element."""
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def payload_json(payload: dict[str, Any]) -> str:
    """Compact JSON safe inside ``<script type="application/json">`` (every ``<`` escaped)."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


#: characters per deferred data block: small blocks let the browser paint between them while parsing
CHUNK = 256 * 1024


def _chunked_blocks(key: str, text: str) -> str:
    """``<script>`` blocks ``key`` (with ``data-parts``), ``key~1``, ``key~2``… whose texts join to ``text``."""
    pieces = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    out = [f'<script type="application/json" id="{key}" data-parts="{len(pieces)}">{pieces[0]}</script>']
    out += [f'<script type="application/json" id="{key}~{k}">{p}</script>' for k, p in enumerate(pieces[1:], 1)]
    return "\n".join(out)


def split_payload(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move the bulky parts not needed for the first view into blocks placed after the page script.

    The first contrast and the small tables stay in ``#cfrna-data``; the other contrasts' arrays
    (``#cfrna-contrast-<k>``) and the gene-card expression (``#cfrna-expr``) follow the scripts, so
    the browser renders the DE tab before it has parsed them (the page reads them on first use).
    """
    main = dict(payload)
    deferred: dict[str, Any] = {}
    contrasts = []
    for k, c in enumerate(payload["contrasts"]):
        if k == 0:
            contrasts.append(c)
            continue
        key = f"cfrna-contrast-{k}"
        head = {n: c[n] for n in ("id", "n", "n_sig", "design", "top") if n in c}
        contrasts.append({**head, "deferred": key})
        deferred[key] = c
    main["contrasts"] = contrasts
    if payload.get("expr") is not None:
        main["expr"] = {"rule": payload["expr"]["rule"], "deferred": "cfrna-expr"}
        deferred["cfrna-expr"] = payload["expr"]
    return main, deferred


def render_html(payload: dict[str, Any]) -> str:
    """Return the complete HTML document for a payload made by :func:`cfrna.report.data.collect`.

    Parameters
    ----------
    payload
        The report data (JSON-serialisable, no NaN: use ``None``).

    Returns
    -------
    str
        One HTML document with every script, style and datum inline.
    """
    vdir = vendor_dir()
    parts = {
        "TITLE": _html.escape(str(payload["meta"]["title"])),
        "VERSION": _html.escape(__version__),
        "VENDOR_CSS": "\n".join((vdir / n).read_text(encoding="utf-8") for n in VENDOR_CSS).replace("</style", "<\\/style"),
        "CSS": (TEMPLATES / "report.css").read_text(encoding="utf-8"),
        "VENDOR_JS": "\n;\n".join(_inline_script((vdir / n).read_text(encoding="utf-8")) for n in VENDOR_JS),
        "JS": _inline_script((TEMPLATES / "report.js").read_text(encoding="utf-8")),
    }
    main, deferred = split_payload(payload)
    parts["DATA"] = payload_json(main)
    parts["DEFERRED"] = "\n".join(_chunked_blocks(key, payload_json(value)) for key, value in deferred.items())
    template = (TEMPLATES / "report.html").read_text(encoding="utf-8")
    # one pass: text substituted into a slot is never scanned again
    return _SLOT.sub(lambda m: parts[m.group(1)], template)
