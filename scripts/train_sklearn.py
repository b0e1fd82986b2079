"""Export small scikit-learn models and hand-built tree ensembles as ONNX test fixtures.

The fixtures test the Rust runtime's own implementations of the ai.onnx.ml
operators that skl2onnx writes and tract-onnx lacks, and the `ingest`
command's checks. This script trains one small model per operator on the ESOL
and airfoil data in data/, exports it with skl2onnx defaults (what users
upload), runs it in onnxruntime and writes, for each case, into
tests/fixtures/sklearn/:

    <case>.onnx           the model
    <case>.json           the metadata sidecar that `ingest` validates, with
                          5 test rows run as one batch
    <case>.expected.json  64 test rows run as one batch, for the Rust tests
    INDEX.json            operators, opsets, signature, metrics and size of
                          every case

The trees_* cases are built with onnx.helper instead of scikit-learn, to
reach branch modes, aggregate functions and post transforms that skl2onnx
never writes. Run from the repository root with the environment of
scripts/requirements-train.txt:

    PYTHONHASHSEED=0 python scripts/train_sklearn.py

With those versions, two runs on the same machine write identical files. The
script reads no clock.
"""

import hashlib
import json
import math
import os
import platform
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import skl2onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
    StringTensorType,
)
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    Binarizer,
    LabelEncoder,
    Normalizer,
    OneHotEncoder,
    StandardScaler,
)
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

REPO_ROOT = Path(__file__).resolve().parent.parent
ESOL_PATH = REPO_ROOT / "data" / "esol" / "delaney-processed.csv"
AIRFOIL_PATH = REPO_ROOT / "data" / "airfoil" / "airfoil_self_noise.dat"
FIXTURE_DIR = REPO_ROOT / "tests" / "fixtures" / "sklearn"

TEST_SIZE = 0.2
SPLIT_SEED = 0
SPLIT_DESCRIPTION = f"train_test_split(test_size={TEST_SIZE}, random_state={SPLIT_SEED})"
SAMPLE_ROWS = 5
EXPECTED_ROWS = 64
TOLERANCE = {"absolute": 1e-5, "relative": 1e-4}

# Column order is the order of the model input vector.
ESOL_FEATURES = [
    ("Minimum Degree", None),
    ("Molecular Weight", "g/mol"),
    ("Number of H-Bond Donors", None),
    ("Number of Rings", None),
    ("Number of Rotatable Bonds", None),
    ("Polar Surface Area", "Å²"),
]
ESOL_COLUMNS = [name for name, _ in ESOL_FEATURES]
ESOL_TARGET = "measured log solubility in mols per litre"
ESOL_PREDICTED = "ESOL predicted log solubility in mols per litre"
ESOL_UNIT = "log10(mol/L)"
ESOL_INPUT = "descriptors"
# logS above this is labelled soluble (1), at or below it insoluble (0).
SOLUBLE_THRESHOLD = -3.0
# Three-class bins: logS < -4 is poor, -4 <= logS <= -2 moderate, logS > -2 high.
POOR_BELOW = -4.0
HIGH_ABOVE = -2.0

AIRFOIL_FEATURES = [
    ("frequency_hz", "Hz"),
    ("angle_of_attack_deg", "deg"),
    ("chord_length_m", "m"),
    ("free_stream_velocity_m_per_s", "m/s"),
    ("suction_side_displacement_thickness_m", "m"),
]
AIRFOIL_COLUMNS = ["X0", "X1", "X2", "X3", "X4"]
AIRFOIL_TARGET_COLUMN = "TARGET"
AIRFOIL_TARGET = "scaled_sound_pressure_level_db"
AIRFOIL_UNIT = "dB"
AIRFOIL_INPUT = "features"

# Share of ESOL descriptor values replaced by NaN for the imputer case.
MISSING_FRACTION = 0.05
MISSING_SEED = 0

# The opset-3 forms of TreeEnsembleRegressor that store float64 values.
AS_TENSOR_ATTRIBUTES = ("base_values_as_tensor", "nodes_values_as_tensor", "target_weights_as_tensor")

# Hand-built models import these opsets. IR version 8 came with opset 18 in
# onnx 1.13. Without it, make_model writes the newest IR version that the
# installed onnx supports (14 for onnx 1.23.2), which older runtimes reject.
HAND_BUILT_OPSET = 18
HAND_BUILT_ML_OPSET = 3
HAND_BUILT_IR_VERSION = 8
HAND_BUILT_PRODUCER = "train_sklearn.py"
HAND_BUILT_ESTIMATOR = "none: built with onnx.helper"

DEFAULT_DOMAIN_NAME = "ai.onnx"

# KServe V2 inference protocol datatype names, keyed by numpy dtype.
KSERVE_DATATYPES = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(object): "BYTES",
}
ONNX_TO_KSERVE = {
    TensorProto.FLOAT: "FP32",
    TensorProto.DOUBLE: "FP64",
    TensorProto.INT64: "INT64",
    TensorProto.STRING: "BYTES",
}


# ---------------------------------------------------------------------------
# Data


@dataclass
class Dataset:
    frame: pd.DataFrame
    train: np.ndarray
    test: np.ndarray


def load_esol():
    frame = pd.read_csv(ESOL_PATH)
    train, test = train_test_split(
        np.arange(len(frame)), test_size=TEST_SIZE, random_state=SPLIT_SEED
    )
    return Dataset(frame, train, test)


def load_airfoil():
    frame = pd.read_csv(AIRFOIL_PATH, sep="\t")
    expected_header = AIRFOIL_COLUMNS + [AIRFOIL_TARGET_COLUMN]
    if list(frame.columns) != expected_header:
        raise ValueError(
            f"{AIRFOIL_PATH}: header is {list(frame.columns)}, expected {expected_header}"
        )
    train, test = train_test_split(
        np.arange(len(frame)), test_size=TEST_SIZE, random_state=SPLIT_SEED
    )
    return Dataset(frame, train, test)


def esol_descriptors(esol):
    # The served models receive float32, so they are fitted on the same values.
    return esol.frame[ESOL_COLUMNS].to_numpy(dtype=np.float32)


def esol_log_solubility(esol):
    return esol.frame[ESOL_TARGET].to_numpy(dtype=np.float64)


def esol_binary_labels(esol):
    return (esol_log_solubility(esol) > SOLUBLE_THRESHOLD).astype(np.int64)


def esol_three_class_indices(esol):
    """Return 0 for poor, 1 for moderate and 2 for high solubility."""
    log_s = esol_log_solubility(esol)
    return np.where(log_s < POOR_BELOW, 0, np.where(log_s > HIGH_ABOVE, 2, 1)).astype(np.int64)


def esol_three_class_strings(esol):
    names = np.array(["poor", "moderate", "high"], dtype=object)
    return names[esol_three_class_indices(esol)]


def esol_features_json():
    return [{"name": name, "unit": unit} for name, unit in ESOL_FEATURES]


def airfoil_features_json():
    return [{"name": name, "unit": unit} for name, unit in AIRFOIL_FEATURES]


# ---------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """One fixture: the model, the inputs to record and the facts that INDEX.json lists."""

    stem: str
    description: str
    model: onnx.ModelProto
    estimator: str
    sample_feeds: dict
    expected_feeds: dict
    export: dict
    features: list | None = None
    labels: list | None = None
    exposed_outputs: list | None = None
    metrics: dict | None = None
    notes: list = field(default_factory=list)
    # Name to {"note", "feeds"}: further inputs recorded in expected.json.
    extra_cases: dict = field(default_factory=dict)


def estimator_text(estimator):
    """Return scikit-learn's repr of the estimator on one line."""
    return re.sub(r"\s+", " ", repr(estimator)).replace("( ", "(").replace("[ ", "[")


def export_settings(options=None, target_opset=None, final_types=None):
    settings = {
        "tool": f"skl2onnx {skl2onnx.__version__}",
        "target_opset": "default" if target_opset is None else target_opset,
        "options": "none" if options is None else options,
    }
    if final_types is not None:
        settings["final_types"] = final_types
    return settings


def to_onnx(estimator, stem, initial_types, options=None, target_opset=None, final_types=None):
    return convert_sklearn(
        estimator,
        # A fixed graph name, because skl2onnx otherwise uses a random UUID
        # and the model bytes would change on every run.
        name=stem,
        initial_types=initial_types,
        options=options,
        target_opset=target_opset,
        final_types=final_types,
    )


def first_rows(array, indices, count):
    return array[indices[:count]]


def table_feeds(input_name, array, indices):
    """Return the sample feed (first 5 rows of indices) and the expected feed (first 64)."""
    return (
        {input_name: first_rows(array, indices, SAMPLE_ROWS)},
        {input_name: first_rows(array, indices, EXPECTED_ROWS)},
    )


