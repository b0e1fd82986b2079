"""Start the predict function under `cargo lambda watch` for the Python tests.

The function serves a copy of the example registry. A small gateway in front
of it turns HTTP requests into Lambda function URL events the way AWS does,
base64-encoding bodies that are not text. The gateway exists because
`cargo lambda watch` 1.9.2 forwards a body without a Content-Type header as
UTF-8 text and answers 500 when it is not, which is what tritonclient sends
with binary tensor data.
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_start(port, log_path, timeout=900):
    """Wait for the function's start-up line.

    cargo lambda watch starts the function on the first request and loses
    that request, so a throwaway request every 10 s starts it.
    """
    deadline = time.monotonic() + timeout
    poked = 0.0
    while "predict function started" not in log_path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"predict not ready after {timeout} s; log:\n{log_path.read_text()}")
        if time.monotonic() - poked > 10:
            poked = time.monotonic()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=1)
            except Exception:  # noqa: BLE001 - this request is expected to be lost
                pass
        time.sleep(0.2)


@pytest.fixture(scope="session")
def watch(tmp_path_factory):
    registry = tmp_path_factory.mktemp("registry")
    shutil.copytree(REPO / "examples" / "registry", registry, dirs_exist_ok=True)
    port = free_port()
    log_path = REPO / "target" / "test-logs" / f"python-watch-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MODEL_REPOSITORY=str(registry))
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["cargo", "lambda", "watch", "--ignore-changes", "--quiet", "-A", "127.0.0.1", "-P", str(port),
             "-p", "predict", "--env-var", f"MODEL_REPOSITORY={registry}"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for_start(port, log_path)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class FunctionUrlGateway(BaseHTTPRequestHandler):
    """Forwards each request to the function as a function URL event."""

    invoke_url = None

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        content_type = self.headers.get("Content-Type", "")
        is_text = content_type.startswith(TEXT_TYPES) and not self.headers.get("Content-Encoding")
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "requestContext": {
                "http": {"method": self.command, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": self.headers.get("User-Agent", "")},
                "requestId": "gateway", "stage": "$default", "timeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": not is_text,
        }
        if body:
            event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
        request = urllib.request.Request(self.invoke_url, data=json.dumps(event).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:
            result = json.loads(response.read())
        payload = result.get("body") or ""
        payload = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        self.send_response(result.get("statusCode", 200))
        for name, value in (result.get("headers") or {}).items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def gateway(watch):
    handler = type("Gateway", (FunctionUrlGateway,), {"invoke_url": f"http://{watch}/2015-03-31/functions/_/invocations"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
