"""A local HTTP server for remote-plate tests: serves a folder on 127.0.0.1 (a free port), counts
requests, and misbehaves on demand (server errors, dropped connections, slow answers).

It answers plain HTTP GETs (fsspec's HTTPFileSystem) and the few S3 calls s3fs makes for reading
(GET/HEAD of ``/<bucket>/<key>``, an empty ListObjectsV2, ``NoSuchKey`` for a missing key), so the
same folder is reachable as ``http://127.0.0.1:<port>/<bucket>/plate.zarr`` and, with the server as
endpoint, as ``s3://<bucket>/plate.zarr``. No outside network is touched.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

#: the longest a "slow" fault sleeps: every test stays bounded in time
MAX_SLEEP_S = 3.0

_EMPTY_LISTING = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/'
                  b'2006-03-01/"><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>')
_NO_SUCH_KEY = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
                b'<Message>The specified key does not exist.</Message></Error>')


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet: the tests read the request log instead
        pass

    def do_HEAD(self):
        if self._misbehave():
            return None
        return super().do_HEAD() if self._exists() else self._answer(404, _NO_SUCH_KEY)

    def do_GET(self):
        if self._misbehave():
            return None
        if "?" in self.path:  # ListObjectsV2 (s3fs asks when a key is missing): nothing listed
            return self._answer(200, _EMPTY_LISTING)
        return super().do_GET() if self._exists() else self._answer(404, _NO_SUCH_KEY)

    def _exists(self) -> bool:
        return Path(self.translate_path(self.path)).is_file()

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _misbehave(self) -> bool:
        """Record the request, then do what the server's fault says: True when the request is answered."""
        server: PlateServer = self.server.owner
        action = server.record(self.command, self.path)
        if action is None:
            return False
        if action == "close":  # drop the connection without an answer
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if isinstance(action, tuple) and action[0] == "sleep":
            time.sleep(min(float(action[1]), MAX_SLEEP_S))
            return False
        self.send_error(int(action))
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (a timeout, a cancelled read) leaves a broken pipe behind: expected here."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            super().handle_error(request, client_address)


class PlateServer:
    """Serves ``folder`` until :meth:`stop`. ``fault(method, path, n)`` — n: how often this path was
    asked before — returns None (answer normally), an HTTP status (e.g. 500), ``"close"`` or
    ``("sleep", seconds)``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.fault: Callable[[str, str, int], object] | None = None
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def record(self, method: str, path: str):
        with self._lock:
            seen = sum(1 for m, p in self.requests if p == path)
            self.requests.append((method, path))
        return self.fault(method, path, seen) if self.fault is not None else None

    def count(self, contains: str = "") -> int:
        with self._lock:
            return sum(1 for _, p in self.requests if contains in p)

    def chunk_requests(self) -> list[str]:
        """Requests for array chunks (not metadata): v2 ``s0/0/0/0/0``, v3 ``s0/c/0/0/0/0``."""
        with self._lock:
            return [p for _, p in self.requests if is_chunk(p)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def is_chunk(path: str) -> bool:
    last = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    return last.isdigit()
