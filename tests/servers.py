"""Helpers of the tests that start real servers on loopback (MLflow UI, tracking and
scoring servers)."""

import json
import socket
import time
import urllib.request


def free_port() -> int:
    """A port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 120) -> None:
    """Wait until a server answers ``/health`` on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"nothing answered on port {port} within {timeout} s")


def post(url: str, body: dict) -> dict:
    """POST a JSON body; the JSON answer."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())
