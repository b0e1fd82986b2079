"""Batch-scoring throughput and peak memory: Rust batch-score against pandas + onnxruntime.

For each size, writes a CSV of that many rows resampled from the real ESOL
data, streamed to disk and never held in memory. Then scores it with the
release build of the local command (`batch-score FILE --model
esol-solubility`), and with bench/python/batch_pandas.py on the same model.
Each run is timed from process start to exit, which includes loading the
model, and its peak resident set size is the kernel's `ru_maxrss` for that
process. Prints one JSON line per run.

    python bench/batch.py [--sizes 100000,1000000,10000000] [--work target/bench-batch]
"""

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ESOL = ROOT / "data/esol/delaney-processed.csv"
MODEL = ROOT / "examples/registry/esol-solubility/1"
SEED = 20261204
BLOCK_ROWS = 10_000


def generate(path: Path, rows: int):
    """Write `rows` rows drawn with replacement from the ESOL file, unless the file already has them."""
    marker = path.with_suffix(".rows")
    if path.exists() and marker.exists() and marker.read_text() == str(rows):
        return
    with ESOL.open(newline="") as source:
        reader = csv.reader(source)
        header = next(reader)
        samples = list(reader)
    rng = random.Random(SEED)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        written = 0
        while written < rows:
            block = min(BLOCK_ROWS, rows - written)
            writer.writerows(rng.choices(samples, k=block))
            written += block
    marker.write_text(str(rows))


def measure(command: list[str], env: dict) -> dict:
    """Run `command` and return its wall time and peak resident set size."""
    # Files, not pipes, take the output, so a child that writes a lot never
    # blocks on a full pipe while this process waits for it.
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        # wait4 reports the resources of this one child, so earlier runs do not mix in.
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read().decode(), stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[0]} failed with exit status {os.waitstatus_to_exitcode(status)}:\n{errors}")
    # ru_maxrss is in kilobytes on Linux.
    return {"seconds": elapsed, "max_rss_mb": usage.ru_maxrss / 1024, "stdout": output}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="comma-separated row counts")
    parser.add_argument("--work", default=str(ROOT / "target/bench-batch"), help="folder for inputs and outputs")
    parser.add_argument("--python", default=sys.executable, help="Python with pandas and onnxruntime")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    binary = ROOT / "target/release/batch-score"

    for rows in [int(size) for size in args.sizes.split(",") if size]:
        source = work / f"esol-{rows}.csv"
        generate(source, rows)
        size_mb = source.stat().st_size / 1e6

        env = dict(os.environ, MODEL_REPOSITORY=str(ROOT / "examples/registry"))
        rust_out = work / f"rust-{rows}.out.csv"
        rust = measure([str(binary), str(source), "--model", "esol-solubility", "--output", str(rust_out)], env)
        summary = json.loads(rust["stdout"])
        if summary["rows"]["scored"] != rows:
            sys.exit(f"batch-score scored {summary['rows']['scored']} of {rows} rows: {summary}")

        # Some machines set these for older OpenBLAS builds, and they slow a
        # current numpy. onnxruntime does not use OpenBLAS.
        python_env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        pandas_out = work / f"pandas-{rows}.out.csv"
        pandas = measure(
            [args.python, str(ROOT / "bench/python/batch_pandas.py"), str(source), str(MODEL / "model.onnx"),
             str(MODEL / "manifest.json"), str(pandas_out)],
            python_env,
        )
        if json.loads(pandas["stdout"])["rows"] != rows:
            sys.exit(f"the pandas script did not score {rows} rows: {pandas['stdout']}")

        for label, run in (("rust-batch-score", rust), ("pandas-onnxruntime", pandas)):
            record = {
                "measure": "batch",
                "label": label,
                "rows": rows,
                "input_mb": round(size_mb, 1),
                "seconds": round(run["seconds"], 3),
                "rows_per_s": round(rows / run["seconds"]),
                "max_rss_mb": round(run["max_rss_mb"], 1),
            }
            print(json.dumps(record), flush=True)
        for path in (rust_out, pandas_out):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