def rmse(predicted, measured):
    difference = np.asarray(predicted, dtype=np.float64) - np.asarray(measured, dtype=np.float64)
    return float(np.sqrt(np.mean(difference**2)))


def regression_metrics(model, feeds, sklearn_predictions, measured, output_name, target, unit):
    """Compare sklearn and onnxruntime predictions on the full test split.

    target is the target's name, or a list of names for a multi-target model.
    """
    onnx_predictions = onnxruntime_tensors(model, feeds)[output_name]
    onnx_predictions = onnx_predictions.reshape(len(measured), -1).astype(np.float64)
    sklearn_predictions = np.asarray(sklearn_predictions, dtype=np.float64).reshape(len(measured), -1)
    measured = np.asarray(measured, dtype=np.float64).reshape(len(measured), -1)
    targets = measured.shape[1]
    rmse_sklearn = [rmse(sklearn_predictions[:, t], measured[:, t]) for t in range(targets)]
    rmse_onnx = [rmse(onnx_predictions[:, t], measured[:, t]) for t in range(targets)]
    return {
        "kind": "regression",
        "test_rows": len(measured),
        "target": target,
        "unit": unit,
        # One value per target for multi-target models.
        "rmse_sklearn": rmse_sklearn[0] if targets == 1 else rmse_sklearn,
        "rmse_onnxruntime": rmse_onnx[0] if targets == 1 else rmse_onnx,
        "max_abs_difference_sklearn_onnxruntime": float(
            np.max(np.abs(onnx_predictions - sklearn_predictions))
        ),
    }


def classification_metrics(model, feeds, estimator, x_test, y_test, label_output, probability_output):
    """Compare sklearn and onnxruntime labels and probabilities on the full test split."""
    outputs = onnxruntime_tensors(model, feeds)
    onnx_labels = outputs[label_output]
    onnx_probabilities = outputs[probability_output].astype(np.float64)
    sklearn_labels = estimator.predict(x_test)
    sklearn_probabilities = estimator.predict_proba(x_test)
    return {
        "kind": "classification",
        "test_rows": len(y_test),
        "accuracy_sklearn": float(np.mean(sklearn_labels == y_test)),
        "accuracy_onnxruntime": float(np.mean(onnx_labels == y_test)),
        "label_agreement_sklearn_onnxruntime": float(np.mean(onnx_labels == sklearn_labels)),
        "max_abs_probability_difference_sklearn_onnxruntime": float(
            np.max(np.abs(onnx_probabilities - sklearn_probabilities))
        ),
    }


def fit(estimator, x, y):
    # One BLAS thread keeps the summation order, and so the fitted weights,
    # independent of the core count. A ConvergenceWarning fails the run,
    # because a model that stopped early would change with small edits.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        estimator.fit(x, y)
    return estimator


def esol_regression_case(esol, stem, description, estimator):
    """Fit a single-target ESOL regressor on the six descriptors and export it with defaults."""
    x = esol_descriptors(esol)
    y = esol_log_solubility(esol)
    fit(estimator, x[esol.train], y[esol.train])
    model = to_onnx(estimator, stem, [(ESOL_INPUT, FloatTensorType([None, x.shape[1]]))])
    sample_feeds, expected_feeds = table_feeds(ESOL_INPUT, x, esol.test)
    metrics = regression_metrics(
        model,
        {ESOL_INPUT: x[esol.test]},
        estimator.predict(x[esol.test]),
        y[esol.test],
        model.graph.output[0].name,
        ESOL_TARGET,
        ESOL_UNIT,
    )
    return Case(
        stem=stem,
        description=description,
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(),
        features=esol_features_json(),
        metrics=metrics,
    )


def esol_classifier_case(
    esol, stem, description, estimator, y, options=None, exposed_outputs=None, fitted=False
):
    """Export an ESOL classifier on the six descriptors, fitting it first unless fitted."""
    x = esol_descriptors(esol)
    if not fitted:
        fit(estimator, x[esol.train], y[esol.train])
    model = to_onnx(
        estimator, stem, [(ESOL_INPUT, FloatTensorType([None, x.shape[1]]))], options=options
    )
    label_output, probability_output = (o.name for o in model.graph.output)
    sample_feeds, expected_feeds = table_feeds(ESOL_INPUT, x, esol.test)
    metrics = classification_metrics(
        model,
        {ESOL_INPUT: x[esol.test]},
        estimator,
        x[esol.test],
        y[esol.test],
        label_output,
        probability_output,
    )
    return Case(
        stem=stem,
        description=description,
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(options=describe_options(options)),
        features=esol_features_json(),
        labels=[label_to_json(label) for label in estimator.classes_],
        exposed_outputs=exposed_outputs,
        metrics=metrics,
    )


def describe_options(options):
    """Return skl2onnx options keyed by estimator class name, for INDEX.json."""
    if options is None:
        return None
    return {key.__name__: value for key, value in options.items()}


def label_to_json(label):
    return label if isinstance(label, str) else int(label)


def case_esol_scaler_mlp(esol):
    estimator = Pipeline(
        [
            ("scaler", StandardScaler()),
            (
                "mlp",
                MLPRegressor(hidden_layer_sizes=(32, 16), random_state=0, max_iter=2000),
            ),
        ]
    )
    return esol_regression_case(
        esol,
        "esol_scaler_mlp",
        "StandardScaler and MLP regressor that predict measured solubility, log10(mol/L), "
        "from six ESOL descriptors.",
        estimator,
    )


def case_esol_rf_regressor(esol):
    estimator = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0)
    return esol_regression_case(
        esol,
        "esol_rf_regressor",
        "Random forest of 50 trees that predicts measured solubility, log10(mol/L), "
        "from six ESOL descriptors.",
        estimator,
    )


