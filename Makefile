# serverless-maas: build, test and try the ONNX model service.
#
#   make demo    serve the example ESOL model locally and query it
#   make test    everything CI runs (no AWS account needed)
#   make bench   speed and memory figures, written to BENCHMARKS.md
#   make build   release zips for Lambda (arm64)
#   make watch   all three functions under cargo lambda watch, with a local S3
#                server; then `make invoke-<name>` sends the fixtures in events/

SHELL := /bin/bash
VENV := target/venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
FUNCTIONS := predict batch-score ingest

.PHONY: demo test test-python infra-lint check-no-openssl build bench watch functions venv clean-venv \
	invoke-predict invoke-predict-base64 invoke-predict-v1 invoke-health invoke-batch invoke-batch-direct \
	invoke-batch-encoded-keys invoke-batch-one-bad invoke-test-event invoke-ingest invoke-ingest-direct \
	invoke-ingest-encoded

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

test: venv functions check-no-openssl
	cargo test --locked --workspace
	$(MAKE) test-python
	$(MAKE) infra-lint

# rustls only: OpenSSL would have to be cross-compiled for arm64 Lambdas.
# (openssl-probe, which only locates certificate files, is pure Rust.)
check-no-openssl:
	@if grep -q '^name = "openssl-sys"' Cargo.lock; then echo "Cargo.lock pulls in openssl-sys; use rustls features"; exit 1; fi
	@echo "no OpenSSL in the dependency tree"

test-python: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/python

infra-lint:
	bash infra/run-lint.sh

# Cross-compiles with zig (installed with cargo-lambda) and writes
# target/lambda/<function>/bootstrap.zip. Set ARCH=x86_64 for Intel Lambdas.
ARCH ?= arm64
build: venv
	cargo lambda build --release --$(ARCH) --output-format zip --lambda-dir target/lambda \
		$(foreach f,$(FUNCTIONS),--bin $(f))
	python3 bench/zip_sizes.py target/lambda $(ARCH)

watch: venv functions
	bash scripts/watch.sh

WATCH_PORT ?= 9000
INVOKE = cargo lambda invoke -A 127.0.0.1 -P $(WATCH_PORT)
invoke-predict: ; $(INVOKE) predict --data-file events/apigw-v2-infer.json
invoke-predict-base64: ; $(INVOKE) predict --data-file events/apigw-v2-infer-base64.json
invoke-predict-v1: ; $(INVOKE) predict --data-file events/function-url-predict-v1.json
invoke-health: ; $(INVOKE) predict --data-file events/apigw-v2-health.json
invoke-batch: ; $(INVOKE) batch-score --data-file events/sqs-s3-batch-put.json
invoke-batch-direct: ; $(INVOKE) batch-score --data-file events/s3-put-batch.json
invoke-batch-encoded-keys: ; $(INVOKE) batch-score --data-file events/sqs-s3-batch-encoded-keys.json
invoke-batch-one-bad: ; $(INVOKE) batch-score --data-file events/sqs-batch-one-bad.json
invoke-test-event: ; $(INVOKE) batch-score --data-file events/sqs-s3-test-event.json
invoke-ingest: ; $(INVOKE) ingest --data-file events/sqs-s3-incoming-model.json
invoke-ingest-direct: ; $(INVOKE) ingest --data-file events/s3-put-incoming-model.json
invoke-ingest-encoded: ; $(INVOKE) ingest --data-file events/sqs-s3-incoming-encoded.json

bench: venv
	bash bench/run.sh

clean-venv:
	rm -rf $(VENV)
