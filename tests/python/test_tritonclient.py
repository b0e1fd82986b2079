"""The official Triton HTTP client, unchanged, against the predict function."""

import csv

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import REPO

MODEL = "esol-solubility"
FEATURES = ["Minimum Degree", "Molecular Weight", "Number of H-Bond Donors", "Number of Rings",
            "Number of Rotatable Bonds", "Polar Surface Area"]


def esol_rows(count):
    with open(REPO / "examples" / "esol_test_split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    x = np.array([[float(row[f]) for f in FEATURES] for row in rows], dtype=np.float32)
    expected = np.array([float(row["onnxruntime_prediction"]) for row in rows], dtype=np.float32)
    return x, expected


def infer(url, binary, **options):
    client = httpclient.InferenceServerClient(url=url)
    x, expected = esol_rows(16)
    data = httpclient.InferInput("descriptors", list(x.shape), "FP32")
    data.set_data_from_numpy(x, binary_data=binary)
    output = httpclient.InferRequestedOutput("log_solubility", binary_data=binary)
    result = client.infer(MODEL, [data], outputs=[output], request_id="triton-1", **options)
    return result, expected


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_onnxruntime(gateway, binary):
    result, expected = infer(gateway, binary)
    np.testing.assert_allclose(result.as_numpy("log_solubility").ravel(), expected, rtol=1e-5, atol=1e-5)
    response = result.get_response()
    assert response["model_name"] == MODEL
    assert response["model_version"] == "1"
    assert response["id"] == "triton-1"


def test_infer_json_directly_on_cargo_lambda_watch(watch):
    result, expected = infer(watch, binary=False)
    np.testing.assert_allclose(result.as_numpy("log_solubility").ravel(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_binary_request(gateway, algorithm):
    result, expected = infer(gateway, True, request_compression_algorithm=algorithm)
    np.testing.assert_allclose(result.as_numpy("log_solubility").ravel(), expected, rtol=1e-5, atol=1e-5)


def test_versioned_inference(gateway):
    result, expected = infer(gateway, True, model_version="1")
    np.testing.assert_allclose(result.as_numpy("log_solubility").ravel(), expected, rtol=1e-5, atol=1e-5)


def test_health_and_metadata(gateway):
    client = httpclient.InferenceServerClient(url=gateway)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("no-such-model")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(MODEL)
    assert metadata["inputs"] == [{"name": "descriptors", "datatype": "FP32", "shape": [-1, 6]}]
    assert metadata["versions"] == ["1"]


def test_errors_reach_the_client(gateway):
    client = httpclient.InferenceServerClient(url=gateway)
    x, _ = esol_rows(1)
    wrong = httpclient.InferInput("descriptors", list(x.shape), "FP64")
    wrong.set_data_from_numpy(x.astype(np.float64), binary_data=True)
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [wrong])
    assert error.value.status() == "400"
    assert "expects datatype FP32 but received FP64" in error.value.message()

    with pytest.raises(InferenceServerException) as error:
        data = httpclient.InferInput("descriptors", list(x.shape), "FP32")
        data.set_data_from_numpy(x)
        client.infer("no-such-model", [data])
    assert error.value.status() == "404"
