"""Register the example ESOL models locally, serve them and query them as a
user would.

Registers the solubility regressor (examples/) and a solubility classifier
(tests/fixtures/sklearn/) with the ingest command into a fresh local registry,
starts the predict function on it under `cargo lambda watch`, sends the 226
rows of the ESOL test split through the Open Inference Protocol (V2) and the
named-feature form (V1), prints predictions beside the measured solubility,
and checks that the served model reproduces the test RMSE recorded at
training time.

Run it with `make demo`, which builds the functions and installs
cargo-lambda first. It uses only the Python standard library.
"""

import argparse
import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURES = [
    "Minimum Degree",
    "Molecular Weight",
    "Number of H-Bond Donors",
    "Number of Rings",
    "Number of Rotatable Bonds",
    "Polar Surface Area",
]
TARGET = "measured log solubility in mols per litre"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{req.method} {url} failed with {error.code}: {error.read().decode()}")


def start_function(registry, log_path):
    port = free_port()
    command = ["cargo", "lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1", "-P", str(port),
               "-p", "predict", "--env-var", f"MODEL_REPOSITORY={registry}"]
    log = open(log_path, "wb")
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    # cargo lambda watch starts the function on the first request and drops
    # that request, so one throwaway request starts it and the demo waits
    # for the function's start-up line.
    deadline = time.monotonic() + 600
    poked = 0.0
    while "predict function started" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the predict function did not start; see {log_path}")
        if time.monotonic() - poked > 10:
            poked = time.monotonic()
            try:
                urllib.request.urlopen(f"{base}/v2/health/live", timeout=1)
            except Exception:  # noqa: BLE001 - the first request is expected to be lost
                pass
        time.sleep(0.2)
    return process, base


def register(registry, model, name, sidecar):
    """Register a model with the ingest command and print what it did."""
    command = [str(REPO / "target" / "debug" / "ingest"), str(model), "--name", name, "--metadata", str(sidecar)]
    result = subprocess.run(command, cwd=REPO, env=dict(os.environ, MODEL_REPOSITORY=str(registry)),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"registering {name} failed:\n{result.stdout}{result.stderr}")
    outcome = json.loads(result.stdout)
    print(f"registered {outcome['model']} version {outcome['version']} ({outcome['status']}) from {model.relative_to(REPO)}")
    for warning in outcome.get("warnings", []):
        print(f"  warning: {warning}")


def rmse(pairs):
    return math.sqrt(sum((p - m) ** 2 for p, m in pairs) / len(pairs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=str(REPO / "target" / "demo-registry"),
                        help="registry folder to create and serve (default: target/demo-registry)")
    parser.add_argument("--model", default="esol-solubility", help="registered model name")
    args = parser.parse_args()

    registry = Path(args.registry)
    shutil.rmtree(registry, ignore_errors=True)
    registry.mkdir(parents=True)
    register(registry, REPO / "examples/registry/esol-solubility/1/model.onnx", args.model,
             REPO / "examples/esol-solubility.sidecar.json")
    register(registry, REPO / "tests/fixtures/sklearn/esol_rf_classifier_zipmap.onnx", "esol-soluble",
             REPO / "tests/fixtures/sklearn/esol_rf_classifier_zipmap.json")
    print()

    with open(REPO / "examples" / "esol_test_split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    log_path = REPO / "target" / "demo-predict.log"
    log_path.parent.mkdir(exist_ok=True)
    process, base = start_function(registry, log_path)
    try:
        metadata = request(f"{base}/v2/models/{args.model}")
        print(f"Serving {metadata['name']} versions {metadata['versions']} from {registry.relative_to(REPO)}")
        print(f"  input  {metadata['inputs'][0]}\n  output {metadata['outputs'][0]}\n")

        # Open Inference Protocol: all rows in batches of 64.
        v2 = []
        for start in range(0, len(rows), 64):
            batch = rows[start:start + 64]
            body = {"id": f"demo-{start}", "inputs": [{
                "name": "descriptors", "datatype": "FP32", "shape": [len(batch), 6],
                "data": [[float(row[f]) for f in FEATURES] for row in batch],
            }]}
            response = request(f"{base}/v2/models/{args.model}/infer", body)
            v2.extend(response["outputs"][0]["data"])

        # Named features, in the order a scientist might type them.
        instances = [{f: float(row[f]) for f in reversed(FEATURES)} for row in rows]
        v1 = request(f"{base}/v1/models/{args.model}:predict", {"instances": instances})["predictions"]

        print(f"{'compound':<32} {'measured':>9} {'V2 pred':>9} {'V1 pred':>9}   log10(mol/L)")
        for row, p2, p1 in list(zip(rows, v2, v1))[:12]:
            print(f"{row['Compound ID'].strip()[:32]:<32} {float(row[TARGET]):>9.3f} {p2:>9.3f} {p1:>9.3f}")
        print(f"... {len(rows) - 12} more rows\n")

        measured = [float(row[TARGET]) for row in rows]
        served_rmse = rmse(list(zip(v2, measured)))
        trained_rmse = request(f"{base}/v2/models/{args.model}").get("parameters", {}).get("metrics", {}).get("test_rmse")
        if trained_rmse is None:
            raise SystemExit(f"model {args.model} has no test_rmse in its metrics")
        print(f"test RMSE of the served model ({len(rows)} rows, V2): {served_rmse:.6f} log10(mol/L)")
        print(f"test RMSE recorded at training (onnxruntime):     {trained_rmse:.6f} log10(mol/L)")
        largest = max(abs(a - b) for a, b in zip(v1, v2))
        print(f"largest difference between V1 and V2 predictions: {largest:.2e}")
        if abs(served_rmse - trained_rmse) > 1e-4 or largest > 1e-5:
            raise SystemExit("the served model does not reproduce the training RMSE")
        print("the served model reproduces the training RMSE\n")

        # The classifier, registered from a scikit-learn export with ZipMap,
        # answers with a label and the probability of each class.
        sample = rows[:8]
        instances = [{f: float(row[f]) for f in FEATURES} for row in sample]
        predictions = request(f"{base}/v1/models/esol-soluble:predict", {"instances": instances})["predictions"]
        print(f"{'compound':<32} {'measured':>9} {'soluble?':>9} {'P(soluble)':>11}")
        for row, prediction in zip(sample, predictions):
            print(f"{row['Compound ID'].strip()[:32]:<32} {float(row[TARGET]):>9.3f} "
                  f"{'yes' if prediction['label'] == 1 else 'no':>9} {prediction['probabilities']['1']:>11.3f}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


if __name__ == "__main__":
    sys.exit(main())