def case_esol_rf_multitarget(esol):
    stem = "esol_rf_multitarget"
    x = esol_descriptors(esol)
    y = esol.frame[[ESOL_TARGET, ESOL_PREDICTED]].to_numpy(dtype=np.float64)
    estimator = RandomForestRegressor(n_estimators=30, max_depth=6, random_state=0)
    fit(estimator, x[esol.train], y[esol.train])
    model = to_onnx(estimator, stem, [(ESOL_INPUT, FloatTensorType([None, x.shape[1]]))])
    sample_feeds, expected_feeds = table_feeds(ESOL_INPUT, x, esol.test)
    metrics = regression_metrics(
        model,
        {ESOL_INPUT: x[esol.test]},
        estimator.predict(x[esol.test]),
        y[esol.test],
        model.graph.output[0].name,
        [ESOL_TARGET, ESOL_PREDICTED],
        ESOL_UNIT,
    )
    return Case(
        stem=stem,
        description=(
            "Random forest of 30 trees with two outputs per row: measured solubility and "
            "the ESOL equation's predicted solubility, both log10(mol/L)."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(),
        features=esol_features_json(),
        metrics=metrics,
    )


def airfoil_arrays(airfoil, dtype):
    x = airfoil.frame[AIRFOIL_COLUMNS].to_numpy(dtype=dtype)
    y = airfoil.frame[AIRFOIL_TARGET_COLUMN].to_numpy(dtype=np.float64)
    return x, y


def case_airfoil_gbr(airfoil):
    stem = "airfoil_gbr"
    x, y = airfoil_arrays(airfoil, np.float32)
    estimator = GradientBoostingRegressor(n_estimators=200, max_depth=4, random_state=0)
    fit(estimator, x[airfoil.train], y[airfoil.train])
    model = to_onnx(estimator, stem, [(AIRFOIL_INPUT, FloatTensorType([None, x.shape[1]]))])
    sample_feeds, expected_feeds = table_feeds(AIRFOIL_INPUT, x, airfoil.test)
    metrics = regression_metrics(
        model,
        {AIRFOIL_INPUT: x[airfoil.test]},
        estimator.predict(x[airfoil.test]),
        y[airfoil.test],
        model.graph.output[0].name,
        AIRFOIL_TARGET,
        AIRFOIL_UNIT,
    )
    return Case(
        stem=stem,
        description=(
            "Gradient boosting regressor of 200 trees that predicts the scaled sound pressure "
            "level, dB, of an airfoil from five wind-tunnel inputs."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(),
        features=airfoil_features_json(),
        metrics=metrics,
    )


# Target opsets tried, in order, for the float64 gradient boosting export.
GBR_DOUBLE_TARGET_OPSETS = [
    {"": 18, "ai.onnx.ml": 3},
    {"": 21, "ai.onnx.ml": 4},
    {"": 22, "ai.onnx.ml": 5},
    None,
]
GBR_DOUBLE_FINAL_OPSET = {"": 18, "ai.onnx.ml": 3}


def export_gbr_double(estimator, stem, n_features):
    """Export with a float64 input and return the model, the attempts made and the settings.

    The opset-3 TreeEnsembleRegressor can store thresholds and weights as
    float64 tensors (*_as_tensor). Each target opset in
    GBR_DOUBLE_TARGET_OPSETS is tried, and the first export that has all
    three *_as_tensor attributes and loads in onnxruntime is used. If none
    does, the output is declared float32 with final_types, because
    TreeEnsembleRegressor always returns float32 and skl2onnx otherwise
    declares a float64 output that onnxruntime rejects.
    """
    initial_types = [(AIRFOIL_INPUT, DoubleTensorType([None, n_features]))]
    attempts = []
    for target_opset in GBR_DOUBLE_TARGET_OPSETS:
        attempt = {"target_opset": "default" if target_opset is None else target_opset}
        try:
            model = to_onnx(estimator, stem, initial_types, target_opset=target_opset)
        except RuntimeError as error:
            attempt["skl2onnx_error"] = str(error)
            attempts.append(attempt)
            continue
        attempt["as_tensor_attributes"] = sorted(as_tensor_attribute_names(model))
        attempt["onnxruntime_error"] = onnxruntime_load_error(model)
        attempts.append(attempt)
        if set(AS_TENSOR_ATTRIBUTES) <= set(attempt["as_tensor_attributes"]) and (
            attempt["onnxruntime_error"] is None
        ):
            return model, attempts, export_settings(target_opset=target_opset)

    output_name = "variable"
    final_types = [(output_name, FloatTensorType([None, 1]))]
    model = to_onnx(
        estimator,
        stem,
        initial_types,
        target_opset=GBR_DOUBLE_FINAL_OPSET,
        final_types=final_types,
    )
    settings = export_settings(
        target_opset=GBR_DOUBLE_FINAL_OPSET,
        final_types=[{"name": output_name, "type": "FloatTensorType([None, 1])"}],
    )
    return model, attempts, settings


def as_tensor_attribute_names(model):
    return {
        attribute.name
        for node in model.graph.node
        for attribute in node.attribute
        if attribute.name.endswith("_as_tensor")
    }


def case_airfoil_gbr_double(airfoil):
    stem = "airfoil_gbr_double"
    x, y = airfoil_arrays(airfoil, np.float64)
    estimator = GradientBoostingRegressor(n_estimators=100, max_depth=4, random_state=0)
    fit(estimator, x[airfoil.train], y[airfoil.train])
    model, attempts, settings = export_gbr_double(estimator, stem, x.shape[1])
    settings["attempts"] = attempts

    found = as_tensor_attribute_names(model)
    notes = []
    if not set(AS_TENSOR_ATTRIBUTES) <= found:
        # NOTE: skl2onnx 1.20.0 has no code path that writes *_as_tensor
        # attributes, so this model stores float32 thresholds and weights
        # even though its input is float64. trees_double_as_tensor covers
        # the opset-3 attribute forms instead.
        notes.append(
            "skl2onnx wrote none of "
            + ", ".join(AS_TENSOR_ATTRIBUTES)
            + " for any target opset tried (see INDEX.json export.attempts), so thresholds "
            "and weights are float32 attributes, and the output is declared FP32 with final_types."
        )
        print(
            f"{stem}: skl2onnx {skl2onnx.__version__} wrote no *_as_tensor attributes for any of "
            f"{len(attempts)} target opsets, so the model keeps float32 attributes and declares "
            "its output with final_types",
            file=sys.stderr,
        )

    sample_feeds, expected_feeds = table_feeds(AIRFOIL_INPUT, x, airfoil.test)
    metrics = regression_metrics(
        model,
        {AIRFOIL_INPUT: x[airfoil.test]},
        estimator.predict(x[airfoil.test]),
        y[airfoil.test],
        model.graph.output[0].name,
        AIRFOIL_TARGET,
        AIRFOIL_UNIT,
    )
    return Case(
        stem=stem,
        description=(
            "Gradient boosting regressor of 100 trees with a float64 input that predicts the "
            "scaled sound pressure level, dB, of an airfoil from five wind-tunnel inputs."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=settings,
        features=airfoil_features_json(),
        metrics=metrics,
        notes=notes,
    )


def binary_forest(esol):
    x = esol_descriptors(esol)
    y = esol_binary_labels(esol)
    estimator = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0)
    return fit(estimator, x[esol.train], y[esol.train])


def case_esol_rf_classifier_zipmap(esol, forest):
    return esol_classifier_case(
        esol,
        "esol_rf_classifier_zipmap",
        "Random forest of 100 trees that classifies a compound as soluble (1, logS > -3) or "
        "insoluble (0). The probabilities pass through ZipMap.",
        forest,
        esol_binary_labels(esol),
        fitted=True,
    )


def case_esol_rf_classifier(esol, forest):
    return esol_classifier_case(
        esol,
        "esol_rf_classifier",
        "The forest of esol_rf_classifier_zipmap exported without ZipMap, so the "
        "probabilities are one FP32 tensor.",
        forest,
        esol_binary_labels(esol),
        options={RandomForestClassifier: {"zipmap": False}},
        fitted=True,
    )


def case_esol_rf_multiclass_strings(esol):
    estimator = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)
    return esol_classifier_case(
        esol,
        "esol_rf_multiclass_strings",
        "Random forest of 50 trees that classifies solubility as poor (logS < -4), moderate "
        "or high (logS > -2), with string labels and ZipMap.",
        estimator,
        esol_three_class_strings(esol),
    )


def case_esol_gb_classifier(esol):
    estimator = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0)
    return esol_classifier_case(
        esol,
        "esol_gb_classifier",
        "Gradient boosting classifier of 100 trees that classifies a compound as soluble "
        "(1, logS > -3) or insoluble (0).",
        estimator,
        esol_binary_labels(esol),
        options={GradientBoostingClassifier: {"zipmap": False}},
    )


def case_esol_gb_multiclass(esol):
    estimator = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=0)
    return esol_classifier_case(
        esol,
        "esol_gb_multiclass",
        "Gradient boosting classifier of 50 rounds that classifies solubility as 0 (poor, "
        "logS < -4), 1 (moderate) or 2 (high, logS > -2). The sidecar exposes only the "
        "probabilities.",
        estimator,
        esol_three_class_indices(esol),
        options={GradientBoostingClassifier: {"zipmap": False}},
        exposed_outputs=["probabilities"],
    )


def case_esol_logistic(esol):
    estimator = Pipeline(
        [("scaler", StandardScaler()), ("logistic", LogisticRegression(max_iter=1000))]
    )
    return esol_classifier_case(
        esol,
        "esol_logistic",
        "StandardScaler and logistic regression that classify a compound as soluble "
        "(1, logS > -3) or insoluble (0).",
        estimator,
        esol_binary_labels(esol),
        options={LogisticRegression: {"zipmap": False}},
    )


def case_esol_linear(esol):
    return esol_regression_case(
        esol,
        "esol_linear",
        "Linear regression that predicts measured solubility, log10(mol/L), from six ESOL "
        "descriptors.",
        LinearRegression(),
    )


def esol_descriptors_with_missing(esol):
    """Return the descriptors with a seeded 5% of all values replaced by NaN."""
    x = esol_descriptors(esol).copy()
    rng = np.random.default_rng(MISSING_SEED)
    x[rng.random(x.shape) < MISSING_FRACTION] = np.nan
    return x


