# cfrna image for -profile docker / singularity / awsbatch:
#   docker build -t cfrna:0.1.0 .
# Debian 12 (the tool versions CI tests with: STAR 2.7.10b, samtools 1.16.1, subread 2.0.3) +
# the cfrna wheel with pinned Python dependencies. No network is needed at run time.
FROM python:3.11.7-slim-bookworm

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        procps \
        rna-star=2.7.10b+dfsg-2+b2 \
        samtools=1.16.1-1 \
        subread=2.0.3+dfsg-1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/cfrna
COPY pyproject.toml README.md ./
COPY cfrna ./cfrna
COPY assets ./assets
RUN pip install --no-cache-dir \
        numpy==2.4.6 pandas==2.3.3 scipy==1.17.1 numba==0.68.1 pysam==0.24.1 mappy==2.31 \
        cutadapt==5.2 dnaio==1.2.4 deflate==0.9.0 pydeseq2==0.5.4 anndata==0.12.19 scanpy==1.11.5 \
        gseapy==1.3.1 jsonschema==4.26.0 rich==15.0.0 matplotlib==3.11.2 multiqc==1.35 \
 && pip install --no-cache-dir --no-deps . \
 && cfrna --version

# the stage shims Nextflow calls (also on PATH via the pipeline's bin/)
COPY bin/ /usr/local/bin/
ENV NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLBACKEND=Agg \
    PYTHONNOUSERSITE=1
# numba's cache folder is writable for any user (tasks run as the calling user's uid)
RUN mkdir -p /tmp/numba-cache && chmod 1777 /tmp/numba-cache
WORKDIR /
CMD ["cfrna", "--help"]
