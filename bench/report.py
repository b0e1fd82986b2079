"""Write BENCHMARKS.md from the JSON lines that bench/run.sh collected."""

import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def batch_section(results):
    """Return the lines of the batch-scoring section, or none when bench/batch.py did not run."""
    batch = {(r["label"], r["rows"]): r for r in results if r["measure"] == "batch"}
    sizes = sorted({rows for _, rows in batch})
    if not sizes:
        return []
    lines = [
        "## Batch scoring: throughput and peak memory",
        "",
        "`bench/batch.py` writes CSV files of ESOL rows drawn at random (fixed seed) from",
        "`data/esol/delaney-processed.csv`, ten columns each, and scores every file twice: with the local command",
        "`target/release/batch-score FILE --model esol-solubility` (mini-batches of 1024 rows, all columns passed",
        "through), and with `bench/python/batch_pandas.py`, which does what users write by hand: `pandas.read_csv` in",
        "chunks of 100000 rows, `InferenceSession.run` on the six feature columns, `to_csv` of every column and the",
        "prediction. Times run from process start to exit, model loading included. Peak RSS is the process's",
        "`ru_maxrss`. One run per size.",
        "",
        "| Rows | Input MB | Rust rows/s | Rust peak RSS MB | pandas + onnxruntime rows/s | pandas peak RSS MB | Rust / pandas throughput |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rows in sizes:
        rust, pandas = batch.get(("rust-batch-score", rows)), batch.get(("pandas-onnxruntime", rows))
        if rust and pandas:
            lines.append(
                f"| {rows:,} | {rust['input_mb']:.0f} | {rust['rows_per_s']:,} | {rust['max_rss_mb']:.0f} | "
                f"{pandas['rows_per_s']:,} | {pandas['max_rss_mb']:.0f} | {rust['rows_per_s'] / pandas['rows_per_s']:.2f}x |"
            )
    lines += [
        "",
        "Goal: at least 1.0x the throughput of pandas + onnxruntime, with peak RSS flat as files grow.",
        "Peak RSS follows the number of worker threads a run has started, not the file size: sampling",
        "`/proc/<pid>/status` every 0.5 s during a 10^7-row run showed VmRSS reach its peak within 1.5 s,",
        "once the threads were running, and stay there until exit.",
        "",
    ]
    return lines


def package_section():
    """Zip sizes that the last `make build` recorded, when there was one."""
    path = ROOT / "target" / "lambda" / "sizes.json"
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    lines = [
        "## Deployment packages",
        "",
        f"`make build` (`cargo lambda build --release --{record['arch']}`, LTO, stripped) at commit `{record['commit']}`:",
        "one `bootstrap.zip` per function. Goal: 10 MB or less each.",
        "",
        "| Function | zip bytes | MB |",
        "| --- | --- | --- |",
    ]
    for name, size in record["sizes"].items():
        lines.append(f"| {name} | {size:,} | {size / 1e6:.2f} |")
    return lines + [""]


def main():
    results = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    command = sys.argv[2]
    cold = {r["label"]: r for r in results if r["measure"] == "cold_start"}
    warm = {(r["measure"], r["batch"]): r for r in results if "batch" in r}
    rust, python = cold["rust-predict"], cold["python-onnxruntime"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` at commit `{commit}` on {cpu_model()} ({cores} cores), Linux {platform.release()}.",
        "Model: `examples/registry/esol-solubility/1` (scikit-learn MLP, 6 inputs, 64 and 32 hidden units).",
        "Rust: release profile with LTO, as `make build` deploys it. Python: CPython "
        f"{platform.python_version()} with onnxruntime and boto3 from `bench/requirements.txt`.",
        "",
        "## Predict: cold start",
        "",
        "From starting the bootstrap process to the first successful prediction. A Lambda Runtime API emulator on",
        "loopback (`bench/cold_start.py`) serves one API Gateway event; the model is fetched from a moto S3 server on",
        "loopback. The Python handler (`bench/python/`) imports boto3, numpy and onnxruntime at start, as a deployed",
        "handler does, and runs a minimal runtime loop that does less than AWS's runtime interface client.",
        "",
        "| Function | runs | median ms | min ms | max ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, r in [("Rust predict (tract)", rust), ("Python handler (onnxruntime + boto3)", python)]:
        lines.append(f"| {name} | {r['runs']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['max_ms']:.1f} |")
    ratio = python["median_ms"] / rust["median_ms"]
    lines += ["", f"Python takes {ratio:.1f}x as long as Rust to its first prediction (goal: at least 10x).", ""]

    lines += [
        "## Predict: warm in-process latency",
        "",
        "One request after the model is cached, timed inside the process (`bench/src/bin/warm.rs`). `service` is",
        "the whole Open Inference Protocol path inside a running Tokio runtime, as a warm invocation runs it: route,",
        "parse the JSON request, validate it, look up the cached model, run it and encode the JSON response.",
        "`hand-written tract handler` does the same JSON work with serde_json and tract and nothing else: no",
        "validation, registry or cache. `raw tract` only builds the input tensor, runs the same optimised plan and",
        "reads the output. The two `service:` rows time parts of the service alone. The Python rows do the same work",
        "with onnxruntime (`bench/python/warm.py`).",
        "",
        "| Work | batch | median µs | p99 µs |",
        "| --- | --- | --- | --- |",
    ]
    names = [("service_v2_json", "Rust service, V2 JSON"), ("tract_json_handler", "hand-written tract handler, V2 JSON"),
             ("raw_tract", "raw tract"), ("service_model_lookup", "service: cached model lookup"),
             ("service_runtime_run", "service: runtime `run`"),
             ("python_onnxruntime_handler", "Python handler, V2 JSON"), ("raw_onnxruntime", "raw onnxruntime")]
    for batch in (1, 64):
        for key, label in names:
            r = warm.get((key, batch))
            if r:
                lines.append(f"| {label} | {batch} | {r['median_us']:.1f} | {r['p99_us']:.1f} |")
    lines.append("")
    for batch in (1, 64):
        service, handler, tract = (warm[(key, batch)] for key in ("service_v2_json", "tract_json_handler", "raw_tract"))
        extra = service["median_us"] - handler["median_us"]
        overhead = (service["median_us"] / handler["median_us"] - 1) * 100
        bare = service["median_us"] - tract["median_us"]
        lines.append(
            f"- Batch {batch}: the service adds {extra:.1f} µs ({overhead:.0f}%) to the hand-written tract handler "
            f"(goal: at most 10%), and {bare:.1f} µs ({(service['median_us'] / tract['median_us'] - 1) * 100:.0f}%) "
            "to raw tract, JSON parsing and encoding included."
        )
    lines.append("")

    trees = {(r["measure"], r["rows"]): r for r in results if "rows" in r and r["measure"].endswith("_trees")}
    if trees:
        lines += [
            "## Tree ensembles",
            "",
            "`tests/fixtures/sklearn/esol_rf_classifier.onnx`: scikit-learn RandomForestClassifier, 100 trees, depth 8,",
            "exported with skl2onnx. `service` is this project's flat-array evaluator (`bench/src/bin/trees.rs`), `tract`",
            "is tract-onnx 0.23.9's own TreeEnsembleClassifier, and onnxruntime runs with one thread (`bench/python/trees.py`).",
            "",
            "| Evaluator | 1 row, µs | 1000 rows, µs | per row in 1000, µs |",
            "| --- | --- | --- | --- |",
        ]
        for key, label in [("service_trees", "service"), ("tract_trees", "tract 0.23.9"), ("onnxruntime_trees", "onnxruntime")]:
            one, thousand = trees.get((key, 1)), trees.get((key, 1000))
            if one and thousand:
                lines.append(f"| {label} | {one['median_us']:.1f} | {thousand['median_us']:.0f} | {thousand['median_us'] / 1000:.2f} |")
        ours, ort = trees.get(("service_trees", 1000)), trees.get(("onnxruntime_trees", 1000))
        if ours and ort:
            lines += ["", f"The service takes {ours['median_us'] / ort['median_us']:.2f}x onnxruntime's time for 1000 rows "
                      f"and {trees[('service_trees', 1)]['median_us'] / trees[('onnxruntime_trees', 1)]['median_us']:.2f}x "
                      "for one row (goal: at most 2x).", ""]
    lines += batch_section(results)
    lines += package_section()
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
