"""Cold start: time from starting a Lambda bootstrap process to its first
successful prediction, with the model fetched from an S3 server on loopback.

A minimal Lambda Runtime API on loopback hands the process one API Gateway
HTTP API event and records when the response arrives. Each run starts a new
process, as a cold Lambda sandbox would, and kills it after the response.

Usage: cold_start.py --runs N --label NAME -- COMMAND [ARGS...]
The environment passed to COMMAND is this script's environment plus
AWS_LAMBDA_RUNTIME_API. Prints one JSON object with the timings.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def infer_event():
    body = json.dumps({"inputs": [{"name": "descriptors", "datatype": "FP32", "shape": [1, 6],
                                   "data": [1, 116.204, 1, 0, 2, 20.23]}]})
    return {
        "version": "2.0", "routeKey": "POST /v2/models/{model}/infer",
        "rawPath": "/v2/models/esol-solubility/infer", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/v2/models/esol-solubility/infer",
                                    "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
                           "requestId": "bench", "stage": "$default", "timeEpoch": 0},
        "body": body, "isBase64Encoded": False,
    }


class RuntimeApi(BaseHTTPRequestHandler):
    state = None

    def do_GET(self):
        if self.path.endswith("/invocation/next"):
            if self.state["served"]:
                # Later polls wait until the process is killed.
                self.state["done"].wait()
                return
            self.state["served"] = True
            request_id = str(uuid.uuid4())
            payload = json.dumps(infer_event()).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        now = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if self.path.endswith("/response"):
            self.state["response"] = (now, body)
        else:
            self.state["response"] = (now, b"ERROR " + body)
        self.state["answered"].set()

    def log_message(self, *args):
        pass


def one_run(command, label):
    state = {"served": False, "answered": threading.Event(), "done": threading.Event()}
    handler = type("Api", (RuntimeApi,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME=label, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024", AWS_LAMBDA_LOG_LEVEL="WARN")
    log = open(ROOT / "target" / f"bench-{label}.log", "ab")
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        if not state["answered"].wait(120):
            raise SystemExit(f"{label}: no response within 120 s")
        finished, body = state["response"]
    finally:
        process.kill()
        process.wait()
        state["done"].set()
        server.shutdown()
    response = json.loads(body)
    if response.get("statusCode") != 200:
        raise SystemExit(f"{label}: the first invocation failed: {body[:500]!r}")
    return (finished - started) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--label", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    times = [one_run(command, args.label) for _ in range(args.runs)]
    print(json.dumps({"measure": "cold_start", "label": args.label, "runs": args.runs,
                      "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}))


if __name__ == "__main__":
    sys.exit(main())
