"""Consistency checks for the Lambda event fixtures in events/.

Hand edits easily break what AWS guarantees, such as md5OfBody matching the
SQS body or a key staying URL-encoded, so these tests pin those properties.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

EVENTS_DIRECTORY = Path(__file__).resolve().parents[2] / "events"
EVENT_FILES = sorted(path.name for path in EVENTS_DIRECTORY.glob("*.json"))
SQS_FILES = [name for name in EVENT_FILES if name.startswith("sqs-")]
HTTP_FILES = [name for name in EVENT_FILES if name.startswith(("apigw-", "function-url-"))]
S3_EVENT_FILES = [name for name in EVENT_FILES if name not in HTTP_FILES]

BUCKET = "maas-local"
REGION = "us-east-1"

ESOL_ROWS = [[1, 457.432, 7, 3, 7, 202.32], [1, 201.225, 1, 2, 2, 42.24]]

# Key as it appears in a notification -> decoded object key.
ENCODED_KEYS = {
    "batch/input/esol-solubility/my+file+%281%29.csv": "batch/input/esol-solubility/my file (1).csv",
    "batch/input/esol-solubility/a%2Bb%3Dc.csv": "batch/input/esol-solubility/a+b=c.csv",
    "batch/input/esol-solubility/donn%C3%A9es/%C3%A9.csv": "batch/input/esol-solubility/données/é.csv",
    "incoming/my+model%2Bv2.onnx": "incoming/my model+v2.onnx",
}


def load(name: str) -> dict:
    return json.loads((EVENTS_DIRECTORY / name).read_text(encoding="utf-8"))


def s3_records(event: dict) -> list[dict]:
    """Return the S3 records of a direct S3 event, or those inside each SQS body that contains some."""
    records = []
    for record in event["Records"]:
        if record.get("eventSource") == "aws:s3":
            records.append(record)
        elif record.get("eventSource") == "aws:sqs":
            try:
                body = json.loads(record["body"])
            except json.JSONDecodeError:
                continue
            records.extend(body.get("Records", []))
    return records


def http_body(event: dict) -> dict:
    body = event["body"]
    if event["isBase64Encoded"]:
        body = base64.b64decode(body).decode("utf-8")
    return json.loads(body)


def test_readme_lists_every_fixture():
    readme = (EVENTS_DIRECTORY / "README.md").read_text(encoding="utf-8")

    assert len(EVENT_FILES) == 12
    for name in EVENT_FILES:
        assert f"`{name}`" in readme, f"{name} is missing from events/README.md"


@pytest.mark.parametrize("name", SQS_FILES)
def test_sqs_record_md5_matches_body(name):
    for record in load(name)["Records"]:
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode("utf-8")).hexdigest(), record["messageId"]


@pytest.mark.parametrize("name", SQS_FILES)
def test_sqs_records_have_queue_metadata(name):
    records = load(name)["Records"]
    message_ids = [record["messageId"] for record in records]

    assert len(set(message_ids)) == len(message_ids)
    for record in records:
        assert record["eventSource"] == "aws:sqs"
        assert record["awsRegion"] == REGION
        assert record["eventSourceARN"].startswith(f"arn:aws:sqs:{REGION}:123456789012:maas-")
        assert record["receiptHandle"].startswith("AQEB")
        assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1


@pytest.mark.parametrize("name", S3_EVENT_FILES)
def test_s3_records_name_local_bucket(name):
    for record in s3_records(load(name)):
        assert record["s3"]["bucket"]["name"] == BUCKET
        assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{BUCKET}"
        assert record["awsRegion"] == REGION
        assert record["eventName"] == "ObjectCreated:Put"


def test_encoded_keys_decode_to_object_names():
    keys = [
        record["s3"]["object"]["key"]
        for name in ("sqs-s3-batch-encoded-keys.json", "sqs-s3-incoming-encoded.json")
        for record in s3_records(load(name))
    ]

    assert sorted(keys) == sorted(ENCODED_KEYS)
    for key in keys:
        assert unquote_plus(key, encoding="utf-8") == ENCODED_KEYS[key]


def test_ingest_queue_carries_only_incoming_keys():
    for name in ("sqs-s3-incoming-model.json", "sqs-s3-incoming-encoded.json"):
        event = load(name)
        for record in event["Records"]:
            assert "IngestQueue" in record["eventSourceARN"]
        for record in s3_records(event):
            assert record["s3"]["object"]["key"].startswith("incoming/")


def test_batch_queue_carries_only_batch_input_keys():
    for name in SQS_FILES:
        event = load(name)
        if "IngestQueue" in event["Records"][0]["eventSourceARN"]:
            continue
        for record in s3_records(event):
            assert record["s3"]["object"]["key"].startswith("batch/input/"), name


def test_s3_test_event_has_no_records():
    (record,) = load("sqs-s3-test-event.json")["Records"]
    body = json.loads(record["body"])

    assert body["Event"] == "s3:TestEvent"
    assert body["Bucket"] == BUCKET
    assert "Records" not in body


def test_one_bad_record_is_not_s3_notification():
    records = load("sqs-batch-one-bad.json")["Records"]
    bodies_with_s3_records = []
    for record in records:
        try:
            bodies_with_s3_records.append("Records" in json.loads(record["body"]))
        except json.JSONDecodeError:
            bodies_with_s3_records.append(False)

    assert bodies_with_s3_records == [True, False, True]


@pytest.mark.parametrize("name", HTTP_FILES)
def test_http_event_has_payload_2_0_context(name):
    event = load(name)
    context = event["requestContext"]

    assert event["version"] == "2.0"
    assert context["http"]["path"] == event["rawPath"]
    assert context["stage"] == "$default"
    assert context["routeKey"] == event["routeKey"]


@pytest.mark.parametrize("name", ["apigw-v2-infer.json", "apigw-v2-infer-base64.json"])
def test_infer_event_sends_two_esol_rows(name):
    event = load(name)
    (tensor,) = http_body(event)["inputs"]

    assert event["pathParameters"] == {"model": "esol-solubility"}
    assert tensor["name"] == "descriptors"
    assert tensor["datatype"] == "FP32"
    assert tensor["shape"] == [2, 6]
    assert tensor["data"] == [value for row in ESOL_ROWS for value in row]


def test_base64_event_matches_plain_event():
    plain = load("apigw-v2-infer.json")
    encoded = load("apigw-v2-infer-base64.json")

    assert plain["isBase64Encoded"] is False
    assert encoded["isBase64Encoded"] is True
    assert http_body(encoded) == http_body(plain)
    assert int(encoded["headers"]["content-length"]) == len(base64.b64decode(encoded["body"]))


def test_function_url_event_is_v1_predict():
    event = load("function-url-predict-v1.json")
    (instance,) = http_body(event)["instances"]

    assert event["routeKey"] == "$default"
    assert "pathParameters" not in event
    assert event["rawPath"] == "/v1/models/esol-solubility:predict"
    assert event["requestContext"]["domainName"].endswith(".lambda-url.us-east-1.on.aws")
    assert list(instance.values()) == ESOL_ROWS[0]


def test_health_event_has_no_body():
    event = load("apigw-v2-health.json")

    assert event["rawPath"] == "/v2/health/ready"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert "body" not in event
    assert "jwt" in event["requestContext"]["authorizer"]
