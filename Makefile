# serverless-maas: build, test and try the ONNX model service.
#
#   make demo    serve the example ESOL model locally and query it
#   make test    everything CI runs (no AWS account needed)
#   make bench   speed and memory figures, written to BENCHMARKS.md
#   make build   release zips for Lambda (arm64)

SHELL := /bin/bash
VENV := target/venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
FUNCTIONS := predict batch-score ingest

.PHONY: demo test test-rust test-python infra-lint build bench watch deploy functions venv clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt tests/constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tests/requirements.txt -c tests/constraints.txt
	touch $@

# Each function is built on its own, as `cargo lambda watch` builds it, so the
# watch-based tests start without compiling.
functions:
	for f in $(FUNCTIONS); do cargo build --locked -p $$f || exit 1; done

demo: venv
	cargo build --locked -p predict
	cargo build --locked -p ingest
	$(PY) scripts/demo.py
	@echo "== batch scoring: every molecule of data/esol/delaney-processed.csv with the local command"
	MODEL_REPOSITORY=examples/registry cargo run --locked --quiet -p batch-score -- \
		data/esol/delaney-processed.csv --model esol-solubility --output target/demo-batch/esol.out.csv
	head -n 3 target/demo-batch/esol.out.csv

test: venv functions
	cargo test --locked --workspace
	$(MAKE) test-python
	$(MAKE) infra-lint

test-python: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/python

infra-lint:
	bash infra/run-lint.sh

build: venv
	cargo lambda build --release --arm64 --output-format zip --lambda-dir target/lambda

bench: venv
	bash bench/run.sh

clean-venv:
	rm -rf $(VENV)