def case_esol_imputer(esol):
    stem = "esol_imputer"
    x = esol_descriptors_with_missing(esol)
    y = esol_log_solubility(esol)
    estimator = Pipeline(
        [("imputer", SimpleImputer(strategy="median")), ("linear", LinearRegression())]
    )
    fit(estimator, x[esol.train], y[esol.train])
    model = to_onnx(estimator, stem, [(ESOL_INPUT, FloatTensorType([None, x.shape[1]]))])

    # JSON has no NaN, so the sidecar samples use complete rows only, while
    # expected.json writes NaN as the string "NaN".
    complete_test_rows = esol.test[~np.isnan(x[esol.test]).any(axis=1)]
    expected_rows = first_rows(x, esol.test, EXPECTED_ROWS)
    missing_rows = int(np.isnan(expected_rows).any(axis=1).sum())
    if missing_rows == 0:
        raise RuntimeError(f"{stem}: none of the first {EXPECTED_ROWS} test rows has a NaN")

    metrics = regression_metrics(
        model,
        {ESOL_INPUT: x[esol.test]},
        estimator.predict(x[esol.test]),
        y[esol.test],
        model.graph.output[0].name,
        ESOL_TARGET,
        ESOL_UNIT,
    )
    metrics["missing_values"] = {
        "fraction": MISSING_FRACTION,
        "seed": MISSING_SEED,
        "nan_count_all_rows": int(np.isnan(x).sum()),
        "expected_rows_with_nan": missing_rows,
    }
    return Case(
        stem=stem,
        description=(
            "Median imputer and linear regression, trained with 5% of descriptor values "
            "missing, that predict measured solubility, log10(mol/L)."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds={ESOL_INPUT: first_rows(x, complete_test_rows, SAMPLE_ROWS)},
        expected_feeds={ESOL_INPUT: expected_rows},
        export=export_settings(),
        features=esol_features_json(),
        metrics=metrics,
        notes=[
            f'NaN input values are written as the string "NaN", and {missing_rows} of the '
            f"{EXPECTED_ROWS} rows contain one. The sidecar samples are the first "
            f"{SAMPLE_ROWS} complete test rows."
        ],
    )


def case_esol_normalizer(esol):
    estimator = Pipeline([("normalizer", Normalizer(norm="l2")), ("linear", LinearRegression())])
    return esol_regression_case(
        esol,
        "esol_normalizer",
        "Row-wise L2 normalizer and linear regression that predict measured solubility, "
        "log10(mol/L).",
        estimator,
    )


def case_esol_binarizer(esol):
    # Columns 2 and 3 are the H-bond donor and ring counts, which become
    # "more than one" flags. The others pass through unchanged.
    estimator = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("binarize", Binarizer(threshold=1.0), [2, 3]),
                        ("keep", "passthrough", [0, 1, 4, 5]),
                    ]
                ),
            ),
            ("linear", LinearRegression()),
        ]
    )
    return esol_regression_case(
        esol,
        "esol_binarizer",
        "Binarizer (threshold 1.0) on the H-bond donor and ring counts, the other "
        "descriptors passed through, then linear regression of measured solubility, "
        "log10(mol/L).",
        estimator,
    )


def case_esol_column_transformer(esol):
    estimator = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("scale", StandardScaler(), [1, 5]),
                        ("keep", "passthrough", [0, 2, 3, 4]),
                    ]
                ),
            ),
            ("forest", RandomForestRegressor(n_estimators=20, max_depth=5, random_state=0)),
        ]
    )
    return esol_regression_case(
        esol,
        "esol_column_transformer",
        "StandardScaler on molecular weight and polar surface area, the counts passed "
        "through, then a random forest of 20 trees that predicts measured solubility, "
        "log10(mol/L).",
        estimator,
    )


# Inputs of esol_feature_vectorizer: measured quantities as float32 and counts as int64.
VECTORIZER_MEASURES = ["Molecular Weight", "Polar Surface Area"]
VECTORIZER_COUNTS = [
    "Minimum Degree",
    "Number of H-Bond Donors",
    "Number of Rings",
    "Number of Rotatable Bonds",
]


