#!/usr/bin/env bash
# Vendor the browser libraries inlined into the cfrna HTML report.
#
#   scripts/vendor_js.sh            # npm ci (exact versions of cfrna/report/js/package-lock.json)
#
# Copies the distributed files (and their licenses) into cfrna/report/_vendor/. That folder is
# committed (so pip, the Dockerfile and environment.yml build without npm) and shipped inside the
# wheel: run this script (`make vendor-js`) only to refresh it after changing package-lock.json,
# then commit the result. Needs node + npm and the npm registry (the report never fetches anything).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
js="$here/cfrna/report/js"
dest="$here/cfrna/report/_vendor"
command -v npm >/dev/null || { echo "vendor_js.sh: error: npm not found (apt-get install npm)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$js/package.json" "$js/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
nm="$work/node_modules"
tmp="$(mktemp -d "$here/cfrna/report/._vendor.XXXXXX")"
cp "$nm/plotly.js-basic-dist-min/plotly-basic.min.js" "$tmp/plotly-basic.min.js"
cp "$nm/plotly.js-basic-dist-min/LICENSE" "$tmp/LICENSE.plotly.txt" 2>/dev/null \
  || cp "$nm/plotly.js-basic-dist-min/README.md" "$tmp/LICENSE.plotly.txt"
cp "$nm/tabulator-tables/dist/js/tabulator.min.js" "$tmp/tabulator.min.js"
cp "$nm/tabulator-tables/dist/css/tabulator.min.css" "$tmp/tabulator.min.css"
cp "$nm/tabulator-tables/LICENSE" "$tmp/LICENSE.tabulator.txt"
node -e '
const fs = require("fs"), p = require("path");
const lock = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const v = {};
for (const [k, e] of Object.entries(lock.packages)) if (k) v[k.replace("node_modules/", "")] = e.version;
fs.writeFileSync(p.join(process.argv[2], "versions.json"), JSON.stringify(v, null, 1) + "\n");
' "$js/package-lock.json" "$tmp"
chmod 755 "$tmp" && chmod 644 "$tmp"/*
rm -rf "$dest"
mv "$tmp" "$dest"
echo "vendored into $dest:"; ls -l "$dest"
