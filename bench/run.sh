#!/usr/bin/env bash
# `make bench`: speed figures for the predict and batch-score functions,
# written to BENCHMARKS.md. Release build (LTO, as deployed), a moto S3 server on
# loopback holding the example registry, and Python with onnxruntime and boto3
# for the comparison. Takes about 20 minutes on 2 cores when nothing is built.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${BENCH_COLD_RUNS:-20}"
iterations="${BENCH_WARM_ITERATIONS:-5000}"
# Batch inputs larger than this many rows are skipped; 10^7 rows take several
# minutes per run and about 1 GB of disk.
batch_max_rows="${BENCH_BATCH_MAX_ROWS:-10000000}"
venv=target/bench-venv
results=target/bench-results.jsonl

if [[ ! -f $venv/.installed || bench/requirements.txt -nt $venv/.installed ]]; then
    python3 -m venv $venv
    $venv/bin/pip install --quiet -r bench/requirements.txt
    touch $venv/.installed
fi

echo "== release build of predict, batch-score and the benchmark programs"
cargo build --locked --release -p predict -p batch-score -p maas-bench

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_S3_FORCE_PATH_STYLE=true
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
$venv/bin/moto_server -H 127.0.0.1 -p "$port" > target/bench-moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s "$AWS_ENDPOINT_URL/moto-api/" > /dev/null && break; sleep 0.2; done

$venv/bin/python - <<'PY'
import boto3, pathlib
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench")
root = pathlib.Path("examples/registry")
for path in root.rglob("*"):
    if path.is_file():
        s3.upload_file(str(path), "bench", f"models/{path.relative_to(root)}")
PY
export MODEL_REPOSITORY=s3://bench/models

: > $results
echo "== cold start: Rust predict ($runs runs)"
$venv/bin/python bench/cold_start.py --runs "$runs" --label rust-predict -- target/release/predict | tee -a $results
echo "== cold start: Python handler with onnxruntime and boto3 ($runs runs)"
$venv/bin/python bench/cold_start.py --runs "$runs" --label python-onnxruntime -- $venv/bin/python bench/python/bootstrap.py | tee -a $results

echo "== warm in-process latency ($iterations iterations)"
target/release/warm examples/registry examples/esol_test_split.csv "$iterations" | tee -a $results
$venv/bin/python bench/python/warm.py examples/esol_test_split.csv "$iterations" | tee -a $results

echo "== tree ensemble: 100 trees, depth 8"
forest=tests/fixtures/sklearn/esol_rf_classifier.onnx
target/release/trees $forest examples/esol_test_split.csv "$iterations" | tee -a $results
$venv/bin/python bench/python/trees.py $forest examples/esol_test_split.csv "$iterations" | tee -a $results

sizes=$(for rows in 100000 1000000 10000000; do if (( rows <= batch_max_rows )); then printf '%s,' "$rows"; fi; done)
echo "== batch scoring throughput and peak RSS (rows: ${sizes%,})"
$venv/bin/python bench/batch.py --sizes "${sizes%,}" --python $venv/bin/python | tee -a $results

$venv/bin/python bench/report.py $results "make bench (BENCH_COLD_RUNS=$runs BENCH_WARM_ITERATIONS=$iterations BENCH_BATCH_MAX_ROWS=$batch_max_rows)"
echo "== wrote BENCHMARKS.md"
