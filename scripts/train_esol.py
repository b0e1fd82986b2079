"""Train the ESOL solubility regressor and write the example model registry.

The model is a scikit-learn MLP on six ESOL descriptor columns, exported to
ONNX with standard ai.onnx operators only (no ai.onnx.ml domain) so that
tract-onnx can load it. Run from the repository root:

    PYTHONHASHSEED=0 python scripts/train_esol.py

Outputs:
    examples/registry/esol-solubility/1/model.onnx
    examples/registry/esol-solubility/1/manifest.json
    examples/registry/esol-solubility/aliases.json
    examples/esol_test_split.csv
    examples/esol-solubility.sidecar.json (metadata for `cargo run -p ingest`)

The model bytes depend only on the data, the seeds and the pinned versions in
scripts/requirements-train.txt. created_at is the only field that changes
between runs, unless SOURCE_DATE_EPOCH is set.
"""

import csv
import datetime
import hashlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = REPO_ROOT / "data" / "esol" / "delaney-processed.csv"
REGISTRY_DIR = REPO_ROOT / "examples" / "registry" / "esol-solubility"
TEST_SPLIT_PATH = REPO_ROOT / "examples" / "esol_test_split.csv"
SIDECAR_PATH = REPO_ROOT / "examples" / "esol-solubility.sidecar.json"

MODEL_NAME = "esol-solubility"
MODEL_VERSION = 1
TARGET_COLUMN = "measured log solubility in mols per litre"

# Column order is the order of the model's input vector, so it must not change
# without a new model version.
FEATURES = [
    ("Minimum Degree", None),
    ("Molecular Weight", "g/mol"),
    ("Number of H-Bond Donors", None),
    ("Number of Rings", None),
    ("Number of Rotatable Bonds", None),
    ("Polar Surface Area", "Å²"),
]
FEATURE_COLUMNS = [name for name, _ in FEATURES]

INPUT_NAME = "descriptors"
OUTPUT_NAME = "log_solubility"
TARGET_OPSET = 18
TEST_SIZE = 0.2
SPLIT_SEED = 0
SPLIT_DESCRIPTION = f"train_test_split(test_size={TEST_SIZE}, random_state={SPLIT_SEED})"
PREDICTION_COLUMN = "onnxruntime_prediction"

# Mapping from ONNX's empty default domain to the name used in the manifest.
DEFAULT_DOMAIN_NAME = "ai.onnx"


def read_raw_records(path):
    """Read the CSV as (header line, data lines) of original text.

    The test split file must repeat each row exactly as it appears in the
    source, with its quoting, trailing spaces and float text, so rows are kept
    as text instead of being re-serialised by pandas.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    header, data_lines = lines[0], lines[1:]

    # Copying rows line by line is only valid if no quoted field spans lines.
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    if len(parsed) != len(lines):
        raise ValueError(
            f"{path}: found {len(parsed)} CSV records in {len(lines)} lines, so a quoted "
            "field spans lines and rows cannot be copied line by line"
        )
    return header, data_lines


def build_pipeline():
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "mlp",
                MLPRegressor(hidden_layer_sizes=(64, 32), max_iter=5000, random_state=0),
            ),
        ]
    )


def export_onnx(pipeline):
    """Convert the fitted pipeline to ONNX and raise if it needs more than ai.onnx opset 18."""
    onx = convert_sklearn(
        pipeline,
        # A fixed graph name, because skl2onnx otherwise uses a random UUID
        # and the model bytes would change on every run.
        name="esol_solubility",
        initial_types=[(INPUT_NAME, FloatTensorType([None, len(FEATURE_COLUMNS)]))],
        final_types=[(OUTPUT_NAME, FloatTensorType([None, 1]))],
        target_opset={"": TARGET_OPSET},
        # "div" makes the scaler a Sub and a Div node, where the default is
        # the ai.onnx.ml Scaler operator.
        options={StandardScaler: {"div": "div"}},
    )
    onnx.checker.check_model(onx, full_check=True)

    ml_nodes = [n.op_type for n in onx.graph.node if n.domain not in ("", DEFAULT_DOMAIN_NAME)]
    if ml_nodes:
        raise RuntimeError(
            f"exported graph contains operators outside the ai.onnx domain: {ml_nodes}. "
            "Check the skl2onnx options"
        )

    opsets = {imp.domain or DEFAULT_DOMAIN_NAME: imp.version for imp in onx.opset_import}
    if set(opsets) != {DEFAULT_DOMAIN_NAME}:
        raise RuntimeError(f"exported model imports extra opset domains: {opsets}")
    if opsets[DEFAULT_DOMAIN_NAME] > TARGET_OPSET:
        raise RuntimeError(
            f"exported model imports ai.onnx opset {opsets[DEFAULT_DOMAIN_NAME]}, "
            f"expected at most {TARGET_OPSET}"
        )
    return onx, opsets


def check_io_signature(onx):
    """Raise if the graph's input and output names, types or shapes differ from the manifest."""

    def signature(value_info):
        tensor = value_info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        return value_info.name, tensor.elem_type, dims

    inputs = [signature(v) for v in onx.graph.input]
    outputs = [signature(v) for v in onx.graph.output]
    expected_inputs = [(INPUT_NAME, onnx.TensorProto.FLOAT, [-1, len(FEATURE_COLUMNS)])]
    expected_outputs = [(OUTPUT_NAME, onnx.TensorProto.FLOAT, [-1, 1])]
    if inputs != expected_inputs or outputs != expected_outputs:
        raise RuntimeError(
            f"exported signature is inputs={inputs} outputs={outputs}, "
            f"expected inputs={expected_inputs} outputs={expected_outputs}"
        )


