"""Helpers of the tests that start real servers on loopback (MLflow UI, tracking and
scoring servers)."""

import contextlib
import http.server
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator


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


@contextlib.contextmanager
def failing_tracking_server(
    *, hang: float = 0.0, answering: tuple[str, ...] = (), missing: tuple[str, ...] = ()
) -> Iterator[str]:
    """A server on loopback that answers ``/health`` with 200 and every other request (the
    MLflow API) with HTTP 500, as a proxy in front of a broken tracking server does. With
    ``hang``, those calls first wait that many seconds; the paths in ``answering`` get 200
    and an empty JSON object instead (``/api/2.0/mlflow/experiments/search``: the server
    passes ``ketapredict.tracking.preflight`` and fails later), and those in ``missing``
    MLflow's 404 for what is not in the store (``/api/2.0/mlflow/experiments/get-by-name``:
    no experiment of that name yet). Yields its URL; the paths
    of the API calls it received are appended to ``failing_tracking_server.calls``."""
    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?")[0].rstrip("/")
            if path == "/health":
                body, status = b"OK", 200
            elif path in answering:
                body, status = b"{}", 200
            elif path in missing:
                body = b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}'
                status = 404
            else:
                calls.append(path)
                if hang:
                    time.sleep(hang)
                body, status = b'{"error_code": "INTERNAL_ERROR", "message": "broken"}', 500
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    failing_tracking_server.calls = calls
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
