# Two commands on a fresh machine: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (tests grouped by file and by shared session fixture: tests/conftest.py)
TEST_WORKERS ?= 2

.PHONY: all env demo test test-nojit test-container test-fast lint nextflow vendor-js clean

all: test

# the stamp is written last: an install stopped half-way (network, a failed build) is redone by the next make
ENV_STAMP := $(VENV)/.cfrna-env-ready

$(ENV_STAMP): pyproject.toml
	@echo "make: first step, done once: creating $(VENV) and pip-installing cfrna with its dependencies"
	@echo "make: (numba, pandas, pydeseq2, gseapy, MultiQC...; ~2 GB, typically 5-15 min depending on the network)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@# umi_tools (test reference for UMI deduplication): its setup.py downloads setuptools inside an
	@# isolated build, which fails offline; built against the venv's own setuptools/cython/wheel instead
	$(BIN)/python -m pip install -q cython wheel
	$(BIN)/python -m pip install -q --no-build-isolation 'umi_tools==1.1.6'
	touch $@
	@echo "make: environment ready: $(BIN)/cfrna"

env: $(ENV_STAMP)

demo: env
	$(BIN)/cfrna demo --outdir demo_out

# everything except the container check, whose image build (scripts/build_image.sh, 10-30 min) does
# not fit CI's time; run it with `make test-container` after building the image
test: env
	$(BIN)/python -m pytest -m "not container" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-nojit

# the kernel tests again with numba off: the kernels run as plain Python (tiny inputs, well under a minute)
test-nojit: env
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -m kernels -p no:cacheprovider -q

test-container: env
	$(BIN)/python -m pytest -m container $(PYTEST_ARGS)

test-fast: env
	$(BIN)/python -m pytest -m "not slow and not nextflow and not slurm and not browser" -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

nextflow:
	bash scripts/install_nextflow.sh

# refresh the committed report libraries (cfrna/report/_vendor/) from package-lock.json; needs npm
vendor-js:
	bash scripts/vendor_js.sh

lint: env
	$(BIN)/python -m ruff check cfrna tests benchmarks

clean:
	rm -rf demo_out .cache .pytest_cache
