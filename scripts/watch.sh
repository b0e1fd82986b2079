#!/usr/bin/env bash
# `make watch`: run predict, batch-score and ingest under `cargo lambda watch`
# against a moto S3 server on loopback, seeded so that every fixture in
# events/ finds its objects. Stop it with Ctrl-C; the S3 server stops too.
#
# Settings (environment): WATCH_PORT (9000) for invocations, S3_PORT (9002)
# for the S3 server, BUCKET (maas-local, the bucket the fixtures name).
set -euo pipefail
cd "$(dirname "$0")/.."

watch_port="${WATCH_PORT:-9000}"
s3_port="${S3_PORT:-9002}"
bucket="${BUCKET:-maas-local}"
venv=target/venv

# Dummy credentials and a loopback endpoint: nothing here reaches AWS.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"

$venv/bin/moto_server -H 127.0.0.1 -p "$s3_port" > target/watch-moto.log 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s "$AWS_ENDPOINT_URL/moto-api/" > /dev/null && break; sleep 0.2; done

$venv/bin/python - "$bucket" <<'PY'
import pathlib, sys
import boto3

bucket = sys.argv[1]
s3 = boto3.client("s3")
s3.create_bucket(Bucket=bucket)
registry = pathlib.Path("examples/registry")
for path in registry.rglob("*"):
    if path.is_file():
        s3.upload_file(str(path), bucket, f"models/{path.relative_to(registry)}")
esol = "data/esol/delaney-processed.csv"
for key in ["esol.csv", "part-0001.csv", "part-0002.csv", "my file (1).csv", "a+b=c.csv", "données/é.csv"]:
    s3.upload_file(esol, bucket, f"batch/input/esol-solubility/{key}")
model = "examples/registry/esol-solubility/1/model.onnx"
s3.upload_file(model, bucket, "incoming/esol-solubility.onnx")
s3.upload_file("examples/esol-solubility.sidecar.json", bucket, "incoming/esol-solubility.json")
s3.upload_file(model, bucket, "incoming/my model+v2.onnx")
print(f"seeded s3://{bucket} on {s3.meta.endpoint_url}: models/, batch/input/esol-solubility/, incoming/")
PY

cat > target/watch.env <<ENV
MODEL_REPOSITORY=s3://$bucket/models
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_S3_FORCE_PATH_STYLE=true
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=us-east-1
AWS_EC2_METADATA_DISABLED=true
SIDECAR_WAIT_SECONDS=2
ALIAS_TTL_SECONDS=5
ENV

echo "functions: http://127.0.0.1:$watch_port/lambda-url/predict/v2 and 'make invoke-*' (see the Makefile)"
$venv/bin/cargo-lambda lambda watch --ignore-changes -A 127.0.0.1 -P "$watch_port" --env-file target/watch.env
