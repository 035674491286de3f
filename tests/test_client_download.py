"""The download manager against a small loopback HTTP server that we control.

The real archive service is used by ``test_client_archive.py``; here the server
must misbehave on purpose (lie about checksums, drop connections), and it logs
the ``Range`` headers it receives so that resuming can be checked.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ctanb import AuthError, DownloadError
from ctanb.client.download import DownloadManager, expected_sha256, sha256_file

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Files:
    """What the server serves: path -> (bytes, announced sha256), plus a request log."""

    def __init__(self):
        self.files: dict[str, tuple[bytes, str]] = {}
        self.log: list[tuple[str, str, str | None]] = []
        self.head_hangs = False  # as DaCHS 2.7's products: a HEAD is never answered


def _handler(state: _Files):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, head_only: bool):
            state.log.append((self.command, self.path, self.headers.get("Range")))
            if self.path.startswith("/secret"):
                body = b"proprietary until 2030-01-01; group hess-private"
                self.send_response(403)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)
                return
            if self.path not in state.files:
                self.send_error(404)
                return
            data, sha = state.files[self.path]
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("ETag", f'"{sha}"')
            digest = base64.b64encode(bytes.fromhex(sha)).decode()
            self.send_header("Digest", f"sha-256={digest}")
            name = self.path.rsplit("/", 1)[-1]
            self.send_header("Content-Disposition", f'attachment; filename="{name}.fits"')
            self.end_headers()
            if not head_only:
                self.wfile.write(data[start:])

        def do_GET(self):
            self._send(False)

        def do_HEAD(self):
            if state.head_hangs:
                state.log.append(("HEAD", self.path, None))
                time.sleep(30)
                return
            self._send(True)

    return Handler


@pytest.fixture
def server():
    state = _Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _manager(tmp_path):
    return DownloadManager(requests.Session(), tmp_path / "cache", workers=3, progress=False)


def _serve(server, path, data, sha=None):
    server.files[path] = (data, sha or hashlib.sha256(data).hexdigest())
    return server.url + path


def test_files_arrive_verified_with_server_names_and_are_reused(server, tmp_path):
    urls = [_serve(server, f"/files/run{i}", PAYLOAD[i:]) for i in range(3)]
    manager = _manager(tmp_path)
    paths = manager.fetch(urls)
    assert [p.name for p in paths] == ["run0.fits", "run1.fits", "run2.fits"]
    assert [p.read_bytes() for p in paths] == [PAYLOAD[i:] for i in range(3)]
    assert sum(1 for x in server.log if x[0] == "GET") == 3
    stamps = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in paths]
    again = manager.fetch(urls, dest=tmp_path / "out")
    assert [p.parent for p in again] == [tmp_path / "out"] * 3
    # The cached files were checked against the server's headers and kept as they were.
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in paths] == stamps
    assert [p.read_bytes() for p in again] == [PAYLOAD[i:] for i in range(3)]


def test_cached_files_are_checked_without_head(server, tmp_path):
    """DaCHS 2.7 never ends its answer to a HEAD of a product: the check must not hang."""
    url = _serve(server, "/files/dachs", PAYLOAD)
    manager = DownloadManager(requests.Session(), tmp_path / "cache", progress=False)
    (path,) = manager.fetch([url])
    server.head_hangs = True
    started = time.monotonic()
    assert manager.fetch([url]) == [path]
    assert time.monotonic() - started < 5
    assert not [x for x in server.log if x[0] == "HEAD"]


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    url = _serve(server, "/files/a", PAYLOAD)
    manager = _manager(tmp_path)
    (path,) = manager.fetch([url])
    with open(path, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"XXXX")
    (again,) = manager.fetch([url])
    assert again.read_bytes() == PAYLOAD
    assert sum(1 for x in server.log if x[0] == "GET") == 3  # download, check, download


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    url = _serve(server, "/files/big", PAYLOAD)
    manager = _manager(tmp_path)
    folder = manager.cache_folder(url)
    folder.mkdir(parents=True)
    (folder / "big.fits.part").write_bytes(PAYLOAD[:300_000])
    (path,) = manager.fetch([url])
    assert path.read_bytes() == PAYLOAD
    assert ("GET", "/files/big", "bytes=300000-") in server.log
    assert not list(folder.glob("*.part"))


def test_a_lying_server_gives_a_download_error_naming_the_file(server, tmp_path):
    url = _serve(server, "/files/liar", PAYLOAD, sha="0" * 64)
    with pytest.raises(DownloadError, match=r"liar\.fits .*corrupt after two attempts") as info:
        _manager(tmp_path).fetch([url])
    assert info.value.url == url and info.value.path.endswith("liar.fits")
    assert sum(1 for x in server.log if x[0] == "GET") == 2


def test_refused_file_gives_auth_error_with_the_servers_reason(server, tmp_path):
    with pytest.raises(AuthError, match="proprietary until 2030-01-01") as info:
        _manager(tmp_path).fetch([server.url + "/secret/run"])
    assert "CTANB_TOKEN" in str(info.value)


def test_missing_file_and_closed_port_are_download_errors(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        _manager(tmp_path).fetch([server.url + "/files/nothing"])
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}"):
        _manager(tmp_path).fetch([f"http://127.0.0.1:{port}/files/x"])


def test_checksum_headers():
    sha = hashlib.sha256(b"abc").hexdigest()
    b64 = base64.b64encode(bytes.fromhex(sha)).decode()
    assert expected_sha256({"Digest": f"sha-256={b64}"}) == sha
    assert expected_sha256({"ETag": f'W/"{sha.upper()}"'}) == sha
    assert expected_sha256({"ETag": '"abc"'}) is None


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(PAYLOAD)
    assert sha256_file(p) == hashlib.sha256(PAYLOAD).hexdigest()
