"""Every build path carries the report libraries: git tree, wheel, Docker build context, Makefile.

The browser libraries of the HTML report (cfrna/report/_vendor/) are committed, so that `pip install`,
the Dockerfile and environment.yml (which has `pip: - .`) need no npm. The slow test builds a wheel
from the files git tracks, installs it into a fresh venv on a PATH without npm/node and runs
`cfrna demo`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VENDOR = "cfrna/report/_vendor"
VENDOR_FILES = ("plotly-basic.min.js", "tabulator.min.js", "tabulator.min.css", "LICENSE.plotly.txt",
                "LICENSE.tabulator.txt", "versions.json")


def _git(*args: str) -> str:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        msg = "not a git checkout"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def tracked_files() -> list[str]:
    return [f for f in _git("ls-files", "-z").split("\0") if f]


# ----------------------------------------------------------------------------- source tree


def test_report_libraries_are_tracked_by_git():
    tracked = set(tracked_files())
    for name in VENDOR_FILES:
        assert f"{VENDOR}/{name}" in tracked, f"{VENDOR}/{name} is not committed (git add it; see docs/report.md)"
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", f"{VENDOR}/plotly-basic.min.js"])
    assert ignored.returncode == 1, f".gitignore ignores {VENDOR}"


def test_vendored_versions_match_the_lock():
    lock = json.loads((ROOT / "cfrna/report/js/package-lock.json").read_text())
    want = {k.removeprefix("node_modules/"): v["version"] for k, v in lock["packages"].items() if k}
    got = json.loads((ROOT / VENDOR / "versions.json").read_text())
    assert got == want, "cfrna/report/_vendor is stale: run scripts/vendor_js.sh and commit it"
    # the files themselves carry their version in the banner
    head = (ROOT / VENDOR / "plotly-basic.min.js").read_text(encoding="utf-8")[:400]
    assert f"v{want['plotly.js-basic-dist-min']}" in head, "plotly-basic.min.js is not the locked version"
    head = (ROOT / VENDOR / "tabulator.min.js").read_text(encoding="utf-8")[:400]
    assert f"v{want['tabulator-tables']}" in head, "tabulator.min.js is not the locked version"


def test_make_env_needs_no_npm():
    text = (ROOT / "Makefile").read_text()
    env_rule = re.search(r"^\$\(ENV_STAMP\):.*?(?=^\S)", text, re.M | re.S)
    assert env_rule, "no $(ENV_STAMP) rule (the environment) in the Makefile"
    assert "vendor_js" not in env_rule.group(0) and "npm" not in env_rule.group(0)
    # the stamp is written after the last install (an install stopped half-way is redone by the next make),
    # and wheel is there before the no-isolation build that needs bdist_wheel
    recipe = [ln.strip() for ln in env_rule.group(0).splitlines()[1:] if ln.strip() and not ln.strip().startswith("@")]
    touch = recipe.index("touch $@")
    assert touch == len(recipe) - 1 and any("pip install" in ln for ln in recipe[:touch])
    wheel = next(i for i, ln in enumerate(recipe) if re.search(r"pip install .*\bwheel\b", ln))
    assert wheel < next(i for i, ln in enumerate(recipe) if "--no-build-isolation" in ln)
    assert re.search(r"^env: \$\(ENV_STAMP\)$", text, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "npm" not in ci, ".ci/run installs npm: the build must not need it"


# ----------------------------------------------------------------------------- Docker build context


def _dockerignore_patterns() -> list[tuple[bool, str]]:
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        out.append((neg, pat.strip("/")))
    return out


def _glob_regex(pat: str) -> str:
    """Go filepath.Match plus Docker's `**` (any number of folders): `*` and `?` stop at `/`."""
    out, i = [], 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    return "".join(out)