def case_esol_feature_vectorizer(esol):
    """Export a scaler with two inputs, which skl2onnx joins with FeatureVectorizer.

    A ColumnTransformer produces Concat instead, so this case is the only one
    that writes ai.onnx.ml FeatureVectorizer.
    """
    stem = "esol_feature_vectorizer"
    measures = esol.frame[VECTORIZER_MEASURES].to_numpy(dtype=np.float32)
    counts = esol.frame[VECTORIZER_COUNTS].to_numpy(dtype=np.int64)
    # FeatureVectorizer concatenates its inputs in this order.
    x = np.hstack([measures, counts.astype(np.float32)])
    y = esol_log_solubility(esol)
    estimator = Pipeline([("scaler", StandardScaler()), ("linear", LinearRegression())])
    fit(estimator, x[esol.train], y[esol.train])
    initial_types = [
        ("measures", FloatTensorType([None, len(VECTORIZER_MEASURES)])),
        ("counts", Int64TensorType([None, len(VECTORIZER_COUNTS)])),
    ]
    model = to_onnx(estimator, stem, initial_types)

    def feeds(indices, count=None):
        chosen = indices if count is None else indices[:count]
        return {"measures": measures[chosen], "counts": counts[chosen]}

    metrics = regression_metrics(
        model,
        feeds(esol.test),
        estimator.predict(x[esol.test]),
        y[esol.test],
        model.graph.output[0].name,
        ESOL_TARGET,
        ESOL_UNIT,
    )
    return Case(
        stem=stem,
        description=(
            "StandardScaler and linear regression over two inputs, measures (molecular weight "
            "in g/mol, polar surface area in Å²) as FP32 and counts (minimum degree, H-bond "
            "donors, rings, rotatable bonds) as INT64, that predict measured solubility, "
            "log10(mol/L)."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=feeds(esol.test, SAMPLE_ROWS),
        expected_feeds=feeds(esol.test, EXPECTED_ROWS),
        export=export_settings(),
        metrics=metrics,
    )


ONEHOT_COLUMNS = [("Number of Rings", None), ("Number of H-Bond Donors", None)]


def case_esol_onehot_int(esol):
    stem = "esol_onehot_int"
    x = esol.frame[[name for name, _ in ONEHOT_COLUMNS]].to_numpy(dtype=np.int64)
    y = esol_log_solubility(esol)
    estimator = Pipeline(
        [("onehot", OneHotEncoder(handle_unknown="ignore")), ("linear", LinearRegression())]
    )
    fit(estimator, x[esol.train], y[esol.train])
    model = to_onnx(estimator, stem, [("counts", Int64TensorType([None, x.shape[1]]))])
    sample_feeds, expected_feeds = table_feeds("counts", x, esol.test)
    metrics = regression_metrics(
        model,
        {"counts": x[esol.test]},
        estimator.predict(x[esol.test]),
        y[esol.test],
        model.graph.output[0].name,
        ESOL_TARGET,
        ESOL_UNIT,
    )

    # Categories the encoder never saw: handle_unknown="ignore" encodes them
    # as all zeros.
    unknown = np.array([[99, 0], [1, 99], [-1, -1]], dtype=np.int64)
    sklearn_unknown = estimator.predict(unknown).astype(np.float32)
    return Case(
        stem=stem,
        description=(
            "One-hot encoder on the integer ring and H-bond donor counts, then linear "
            "regression of measured solubility, log10(mol/L)."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(),
        features=[{"name": name, "unit": unit} for name, unit in ONEHOT_COLUMNS],
        metrics=metrics,
        extra_cases={
            "unknown_categories": {
                "note": (
                    "Counts outside the training categories, which encode as all zeros "
                    "because of handle_unknown='ignore'. scikit-learn predicts "
                    f"{[float(v) for v in sklearn_unknown]} for these rows."
                ),
                "feeds": {"counts": unknown},
            }
        },
    )


def case_esol_svr(esol):
    estimator = Pipeline([("scaler", StandardScaler()), ("svr", SVR())])
    return esol_regression_case(
        esol,
        "esol_svr",
        "StandardScaler and support vector regression of measured solubility, log10(mol/L). "
        "SVMRegressor is not supported by the service, so ingest must reject this model.",
        estimator,
    )


def compound_initials(esol):
    """Return the upper-case first character of each Compound ID as a str object array."""
    return esol.frame["Compound ID"].str[0].str.upper().to_numpy(dtype=object)


def case_esol_label_encoder_strings(esol):
    stem = "esol_label_encoder_strings"
    input_name = "compound_initial"
    initials = compound_initials(esol)
    # LabelEncoder.fit takes the values to encode as its only argument.
    estimator = LabelEncoder().fit(initials[esol.train])
    model = to_onnx(estimator, stem, [(input_name, StringTensorType([None]))])

    # scikit-learn raises on an initial it never saw, while the ONNX
    # LabelEncoder returns its default_int64, so only seen initials compare.
    test_initials = initials[esol.test]
    seen = np.isin(test_initials, estimator.classes_)
    onnx_codes = onnxruntime_tensors(model, {input_name: test_initials})[model.graph.output[0].name]
    sklearn_codes = estimator.transform(test_initials[seen])
    metrics = {
        "kind": "encoding",
        "test_rows": len(test_initials),
        "classes": len(estimator.classes_),
        "test_rows_with_unseen_initial": int((~seen).sum()),
        "agreement_sklearn_onnxruntime_on_seen": float(np.mean(onnx_codes[seen] == sklearn_codes)),
    }
    sample_feeds, expected_feeds = table_feeds(input_name, initials, esol.test)
    return Case(
        stem=stem,
        description=(
            "Label encoder that maps the first character of an ESOL Compound ID to an integer "
            "code. Its input is a string tensor, which the service does not accept, so ingest "
            "must reject this model."
        ),
        model=model,
        estimator=estimator_text(estimator),
        sample_feeds=sample_feeds,
        expected_feeds=expected_feeds,
        export=export_settings(),
        metrics=metrics,
        extra_cases={
            "unseen_initial": {
                "note": "Strings that are not among the training classes.",
                "feeds": {input_name: np.array(["?", "", "Zz"], dtype=object)},
            }
        },
    )


# ---------------------------------------------------------------------------
# Hand-built tree ensembles

# Nodes of three depth-2 trees on inputs x0, x1, x2, as
# (tree_id, node_id, mode, feature_id, threshold, true_id, false_id, missing_tracks_true).
# Every threshold is exact in float32, so inputs can equal it. After its
# root, tree 2 lists its nodes out of id order, because ONNX identifies nodes
# by id and not by position.
# NOTE: each tree lists its root first, because onnxruntime 1.32.0 took the
# first listed node of tree 2 as its root when node 2 came first.
TREE_NODES = [
    (0, 0, "BRANCH_LEQ", 0, 0.5, 1, 2, 1),
    (0, 1, "BRANCH_LT", 1, 1.0, 3, 4, 0),
    (0, 2, "BRANCH_GTE", 2, -1.0, 5, 6, 1),
    (0, 3, "LEAF", 0, 0.0, 0, 0, 0),
    (0, 4, "LEAF", 0, 0.0, 0, 0, 0),
    (0, 5, "LEAF", 0, 0.0, 0, 0, 0),
    (0, 6, "LEAF", 0, 0.0, 0, 0, 0),
    (1, 0, "BRANCH_GT", 1, 0.0, 1, 2, 0),
    (1, 1, "BRANCH_EQ", 0, 2.0, 3, 4, 1),
    (1, 2, "BRANCH_NEQ", 2, 3.0, 5, 6, 0),
    (1, 3, "LEAF", 0, 0.0, 0, 0, 0),
    (1, 4, "LEAF", 0, 0.0, 0, 0, 0),
    (1, 5, "LEAF", 0, 0.0, 0, 0, 0),
    (1, 6, "LEAF", 0, 0.0, 0, 0, 0),
    (2, 0, "BRANCH_LT", 2, 0.25, 1, 2, 0),
    (2, 2, "BRANCH_GTE", 0, -2.0, 3, 4, 1),
    (2, 4, "LEAF", 0, 0.0, 0, 0, 0),
    (2, 1, "LEAF", 0, 0.0, 0, 0, 0),
    (2, 3, "LEAF", 0, 0.0, 0, 0, 0),
]

# Leaf weights of the regressors as (tree_id, node_id, target_id, weight).
# Some leaves feed only one of the two targets, so MIN and MAX see targets
# that a tree does not reach.
REGRESSOR_LEAF_WEIGHTS = [
    (0, 3, 0, 1.0),
    (0, 3, 1, -0.5),
    (0, 4, 0, 2.0),
    (0, 5, 1, 4.0),
    (0, 6, 0, -3.0),
    (0, 6, 1, 0.25),
    (1, 3, 0, 0.125),
    (1, 3, 1, 8.0),
    (1, 4, 0, -1.5),
    (1, 4, 1, -2.0),
    (1, 5, 0, 0.75),
    (1, 6, 1, -0.625),
    (2, 1, 0, 10.0),
    (2, 1, 1, 10.0),
    (2, 3, 0, -7.0),
    (2, 4, 1, 5.5),
]
REGRESSOR_BASE_VALUES = [0.5, -1.0]

# Leaf weights of trees_post_logistic, one target.
LOGISTIC_LEAF_WEIGHTS = [
    (0, 3, 0, 1.5),
    (0, 4, 0, -0.75),
    (0, 5, 0, 0.25),
    (0, 6, 0, -2.0),
    (1, 3, 0, 0.5),
    (1, 4, 0, -1.25),
    (1, 5, 0, 3.0),
    (1, 6, 0, 0.125),
    (2, 1, 0, -0.5),
    (2, 3, 0, 1.0),
    (2, 4, 0, -4.0),
]

# Leaf weights of the classifiers as (tree_id, node_id, class_id, weight).
CLASSIFIER_BINARY_MIXED_WEIGHTS = [
    (0, 3, 0, 0.8),
    (0, 4, 0, -0.4),
    (0, 5, 0, 0.3),
    (0, 6, 0, -1.2),
    (1, 3, 0, -0.1),
    (1, 4, 0, 0.6),
    (1, 5, 0, -0.9),
    (1, 6, 0, 0.2),
    (2, 1, 0, 0.05),
    (2, 3, 0, -0.35),
    (2, 4, 0, 0.45),
]
CLASSIFIER_SOFTMAX_WEIGHTS = [
    (0, 3, 0, 1.0),
    (0, 3, 2, -0.5),
    (0, 4, 1, 2.0),
    (0, 5, 2, 1.5),
    (0, 6, 0, -1.0),
    (0, 6, 1, 0.5),
    (1, 3, 1, 0.25),
    (1, 4, 0, 0.75),
    (1, 4, 2, 0.75),
    (1, 5, 1, -1.25),
    (1, 6, 2, 2.5),
    (2, 1, 0, 0.4),
    (2, 1, 1, 0.4),
    (2, 1, 2, 0.4),
    (2, 3, 1, -0.6),
    (2, 4, 0, 1.1),
]
CLASSIFIER_SOFTMAX_BASE_VALUES = [0.1, -0.2, 0.3]
CLASSIFIER_TWO_IDS_WEIGHTS = [
    (0, 3, 0, 0.7),
    (0, 3, 1, 0.3),
    (0, 4, 1, 0.9),
    (0, 5, 0, 0.2),
    (0, 6, 0, 0.4),
    (0, 6, 1, 0.6),
    (1, 3, 1, 1.0),
    (1, 4, 0, 0.5),
    (1, 5, 0, 0.8),
    (1, 5, 1, 0.2),
    (1, 6, 1, 0.35),
    (2, 1, 0, 0.6),
    (2, 3, 1, 0.45),
    (2, 4, 0, 0.15),
    (2, 4, 1, 0.85),
]

TREE_INPUT = "x"
TREE_FEATURES = 3
# Per input: its thresholds in TREE_NODES, then other values on both sides.
TREE_THRESHOLDS = [[-2.0, 0.5, 2.0], [0.0, 1.0], [-1.0, 0.25, 3.0]]
TREE_OTHER_VALUES = [[-3.0, 1.0, 2.5], [-1.0, 0.5, 2.0], [-2.0, 0.0, 4.0]]
TREE_INPUT_SEED = 0
# Rows whose leaves in all three trees carry no weight for target 1 of the
# two-target regressors, so only the base value could reach that target.
TREE_ROWS_WITHOUT_TARGET_1 = [[0.5, math.nan, 0.25], [-2.0, math.nan, 4.0]]


def tree_node_attributes():
    columns = list(zip(*TREE_NODES))
    return {
        "nodes_treeids": list(columns[0]),
        "nodes_nodeids": list(columns[1]),
        "nodes_modes": list(columns[2]),
        "nodes_featureids": list(columns[3]),
        "nodes_values": [float(v) for v in columns[4]],
        "nodes_truenodeids": list(columns[5]),
        "nodes_falsenodeids": list(columns[6]),
        "nodes_missing_value_tracks_true": list(columns[7]),
    }


def hand_built_model(stem, node, inputs, outputs):
    graph = helper.make_graph([node], stem, inputs, outputs)
    return helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", HAND_BUILT_OPSET),
            helper.make_opsetid("ai.onnx.ml", HAND_BUILT_ML_OPSET),
        ],
        ir_version=HAND_BUILT_IR_VERSION,
        producer_name=HAND_BUILT_PRODUCER,
        producer_version=onnx.__version__,
    )


def make_tree_regressor(stem, aggregate, post_transform, n_targets, base_values, leaf_weights):
    tree_ids, node_ids, target_ids, weights = (list(c) for c in zip(*leaf_weights))
    node = helper.make_node(
        "TreeEnsembleRegressor",
        [TREE_INPUT],
        ["predictions"],
        domain="ai.onnx.ml",
        aggregate_function=aggregate,
        post_transform=post_transform,
        n_targets=n_targets,
        base_values=base_values,
        target_treeids=tree_ids,
        target_nodeids=node_ids,
        target_ids=target_ids,
        target_weights=[float(w) for w in weights],
        **tree_node_attributes(),
    )
    return hand_built_model(
        stem,
        node,
        [helper.make_tensor_value_info(TREE_INPUT, TensorProto.FLOAT, ["N", TREE_FEATURES])],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["N", n_targets])],
    )


