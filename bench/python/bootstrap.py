"""A minimal Lambda runtime loop for handler.py: poll the Runtime API for the
next event, call the handler, post the result. It does less than AWS's own
runtime interface client, so it favours Python in the cold-start figures."""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import handler  # noqa: E402 - imports boto3, numpy and onnxruntime at init, as a deployed handler does

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"

while True:
    with urllib.request.urlopen(f"{API}/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(response.read())
    result = handler.lambda_handler(event, None)
    data = json.dumps(result).encode()
    urllib.request.urlopen(urllib.request.Request(f"{API}/{request_id}/response", data=data, method="POST")).read()
