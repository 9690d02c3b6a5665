# cfrna image for -profile docker / podman / singularity / awsbatch:
#   docker build -t localhost/cfrna:0.1.0 .   # the name every module's container directive uses
#   bash scripts/build_image.sh        # the same steps with Podman, without a registry (docs/usage.md)
# Debian 12 (the tool versions CI tests with: STAR 2.7.10b, samtools 1.16.1, subread 2.0.3, Python
# 3.11) + the cfrna wheel with pinned Python dependencies in /opt/cfrna/venv. The report libraries
# come with the source tree (cfrna/report/_vendor/): no npm. No network is needed at run time.
ARG BASE_IMAGE=debian:12-slim
FROM ${BASE_IMAGE}

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        ca-certificates \
        procps \
        python3 \
        python3-venv \
        rna-star=2.7.10b+dfsg-2+b2 \
        samtools=1.16.1-1 \
        subread=2.0.3+dfsg-1 \
 && rm -rf /var/lib/apt/lists/*

# The pinned dependencies first (a layer that does not change with cfrna's sources). mappy has no
# wheel on PyPI: its compiler and headers are installed for the build and removed after.
# PIP_CERT: a CA bundle for sites whose HTTPS goes through a proxy with its own CA (build time only;
# scripts/build_image.sh mounts the host's bundle)
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev zlib1g-dev \
 && python3 -m venv /opt/cfrna/venv \
 && /opt/cfrna/venv/bin/pip install --no-cache-dir \
        numpy==2.4.6 pandas==2.3.3 scipy==1.17.1 numba==0.68.1 llvmlite==0.50.0 pysam==0.24.1 mappy==2.31 \
        cutadapt==5.2 dnaio==1.2.4 deflate==0.9.0 pydeseq2==0.5.4 formulaic==1.2.2 threadpoolctl==3.8.0 \
        anndata==0.12.19 scanpy==1.11.5 gseapy==1.3.1 jsonschema==4.26.0 rich==15.0.0 matplotlib==3.11.2 \
        pyyaml==6.0.4 multiqc==1.35 \
 && apt-get purge -y --auto-remove gcc libc6-dev python3-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

# cfrna itself (pure Python; the report libraries are in the source tree)
WORKDIR /opt/cfrna/src
COPY pyproject.toml README.md ./
COPY cfrna ./cfrna
COPY assets ./assets
RUN /opt/cfrna/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/cfrna/venv/bin/pip check \
 && rm -rf /opt/cfrna/src
ENV PATH=/opt/cfrna/venv/bin:$PATH \
    NUMBA_CACHE_DIR=/opt/cfrna/numba-cache \
    MPLBACKEND=Agg \
    PYTHONNOUSERSITE=1
# the report libraries are in the package (a build without them fails here, not in a run)
RUN cfrna --version \
 && python -c "from cfrna.report.html import vendor_dir; vendor_dir()"

# the stage shims Nextflow calls (also on PATH via the pipeline's bin/)
COPY bin/ /usr/local/bin/

# Warm numba's cache: one tiny single-end and one paired-end run compile every cached kernel into
# NUMBA_CACHE_DIR, so tasks load them instead of recompiling in each throwaway container. The folder
# is writable for any uid (tasks run as the caller's uid): a task on a CPU model other than the
# build host's compiles its own entries there.
RUN cfrna demo --outdir /tmp/warm-se --samples 6 --reads-per-sample 5000 --threads 2 --no-progress \
 && cfrna demo --outdir /tmp/warm-pe --samples 6 --reads-per-sample 5000 --paired --threads 2 --no-progress \
 && rm -rf /tmp/warm-se /tmp/warm-pe /root/.cache \
 && chmod -R a+rwX /opt/cfrna/numba-cache

WORKDIR /
CMD ["cfrna", "--help"]