def make_tree_classifier(stem, class_labels, post_transform, base_values, leaf_weights):
    tree_ids, node_ids, class_ids, weights = (list(c) for c in zip(*leaf_weights))
    attributes = {
        "classlabels_int64s": class_labels,
        "post_transform": post_transform,
        "class_treeids": tree_ids,
        "class_nodeids": node_ids,
        "class_ids": class_ids,
        "class_weights": [float(w) for w in weights],
    }
    if base_values is not None:
        attributes["base_values"] = base_values
    node = helper.make_node(
        "TreeEnsembleClassifier",
        [TREE_INPUT],
        ["label", "probabilities"],
        domain="ai.onnx.ml",
        **attributes,
        **tree_node_attributes(),
    )
    return hand_built_model(
        stem,
        node,
        [helper.make_tensor_value_info(TREE_INPUT, TensorProto.FLOAT, ["N", TREE_FEATURES])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, ["N", len(class_labels)]
            ),
        ],
    )


def tree_inputs():
    """Return 64 float32 rows: every combination of thresholds, NaN rows, then random rows.

    The first 18 rows set every input exactly to one of its thresholds and
    contain no NaN, so the sidecar samples can use the first 5.
    """
    rows = [
        [a, b, c]
        for a in TREE_THRESHOLDS[0]
        for b in TREE_THRESHOLDS[1]
        for c in TREE_THRESHOLDS[2]
    ]
    rng = np.random.default_rng(TREE_INPUT_SEED)
    # One NaN at each position with thresholds elsewhere, then a row of NaN.
    for feature in range(TREE_FEATURES):
        for _ in range(3):
            row = [float(rng.choice(TREE_THRESHOLDS[f])) for f in range(TREE_FEATURES)]
            row[feature] = math.nan
            rows.append(row)
    rows.append([math.nan] * TREE_FEATURES)
    rows += TREE_ROWS_WITHOUT_TARGET_1
    candidates = [
        TREE_THRESHOLDS[f] + TREE_OTHER_VALUES[f] + [math.nan] for f in range(TREE_FEATURES)
    ]
    while len(rows) < EXPECTED_ROWS:
        rows.append([float(rng.choice(candidates[f])) for f in range(TREE_FEATURES)])
    return np.array(rows, dtype=np.float32)


def hand_built_tree_case(stem, description, model, labels=None, notes=()):
    x = tree_inputs()
    return Case(
        stem=stem,
        description=description,
        model=model,
        estimator=HAND_BUILT_ESTIMATOR,
        sample_feeds={TREE_INPUT: x[:SAMPLE_ROWS]},
        expected_feeds={TREE_INPUT: x},
        export={"tool": f"onnx.helper (onnx {onnx.__version__})"},
        labels=labels,
        notes=[
            'NaN input values are written as the string "NaN". Rows 0-17 set every input '
            "to one of its thresholds and rows 18-29 contain NaN. Rows 28 and 29 reach no "
            "leaf weight for target 1 of the two-target regressors. The other rows are "
            "seeded random picks from the thresholds, values beside them and NaN.",
            *notes,
        ],
    )


def hand_built_regressor_cases():
    cases = []
    for aggregate in ("SUM", "AVERAGE", "MIN", "MAX"):
        stem = f"trees_aggregate_{aggregate.lower()}"
        model = make_tree_regressor(
            stem, aggregate, "NONE", 2, REGRESSOR_BASE_VALUES, REGRESSOR_LEAF_WEIGHTS
        )
        description = (
            f"Hand-built TreeEnsembleRegressor: three depth-2 trees on three inputs, two "
            f"targets, aggregate_function {aggregate}, base_values {REGRESSOR_BASE_VALUES}, "
            "all six branch modes and some nodes with missing values tracking true."
        )
        note = (
            "onnxruntime 1.32.0 returns 0 for a target that no reached leaf weights (target 1 "
            "in rows 27-29) instead of that target's base value, -1.0."
        )
        cases.append(hand_built_tree_case(stem, description, model, notes=[note]))

    stem = "trees_post_logistic"
    model = make_tree_regressor(stem, "SUM", "LOGISTIC", 1, [0.5], LOGISTIC_LEAF_WEIGHTS)
    cases.append(
        hand_built_tree_case(
            stem,
            "Hand-built TreeEnsembleRegressor with the trees of trees_aggregate_sum, one "
            "target, base value 0.5 and post_transform LOGISTIC.",
            model,
            notes=[
                "onnxruntime 1.32.0 does not apply LOGISTIC to a single-target "
                "TreeEnsembleRegressor, so these outputs are the raw "
                "sums plus the base value. trees_post_logistic_two_targets shows the transform."
            ],
        )
    )

    # The same trees with a second target that has the opposite weights,
    # because onnxruntime applies LOGISTIC only when there are several targets.
    stem = "trees_post_logistic_two_targets"
    two_target_weights = [(t, n, 0, w) for t, n, _, w in LOGISTIC_LEAF_WEIGHTS] + [
        (t, n, 1, -w) for t, n, _, w in LOGISTIC_LEAF_WEIGHTS
    ]
    model = make_tree_regressor(stem, "SUM", "LOGISTIC", 2, [0.5, -0.5], two_target_weights)
    cases.append(
        hand_built_tree_case(
            stem,
            "Hand-built TreeEnsembleRegressor like trees_post_logistic with a second target of "
            "negated weights, base values [0.5, -0.5] and post_transform LOGISTIC.",
            model,
        )
    )
    return cases


def hand_built_classifier_cases():
    specs = [
        (
            "trees_classifier_binary_mixed",
            "Hand-built TreeEnsembleClassifier with two classes, every class_id 0, weights of "
            "both signs and post_transform NONE, where onnxruntime applies its binary rules.",
            [0, 1],
            "NONE",
            None,
            CLASSIFIER_BINARY_MIXED_WEIGHTS,
        ),
        (
            "trees_classifier_multiclass_softmax",
            "Hand-built TreeEnsembleClassifier with three classes, base_values "
            f"{CLASSIFIER_SOFTMAX_BASE_VALUES} and post_transform SOFTMAX.",
            [0, 1, 2],
            "SOFTMAX",
            CLASSIFIER_SOFTMAX_BASE_VALUES,
            CLASSIFIER_SOFTMAX_WEIGHTS,
        ),
        (
            "trees_classifier_two_ids",
            "Hand-built TreeEnsembleClassifier with two classes, leaves weighting class_id 0 "
            "and 1, and post_transform NONE.",
            [0, 1],
            "NONE",
            None,
            CLASSIFIER_TWO_IDS_WEIGHTS,
        ),
    ]
    cases = []
    for stem, description, labels, post_transform, base_values, weights in specs:
        model = make_tree_classifier(stem, labels, post_transform, base_values, weights)
        cases.append(hand_built_tree_case(stem, description, model, labels=labels))
    return cases


# Thresholds of trees_double_as_tensor. None is exact in float32, and the
# test inputs sit one float64 step from them, so a float32 comparison takes
# other branches than a float64 one.
DOUBLE_THRESHOLDS = [0.1, 1.0 / 3.0, 2.0 / 3.0]


def make_double_tree_regressor(stem):
    """Build a TreeEnsembleRegressor that stores thresholds, weights and base values as float64."""
    t0, t1, t2 = DOUBLE_THRESHOLDS
    nodes = [
        (0, 0, "BRANCH_LEQ", 0, t0, 1, 2, 0),
        (0, 1, "BRANCH_LT", 1, t1, 3, 4, 0),
        (0, 2, "BRANCH_GT", 2, t2, 5, 6, 1),
        (0, 3, "LEAF", 0, 0.0, 0, 0, 0),
        (0, 4, "LEAF", 0, 0.0, 0, 0, 0),
        (0, 5, "LEAF", 0, 0.0, 0, 0, 0),
        (0, 6, "LEAF", 0, 0.0, 0, 0, 0),
        (1, 0, "BRANCH_GTE", 1, t1, 1, 2, 0),
        (1, 1, "LEAF", 0, 0.0, 0, 0, 0),
        (1, 2, "LEAF", 0, 0.0, 0, 0, 0),
    ]
    # Weights that float32 cannot store exactly, so a float32 copy changes the sum.
    leaves = [
        (0, 3, 0, 0.1),
        (0, 4, 0, 0.2),
        (0, 5, 0, 1.0 / 3.0),
        (0, 6, 0, 1e-9),
        (1, 1, 0, 1.0 + 2.0**-40),
        (1, 2, 0, -0.3),
    ]
    columns = list(zip(*nodes))
    tree_ids, node_ids, target_ids, weights = (list(c) for c in zip(*leaves))
    node = helper.make_node(
        "TreeEnsembleRegressor",
        [TREE_INPUT],
        ["predictions"],
        domain="ai.onnx.ml",
        aggregate_function="SUM",
        post_transform="NONE",
        n_targets=1,
        nodes_treeids=list(columns[0]),
        nodes_nodeids=list(columns[1]),
        nodes_modes=list(columns[2]),
        nodes_featureids=list(columns[3]),
        nodes_values_as_tensor=numpy_helper.from_array(np.array(columns[4], dtype=np.float64)),
        nodes_truenodeids=list(columns[5]),
        nodes_falsenodeids=list(columns[6]),
        nodes_missing_value_tracks_true=list(columns[7]),
        target_treeids=tree_ids,
        target_nodeids=node_ids,
        target_ids=target_ids,
        target_weights_as_tensor=numpy_helper.from_array(np.array(weights, dtype=np.float64)),
        base_values_as_tensor=numpy_helper.from_array(np.array([0.25], dtype=np.float64)),
    )
    return hand_built_model(
        stem,
        node,
        [helper.make_tensor_value_info(TREE_INPUT, TensorProto.DOUBLE, ["N", 3])],
        # TreeEnsembleRegressor returns float32 for every input type.
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["N", 1])],
    )


