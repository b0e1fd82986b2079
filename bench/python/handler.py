"""The same work as the predict function, as a Python Lambda handler would do
it: boto3 fetches the model from S3 on the first request, onnxruntime runs it,
and the Open Inference Protocol request and response are JSON."""

import json
import os

import boto3
import numpy as np
import onnxruntime

_sessions = {}


def _session(model, version):
    key = (model, version)
    if key not in _sessions:
        bucket, _, prefix = os.environ["MODEL_REPOSITORY"].removeprefix("s3://").partition("/")
        s3 = boto3.client("s3")
        body = s3.get_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{model}/{version}/model.onnx")["Body"].read()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        _sessions[key] = onnxruntime.InferenceSession(body, options, providers=["CPUExecutionProvider"])
    return _sessions[key]


def infer(body, model="esol-solubility", version="1"):
    request = json.loads(body)
    session = _session(model, version)
    feeds = {}
    for tensor in request["inputs"]:
        feeds[tensor["name"]] = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, feeds)
    return json.dumps({
        "model_name": model, "model_version": version,
        "outputs": [{"name": n, "datatype": "FP32", "shape": list(o.shape), "data": o.ravel().tolist()}
                    for n, o in zip(names, outputs)],
    })


def lambda_handler(event, context):
    parts = event["rawPath"].strip("/").split("/")
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": infer(event["body"], model=parts[2])}