def run_onnxruntime(model_bytes, x):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model_bytes, options, providers=["CPUExecutionProvider"]
    )
    (predictions,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    return predictions


def rmse(predicted, measured):
    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - measured) ** 2)))


def created_at_timestamp():
    """Return the RFC 3339 UTC creation time, taken from SOURCE_DATE_EPOCH when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        moment = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    else:
        moment = datetime.datetime.now(tz=datetime.timezone.utc)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_manifest(model_bytes, onx, opsets, test_rmse, train_rows, test_rows):
    return {
        "schema_version": 1,
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "description": (
            "MLP regressor that predicts measured aqueous solubility as log10(mol/L) "
            "from six ESOL (Delaney 2004) molecular descriptors."
        ),
        "created_at": created_at_timestamp(),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "size_bytes": len(model_bytes),
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(FEATURE_COLUMNS)]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, 1]}],
        "features": [{"name": name, "unit": unit} for name, unit in FEATURES],
        "labels": None,
        "opset_imports": opsets,
        "producer": {"name": onx.producer_name, "version": onx.producer_version},
        "metrics": {
            # RMSE of the exported ONNX model under onnxruntime, in log10(mol/L),
            # because that model is the one the registry serves.
            "test_rmse": test_rmse,
            "train_rows": train_rows,
            "test_rows": test_rows,
            "split": SPLIT_DESCRIPTION,
        },
    }


def write_test_split(header, data_lines, test_indices, predictions):
    """Write the test rows as in the source file, with the ONNX prediction appended."""
    with TEST_SPLIT_PATH.open("w", encoding="utf-8", newline="") as out:
        out.write(f"{header},{PREDICTION_COLUMN}\n")
        for row_index, prediction in zip(test_indices, predictions):
            out.write(f"{data_lines[row_index]},{float(prediction)!r}\n")


def write_sidecar(manifest, x_test, predictions):
    """Write the metadata sidecar that registers this model through ingest.

    It repeats the manifest's description, features and metrics, and holds
    the first five test rows with onnxruntime's outputs as samples, which
    ingest checks the served model against.
    """
    sidecar = {
        "description": manifest["description"],
        "features": manifest["features"],
        "samples": [{
            "inputs": {"descriptors": [[float(v) for v in row] for row in x_test[:5]]},
            "outputs": {"log_solubility": [[float(p)] for p in predictions[:5]]},
        }],
        "tolerance": {"absolute": 1e-5, "relative": 1e-4},
        "metrics": manifest["metrics"],
    }
    write_json(SIDECAR_PATH, sidecar)


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        print("warning: PYTHONHASHSEED is not 0; run with PYTHONHASHSEED=0", file=sys.stderr)

    header, data_lines = read_raw_records(DATA_PATH)
    frame = pd.read_csv(DATA_PATH)
    if len(frame) != len(data_lines):
        raise ValueError(f"pandas read {len(frame)} rows but the file has {len(data_lines)}")

    # The served model receives float32, so the pipeline is fitted and
    # evaluated on the same float32 values.
    x = frame[FEATURE_COLUMNS].to_numpy(dtype=np.float32)
    y = frame[TARGET_COLUMN].to_numpy(dtype=np.float64)
    train_indices, test_indices = train_test_split(
        np.arange(len(frame)), test_size=TEST_SIZE, random_state=SPLIT_SEED
    )

    pipeline = build_pipeline()
    # One BLAS thread makes the floating-point summation order, and so the
    # fitted weights, independent of the core count.
    # NOTE: OpenBLAS picks its kernels by CPU model, so another CPU may still
    # produce weights that differ in the last bits.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        pipeline.fit(x[train_indices], y[train_indices])
        sklearn_predictions = pipeline.predict(x[test_indices])

    onx, opsets = export_onnx(pipeline)
    check_io_signature(onx)
    model_bytes = onx.SerializeToString()

    onnx_predictions = run_onnxruntime(model_bytes, x[test_indices])[:, 0]
    sklearn_rmse = rmse(sklearn_predictions, y[test_indices])
    onnx_rmse = rmse(onnx_predictions, y[test_indices])
    max_abs_diff = float(
        np.max(np.abs(onnx_predictions.astype(np.float64) - sklearn_predictions))
    )

    version_dir = REGISTRY_DIR / str(MODEL_VERSION)
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "model.onnx").write_bytes(model_bytes)
    manifest = build_manifest(
        model_bytes, onx, opsets, onnx_rmse, len(train_indices), len(test_indices)
    )
    write_json(version_dir / "manifest.json", manifest)
    write_json(REGISTRY_DIR / "aliases.json", {"latest": MODEL_VERSION, "production": MODEL_VERSION})
    write_test_split(header, data_lines, test_indices, onnx_predictions)
    write_sidecar(manifest, x[test_indices], onnx_predictions)

    print(f"rows: train={len(train_indices)} test={len(test_indices)}")
    print(f"mlp iterations: {pipeline.named_steps['mlp'].n_iter_}")
    print(f"sklearn test RMSE:     {sklearn_rmse:.6f} log10(mol/L)")
    print(f"onnxruntime test RMSE: {onnx_rmse:.6f} log10(mol/L)")
    print(f"max abs difference sklearn vs onnxruntime: {max_abs_diff:.3e}")
    print(f"model: {version_dir / 'model.onnx'} ({len(model_bytes)} bytes, sha256 {manifest['sha256']})")
    print(f"producer: skl2onnx {skl2onnx.__version__}, onnxruntime {onnxruntime.__version__}")


if __name__ == "__main__":
    main()