def double_tree_inputs():
    """Return 64 float64 rows: thresholds, their float64 neighbours and a few NaN."""
    values = []
    for threshold in DOUBLE_THRESHOLDS:
        values += [
            threshold,
            float(np.nextafter(threshold, -np.inf)),
            float(np.nextafter(threshold, np.inf)),
        ]
    rng = np.random.default_rng(TREE_INPUT_SEED)
    rows = [[t, t, t] for t in values]
    rows.append([math.nan, math.nan, math.nan])
    while len(rows) < EXPECTED_ROWS:
        rows.append([float(rng.choice(values + [math.nan])) for _ in range(3)])
    return np.array(rows, dtype=np.float64)


def case_trees_double_as_tensor():
    stem = "trees_double_as_tensor"
    x = double_tree_inputs()
    model = make_double_tree_regressor(stem)
    return Case(
        stem=stem,
        description=(
            "Hand-built TreeEnsembleRegressor (ai.onnx.ml opset 3) with a float64 input and "
            "nodes_values_as_tensor, target_weights_as_tensor and base_values_as_tensor "
            "stored as float64, which skl2onnx 1.20.0 does not write."
        ),
        model=model,
        estimator=HAND_BUILT_ESTIMATOR,
        sample_feeds={TREE_INPUT: x[:SAMPLE_ROWS]},
        expected_feeds={TREE_INPUT: x},
        export={"tool": f"onnx.helper (onnx {onnx.__version__})"},
        notes=[
            'NaN input values are written as the string "NaN". Rows 0-8 set all three inputs '
            "to a threshold or to the next float64 below or above it, which float32 cannot tell apart."
        ],
    )


# ---------------------------------------------------------------------------
# onnxruntime


def create_session(model_bytes):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Errors only: write_case reports declared output shapes that differ from
    # the returned ones, which onnxruntime would also log as warnings.
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def onnxruntime_load_error(model):
    """Return onnxruntime's error message for the model, or None when it loads."""
    try:
        create_session(model.SerializeToString())
    except Exception as error:  # onnxruntime raises several unrelated exception types.
        return str(error)
    return None


def zipmap_sources(model):
    """Map each graph output made by ZipMap to (ZipMap input name, class labels)."""
    sources = {}
    for node in model.graph.node:
        if node.op_type != "ZipMap":
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if "classlabels_int64s" in attributes:
            labels = [int(v) for v in attributes["classlabels_int64s"]]
        else:
            labels = [v.decode("utf-8") for v in attributes["classlabels_strings"]]
        sources[node.output[0]] = (node.input[0], labels)
    graph_outputs = {o.name for o in model.graph.output}
    missing = set(sources) - graph_outputs
    if missing:
        raise RuntimeError(f"ZipMap outputs {sorted(missing)} are not graph outputs")
    return sources


def maps_to_matrix(maps, labels):
    """Return ZipMap's per-row maps as a float32 [rows, classes] matrix in label order."""
    matrix = np.empty((len(maps), len(labels)), dtype=np.float32)
    for row, probabilities in enumerate(maps):
        if sorted(probabilities, key=str) != sorted(labels, key=str):
            raise RuntimeError(f"ZipMap row {row} has keys {list(probabilities)}, expected {labels}")
        matrix[row] = [probabilities[label] for label in labels]
    return matrix


def run_raw(model_bytes, feeds):
    session = create_session(model_bytes)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def onnxruntime_tensors(model, feeds):
    """Run the model and return every output as an array, ZipMap outputs as probability matrices.

    A ZipMap output is checked against the tensor that feeds ZipMap, which is
    what the service returns under the ZipMap output's name.
    """
    model_bytes = model.SerializeToString()
    outputs = run_raw(model_bytes, feeds)
    sources = zipmap_sources(model)
    if not sources:
        return outputs

    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    for source_name, _ in sources.values():
        probed.graph.output.append(helper.make_empty_tensor_value_info(source_name))
    probed_outputs = run_raw(probed.SerializeToString(), feeds)
    for output_name, (source_name, labels) in sources.items():
        matrix = maps_to_matrix(outputs[output_name], labels)
        source = probed_outputs[source_name]
        if source.dtype != np.float32 or not np.array_equal(matrix, source):
            raise RuntimeError(
                f"{output_name}: ZipMap output differs from its input tensor {source_name}"
            )
        outputs[output_name] = matrix
    return outputs


# ---------------------------------------------------------------------------
# JSON


def nested_data(array, allow_nan):
    """Return the array as nested lists with exact values.

    tolist() turns float32 elements into Python floats holding the exact
    stored value, and json writes the shortest repr that parses back to that
    value. JSON has no NaN, so NaN becomes the string "NaN" where allowed.
    """
    data = array.tolist()

    def convert(value):
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, float) and math.isnan(value):
            if not allow_nan:
                raise ValueError(
                    "NaN in sidecar data, which JSON cannot represent. Use rows without NaN"
                )
            return "NaN"
        if isinstance(value, float) and math.isinf(value):
            raise ValueError("infinite value in fixture data, which JSON cannot represent")
        return value

    return convert(data)


def kserve_datatype(array):
    try:
        return KSERVE_DATATYPES[array.dtype]
    except KeyError:
        raise ValueError(f"no KServe V2 datatype for numpy dtype {array.dtype}") from None


def tensor_json(array, allow_nan):
    return {
        "datatype": kserve_datatype(array),
        "shape": list(array.shape),
        "data": nested_data(array, allow_nan),
    }


def write_json(path, value):
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def sidecar_json(case, sample_outputs):
    sidecar = {"description": case.description}
    if case.features is not None:
        sidecar["features"] = case.features
    if case.labels is not None:
        sidecar["labels"] = case.labels
    if case.exposed_outputs is not None:
        sidecar["outputs"] = case.exposed_outputs
    exposed = case.exposed_outputs or list(sample_outputs)
    sidecar["samples"] = [
        {
            "inputs": {
                name: nested_data(value, allow_nan=False) for name, value in case.sample_feeds.items()
            },
            "outputs": {name: nested_data(sample_outputs[name], allow_nan=False) for name in exposed},
        }
    ]
    sidecar["tolerance"] = TOLERANCE
    return sidecar


def output_notes(case, expected_outputs):
    """Return the case's notes plus notes on converted, string and misdeclared outputs."""
    notes = list(case.notes)
    for name in sorted(zipmap_sources(case.model)):
        notes.append(
            f"{name} is a ZipMap output (sequence of maps) in the model. It is written as the "
            "FP32 [rows, classes] matrix that feeds ZipMap, columns in label order."
        )
    if any(value.dtype == object for value in expected_outputs.values()):
        notes.append("String outputs are BYTES tensors whose elements are UTF-8 strings.")
    for value_info in case.model.graph.output:
        if not value_info.type.HasField("tensor_type"):
            continue
        dims = value_info.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
        actual = list(expected_outputs[value_info.name].shape)
        fits = len(declared) == len(actual) and all(
            d in (-1, a) for d, a in zip(declared, actual)
        )
        if not fits:
            notes.append(
                f"{value_info.name}: the model declares shape {declared} but onnxruntime "
                f"returns {actual}."
            )
    return notes


