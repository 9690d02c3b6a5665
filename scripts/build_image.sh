#!/usr/bin/env bash
# Build the cfrna container image with Podman, without an image registry.
#
#   bash scripts/build_image.sh                 # -> localhost/cfrna:0.1.0 (and its base image)
#   nextflow run . -profile test,podman
#
# 1. Base image: a Debian 12 root file system made by debootstrap from the Debian mirror apt already
#    uses, imported as localhost/debian:12-slim (skipped when that image exists; CFRNA_REBUILD_BASE=1
#    forces it). Needs root (debootstrap), podman, runc and debootstrap (Debian packages).
# 2. The project image: `podman build` of the repository's Dockerfile with BASE_IMAGE set to that
#    base, so the steps are exactly the Dockerfile's. The build needs the Debian mirror and PyPI.
# 3. A smoke test in the new image: cfrna --version, the report libraries, a stage shim, the numba
#    cache warmed at build time is loaded (NUMBA_DEBUG_CACHE shows no new compilation).
#
# Podman runs with runc, the cgroupfs manager and explicit ulimits: the settings that work where
# crun cannot set rlimits or use hybrid cgroups (docs/usage.md, "Containers").
#
# Env: CFRNA_IMAGE (default localhost/cfrna:<version>), CFRNA_BASE_IMAGE (default localhost/debian:12-slim),
#      DEBIAN_MIRROR (default: the first deb.debian.org-style URI of /etc/apt), CFRNA_BUILD_DIR
#      (default /var/tmp/cfrna-image: the debootstrap root file system, removed after import).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -nE 's/^__version__ = "([^"]+)"/\1/p' "$ROOT/cfrna/__init__.py")
IMAGE=${CFRNA_IMAGE:-localhost/cfrna:$VERSION}
BASE=${CFRNA_BASE_IMAGE:-localhost/debian:12-slim}
WORK=${CFRNA_BUILD_DIR:-/var/tmp/cfrna-image}
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

die() { echo "build_image.sh: error: $*" >&2; exit 2; }
log() { echo "build_image.sh: $*" >&2; }

command -v podman >/dev/null || die "podman not found (Debian: apt-get install podman runc)"
command -v runc >/dev/null || die "runc not found (Debian: apt-get install runc)"
[[ -n $VERSION ]] || die "cannot read __version__ from cfrna/__init__.py"
for f in plotly-basic.min.js tabulator.min.js tabulator.min.css; do
  [[ -f $ROOT/cfrna/report/_vendor/$f ]] || die "cfrna/report/_vendor/$f missing (git checkout it, or run scripts/vendor_js.sh)"
done

mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}' | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------- 1. base image
if [[ -n ${CFRNA_REBUILD_BASE:-} ]] || ! podman image exists "$BASE"; then
  command -v debootstrap >/dev/null || die "debootstrap not found (Debian: apt-get install debootstrap)"
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root to build the base image $BASE"
  rootfs="$WORK/rootfs"
  if [[ ! -x $rootfs/usr/bin/apt-get || ! -f $rootfs/.cfrna-debootstrap-complete ]]; then
    rm -rf "$rootfs"
    mkdir -p "$WORK"
    log "debootstrap bookworm (minbase) from $(mirror) into $rootfs (about a minute)"
    debootstrap --variant=minbase bookworm "$rootfs" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 \
      || die "debootstrap failed (see $WORK/debootstrap.log)"
    touch "$rootfs/.cfrna-debootstrap-complete"
  fi
  rm -f "$rootfs/.cfrna-debootstrap-complete"
  # apt inside the image: the same mirror, no recommends, no caches kept in layers
  printf 'deb %s bookworm main\n' "$(mirror)" > "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "importing $rootfs as $BASE"
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
fi

# ---------------------------------------------------------------- 2. project image
# pip inside the build trusts the host's CA bundle (a proxy with its own CA), mounted read-only
CA=${CFRNA_CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
CA_ARGS=()
if [[ -f $CA ]]; then
  CA_ARGS=(-v "$CA:/run/cfrna-host-ca.crt:ro" --build-arg PIP_CERT=/run/cfrna-host-ca.crt)
fi
log "podman build of Dockerfile (BASE_IMAGE=$BASE) -> $IMAGE"
"${PODMAN[@]}" build "${ULIMITS[@]}" --network host --build-arg "BASE_IMAGE=$BASE" "${CA_ARGS[@]}" \
  -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT"

# ---------------------------------------------------------------- 3. smoke test
# as a task runs: another uid, no network; the per-sample stages must load numba's kernels from the
# cache warmed in the image ("data saved to" = a kernel compiled at run time)
log "smoke test of $IMAGE"
out=$("${PODMAN[@]}" run --rm "${ULIMITS[@]}" --network none --user 1000:1000 "$IMAGE" bash -c '
  set -euo pipefail
  cfrna --version
  python -c "from cfrna.report.html import vendor_dir; print(\"report libraries:\", vendor_dir())"
  d=$(mktemp -d) && cd "$d"
  cfrna simulate --outdir c --samples 2 --reads-per-sample 400 --seed 3 >/dev/null 2>&1
  idx=$(cfrna-index --fasta c/genome.fa --gtf c/genes.gtf --aligner mappy --outdir idx 2>/dev/null | tail -n 1)
  export NUMBA_DEBUG_CACHE=1
  { cfrna-trim --sample s01 --fastq-1 c/fastq/s01_R1.fastq.gz --outdir . --threads 1
    cfrna-align --sample s01 --fasta c/genome.fa --gtf c/genes.gtf --fastq-1 s01_1.trimmed.fastq.gz \
        --aligner mappy --index "$idx" --strandedness auto --outdir . --threads 1
    cfrna-count --bam s01.bam --gtf c/genes.gtf --strandedness-from s01.align.json --sample s01 \
        --out s01.counts.tsv --threads 1; } > stages.log 2>&1 || { tail -n 20 stages.log; exit 1; }
  echo "loaded from cache: $(grep -c "data loaded from" stages.log || true)"
  echo "compiled: $(grep -c "data saved to" stages.log || true)"
' 2>&1) || die "smoke test failed: $out"
echo "$out" >&2
loaded=$(sed -nE 's/^loaded from cache: ([0-9]+)$/\1/p' <<<"$out")
compiled=$(sed -nE 's/^compiled: ([0-9]+)$/\1/p' <<<"$out")
[[ ${loaded:-0} -gt 0 && ${compiled:-1} -eq 0 ]] \
  || die "numba cache of $IMAGE not warmed: ${loaded:-?} kernel(s) loaded, ${compiled:-?} compiled at run time"
log "built $IMAGE ($("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
