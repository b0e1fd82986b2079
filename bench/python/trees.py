"""onnxruntime on the same forest as bench/src/bin/trees.rs, one thread."""

import csv
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime

FEATURES = ["Minimum Degree", "Molecular Weight", "Number of H-Bond Donors", "Number of Rings",
            "Number of Rotatable Bonds", "Polar Surface Area"]

model, csv_path, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(csv_path, newline="") as handle:
    rows = [[float(r[f]) for f in FEATURES] for r in csv.DictReader(handle)]
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
for count in (1, 1000):
    data = np.asarray([rows[i % len(rows)] for i in range(count)], dtype=np.float32)
    runs = iterations if count == 1 else max(iterations // 100, 5)
    session.run(None, {"descriptors": data})
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        session.run(None, {"descriptors": data})
        samples.append((time.perf_counter() - started) * 1e6)
    print(json.dumps({"measure": "onnxruntime_trees", "rows": count, "median_us": statistics.median(samples)}))