def expected_json(case, notes, expected_outputs, extra_outputs):
    expected = {
        "model": f"{case.stem}.onnx",
        "onnxruntime_version": onnxruntime.__version__,
        "notes": notes,
        "inputs": {name: tensor_json(value, True) for name, value in case.expected_feeds.items()},
        "outputs": {name: tensor_json(value, True) for name, value in expected_outputs.items()},
    }
    if case.extra_cases:
        expected["extra_cases"] = {
            name: {
                "note": extra["note"],
                "inputs": {n: tensor_json(v, True) for n, v in extra["feeds"].items()},
                "outputs": {n: tensor_json(v, True) for n, v in extra_outputs[name].items()},
            }
            for name, extra in case.extra_cases.items()
        }
    return expected


# ---------------------------------------------------------------------------
# INDEX.json


def domain_name(domain):
    return domain or DEFAULT_DOMAIN_NAME


def operator_names(model):
    return sorted({f"{domain_name(n.domain)}:{n.op_type}" for n in model.graph.node})


def opset_imports(model):
    # A list instead of a mapping, because skl2onnx 1.20.0 sometimes imports
    # the default domain twice and a mapping would hide that.
    return [{"domain": domain_name(o.domain), "version": o.version} for o in model.opset_import]


def signature_json(model, session_args, value_infos):
    by_name = {v.name: v for v in value_infos}
    entries = []
    for arg in session_args:
        value_type = by_name[arg.name].type
        entry = {"name": arg.name, "onnx_type": arg.type, "datatype": None, "shape": None}
        if value_type.HasField("tensor_type"):
            tensor = value_type.tensor_type
            entry["datatype"] = ONNX_TO_KSERVE[tensor.elem_type]
            # -1 is a dimension without a fixed size.
            entry["shape"] = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        entries.append(entry)
    return entries


def tree_ensemble_summaries(model):
    """Describe each TreeEnsemble node: trees, nodes, branch modes, transforms and attribute forms."""
    summaries = []
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        modes = [m.decode("utf-8") for m in attributes["nodes_modes"]]
        summary = {
            "operator": f"{domain_name(node.domain)}:{node.op_type}",
            "trees": len(set(attributes["nodes_treeids"])),
            "nodes": len(attributes["nodes_nodeids"]),
            "node_modes": sorted(set(modes)),
            "post_transform": attributes.get("post_transform", b"NONE").decode("utf-8"),
            "missing_value_tracks_true_nodes": int(
                sum(attributes.get("nodes_missing_value_tracks_true", []))
            ),
            "as_tensor_attributes": sorted(n for n in attributes if n.endswith("_as_tensor")),
        }
        if node.op_type == "TreeEnsembleRegressor":
            summary["aggregate_function"] = attributes.get("aggregate_function", b"SUM").decode("utf-8")
            summary["n_targets"] = attributes.get("n_targets")
        elif "classlabels_int64s" in attributes:
            summary["class_labels"] = [int(v) for v in attributes["classlabels_int64s"]]
        else:
            summary["class_labels"] = [v.decode("utf-8") for v in attributes["classlabels_strings"]]
        if "base_values" in attributes:
            summary["base_values"] = [float(v) for v in attributes["base_values"]]
        elif "base_values_as_tensor" in attributes:
            summary["base_values"] = numpy_helper.to_array(attributes["base_values_as_tensor"]).tolist()
        else:
            summary["base_values"] = None
        summaries.append(summary)
    return summaries


def index_entry(case, notes, model_bytes, session):
    entry = {
        "case": case.stem,
        "file": f"{case.stem}.onnx",
        "description": case.description,
        "estimator": case.estimator,
        "export": case.export,
        "operators": operator_names(case.model),
        "opset_imports": opset_imports(case.model),
        "ir_version": case.model.ir_version,
        "inputs": signature_json(case.model, session.get_inputs(), case.model.graph.input),
        "outputs": signature_json(case.model, session.get_outputs(), case.model.graph.output),
        "tree_ensembles": tree_ensemble_summaries(case.model),
        "metrics": case.metrics,
        "notes": notes,
        "size_bytes": len(model_bytes),
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
    }
    return entry


# ---------------------------------------------------------------------------
# Writing


def write_case(case):
    """Check the model, run it in onnxruntime, write its three files and return its INDEX entry."""
    onnx.checker.check_model(case.model, full_check=True)
    model_bytes = case.model.SerializeToString()
    session = create_session(model_bytes)

    sample_outputs = onnxruntime_tensors(case.model, case.sample_feeds)
    expected_outputs = onnxruntime_tensors(case.model, case.expected_feeds)
    notes = output_notes(case, expected_outputs)
    extra_outputs = {
        name: onnxruntime_tensors(case.model, extra["feeds"])
        for name, extra in case.extra_cases.items()
    }
    if case.exposed_outputs is not None:
        unknown = set(case.exposed_outputs) - set(sample_outputs)
        if unknown:
            raise RuntimeError(f"{case.stem}: exposed outputs {sorted(unknown)} are not model outputs")

    (FIXTURE_DIR / f"{case.stem}.onnx").write_bytes(model_bytes)
    write_json(FIXTURE_DIR / f"{case.stem}.json", sidecar_json(case, sample_outputs))
    write_json(
        FIXTURE_DIR / f"{case.stem}.expected.json",
        expected_json(case, notes, expected_outputs, extra_outputs),
    )
    return index_entry(case, notes, model_bytes, session)


def metric_text(metrics):
    if metrics is None:
        return "-"
    if metrics["kind"] == "regression":
        values = metrics["rmse_onnxruntime"]
        values = values if isinstance(values, list) else [values]
        return "RMSE " + "/".join(f"{v:.3f}" for v in values) + f" {metrics['unit']}"
    if metrics["kind"] == "classification":
        return f"accuracy {metrics['accuracy_onnxruntime']:.3f}"
    return f"{metrics['classes']} classes"


def opset_text(imports):
    return ",".join(f"{i['domain'].removeprefix('ai.onnx').lstrip('.') or 'onnx'}={i['version']}" for i in imports)


def print_table(entries):
    rows = [("case", "operators", "opset imports", "metric (onnxruntime)", "bytes")]
    for entry in entries:
        operators = ",".join(sorted(op.split(":")[1] for op in entry["operators"]))
        rows.append(
            (
                entry["case"],
                operators,
                opset_text(entry["opset_imports"]),
                metric_text(entry["metrics"]),
                str(entry["size_bytes"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def build_cases(esol, airfoil):
    forest = binary_forest(esol)
    cases = [
        case_esol_scaler_mlp(esol),
        case_esol_rf_regressor(esol),
        case_airfoil_gbr(airfoil),
        case_airfoil_gbr_double(airfoil),
        case_esol_rf_multitarget(esol),
        case_esol_rf_classifier_zipmap(esol, forest),
        case_esol_rf_classifier(esol, forest),
        case_esol_rf_multiclass_strings(esol),
        case_esol_gb_classifier(esol),
        case_esol_gb_multiclass(esol),
        case_esol_logistic(esol),
        case_esol_linear(esol),
        case_esol_imputer(esol),
        case_esol_normalizer(esol),
        case_esol_binarizer(esol),
        case_esol_column_transformer(esol),
        case_esol_feature_vectorizer(esol),
        case_esol_onehot_int(esol),
        case_esol_svr(esol),
        case_esol_label_encoder_strings(esol),
    ]
    cases += hand_built_regressor_cases()
    cases += hand_built_classifier_cases()
    cases.append(case_trees_double_as_tensor())
    return cases


def main():
    # skl2onnx collects opset imports in a set, so their order in the model
    # bytes follows Python's string hashing.
    if os.environ.get("PYTHONHASHSEED") != "0":
        sys.exit("PYTHONHASHSEED must be 0 for reproducible output; rerun with PYTHONHASHSEED=0")

    esol = load_esol()
    airfoil = load_airfoil()
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)

    entries = [write_case(case) for case in build_cases(esol, airfoil)]
    index = {
        "generated_by": "scripts/train_sklearn.py",
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "split": SPLIT_DESCRIPTION,
        "rows": {
            "esol": {"train": len(esol.train), "test": len(esol.test)},
            "airfoil": {"train": len(airfoil.train), "test": len(airfoil.test)},
            "sidecar_samples": SAMPLE_ROWS,
            "expected": EXPECTED_ROWS,
        },
        "cases": entries,
    }
    write_json(FIXTURE_DIR / "INDEX.json", index)

    print_table(entries)
    total = sum(p.stat().st_size for p in FIXTURE_DIR.iterdir() if p.is_file())
    print(f"{len(entries)} cases written to {FIXTURE_DIR.relative_to(REPO_ROOT)}, {total} bytes in total")


if __name__ == "__main__":
    main()
