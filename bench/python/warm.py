"""Warm, in-process latency of the Python handler and of onnxruntime alone,
on the same model and rows as the Rust measurement. Prints JSON lines."""

import csv
import json
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
import handler  # noqa: E402

FEATURES = ["Minimum Degree", "Molecular Weight", "Number of H-Bond Donors", "Number of Rings",
            "Number of Rotatable Bonds", "Polar Surface Area"]


def timed(iterations, work):
    for _ in range(iterations // 10):
        work()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[len(samples) * 99 // 100]


def main():
    csv_path, iterations = sys.argv[1], int(sys.argv[2])
    with open(csv_path, newline="") as handle:
        rows = [[float(r[f]) for f in FEATURES] for r in csv.DictReader(handle)]
    for batch in (1, 64):
        chosen = [rows[i % len(rows)] for i in range(batch)]
        body = json.dumps({"inputs": [{"name": "descriptors", "shape": [batch, 6], "datatype": "FP32", "data": chosen}]})
        handler.infer(body)
        median, p99 = timed(iterations, lambda: handler.infer(body))
        print(json.dumps({"measure": "python_onnxruntime_handler", "batch": batch, "iterations": iterations,
                          "median_us": median, "p99_us": p99}))
        session = handler._session("esol-solubility", "1")
        array = np.asarray(chosen, dtype=np.float32)
        median, p99 = timed(iterations, lambda: session.run(None, {"descriptors": array}))
        print(json.dumps({"measure": "raw_onnxruntime", "batch": batch, "iterations": iterations,
                          "median_us": median, "p99_us": p99}))


if __name__ == "__main__":
    main()