def _docker_excluded(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent folder excludes it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for neg, pat in patterns:
        rx = re.compile(_glob_regex(pat))
        if any(rx.fullmatch(p) for p in prefixes):
            excluded = not neg
    return excluded


def test_docker_context_includes_the_report_libraries():
    patterns = _dockerignore_patterns()
    for name in VENDOR_FILES:
        assert not _docker_excluded(f"{VENDOR}/{name}", patterns), f".dockerignore excludes {VENDOR}/{name}"
    for f in ("pyproject.toml", "README.md", "cfrna/__init__.py", "assets/schema_input.json", "bin/cfrna-count"):
        assert not _docker_excluded(f, patterns), f".dockerignore excludes {f}"
    # local state stays out of the context
    for f in (".venv/bin/python", ".git/HEAD", "cfrna/__pycache__/x.pyc", "work/ab/cd/.command.sh"):
        assert _docker_excluded(f, patterns), f".dockerignore lets {f} into the build context"
    docker = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY cfrna \./cfrna$", docker, re.M), "the Dockerfile does not copy the package"
    assert "vendor_dir()" in docker, "the image build does not check the report libraries"
    assert not re.search(r"^\s*(RUN|&&).*\bnpm\b", docker, re.M), "the Dockerfile runs npm"


def test_dockerignore_matcher_follows_docker_rules():
    pats = [(False, "a/**/x.txt"), (False, "b"), (True, "b/keep"), (False, "*.log")]
    assert _docker_excluded("a/x.txt", pats)
    assert _docker_excluded("a/q/r/x.txt", pats)
    assert not _docker_excluded("a/q/y.txt", pats)
    assert _docker_excluded("b/other", pats)
    assert not _docker_excluded("b/keep", pats)
    assert _docker_excluded("run.log", pats)
    assert not _docker_excluded("sub/run.log", pats)


# ----------------------------------------------------------------------------- wheel in a clean venv


def _path_without_npm(tmp: Path) -> str:
    """A PATH of only the basic tools the package may call (no node/npm/npx/corepack)."""
    tools = tmp / "sysbin"
    tools.mkdir()
    for name in ("sh", "bash", "env", "gzip", "cat", "ls", "mkdir", "rm", "uname"):
        src = shutil.which(name)
        if src:
            (tools / name).symlink_to(src)
    return str(tools)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a cold pip install + numba compile: ~6 min on 2 quiet cores, 30+ on a loaded one
def test_wheel_in_a_clean_venv_without_npm_runs_the_demo(tmp_path):
    # the wheel is built from exactly the files git tracks (working-tree content): an untracked or
    # ignored cfrna/report/_vendor of this checkout cannot make the test pass
    src = tmp_path / "src"
    for rel in tracked_files():
        p = ROOT / rel
        if p.is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, src / rel)
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("cfrna-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, symlinks=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # dependencies from PyPI (pip's cache makes reruns fast); nothing from this checkout's .venv
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=1800)
    assert inst.returncode == 0, inst.stderr[-3000:]

    path = os.pathsep.join([str(env_dir / "bin"), _path_without_npm(tmp_path)])
    for tool in ("npm", "node", "npx"):
        assert shutil.which(tool, path=path) is None
    env = {"PATH": path, "HOME": str(tmp_path / "home"), "MPLBACKEND": "Agg", "LANG": "C.UTF-8",
           "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "CFRNA_INDEX_CACHE": str(tmp_path / "index")}
    where = subprocess.run([str(py), "-c", "import cfrna; print(cfrna.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(env_dir), f"cfrna imported from {where.stdout}"

    out = tmp_path / "demo"
    # one job: numba compiles each kernel once (a fresh install has a cold cache; minutes on 2 cores)
    demo = subprocess.run([str(env_dir / "bin" / "cfrna"), "demo", "--outdir", str(out), "--samples", "6",
                           "--reads-per-sample", "5000", "--threads", "2", "--jobs", "1", "--no-progress"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert demo.returncode == 0, f"cfrna demo failed:\n{demo.stderr[-4000:]}"
    (report,) = out.rglob("report/index.html")
    html = report.read_text(encoding="utf-8")
    # the libraries are inlined: the report works offline
    assert "Tabulator" in html and "plotly" in html.lower()
    assert len(html) > 1_000_000
