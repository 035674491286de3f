"""The client's token goes to the archive's own origin and to origins trusted explicitly,
nowhere else: DataLink documents, files and redirects on other loopback servers that
record the headers they receive."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import ctanb
from ctanb._errors import ConfigError
from ctanb.client.auth import ScopedToken, origin

FILE = b"SIMPLE  =                    T" + b" " * 50


class Recorder:
    """A loopback HTTP server that records (path, Authorization) of every request and
    serves a DataLink document, a file, and redirects."""

    def __init__(self, datalink: bytes = b""):
        self.seen: list[tuple[str, str | None]] = []
        self.datalink = datalink
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                recorder.seen.append((self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect?to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, ctype = FILE, "application/fits"
                if self.path.startswith("/datalink"):
                    body, ctype = recorder.datalink, "application/x-votable+xml"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def auth_of(self, prefix: str) -> list[str | None]:
        return [auth for path, auth in self.seen if path.startswith(prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def did(archive_url: str) -> str:
    r = httpx.post(
        f"{archive_url}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 obs_publisher_did FROM ivoa.obscore "
              "WHERE data_rights = 'public' ORDER BY obs_id", "RESPONSEFORMAT": "csv"},
    )  # fmt: skip
    return r.text.splitlines()[1].strip()


@pytest.fixture()
def servers(archive_url: str, did: str):
    """Two recorders serving the archive's own DataLink document with the access URLs
    rewritten to point at them."""
    links = httpx.get(f"{archive_url}/datalink", params={"ID": did}).content
    made = [Recorder(), Recorder()]
    for rec in made:
        rec.datalink = links.replace(archive_url.encode() + b"/files/", rec.url.encode() + b"/f/")
    yield made
    for rec in made:
        rec.close()


def test_token_stays_with_the_archive(archive_url: str, did: str, servers, tmp_path) -> None:
    other, _ = servers
    archive = ctanb.connect(archive_url, token="demo-token-vela", progress=False)
    # the archive's own origin gets the token
    own = archive.session.get(f"{archive_url}/availability")
    assert own.request.headers["Authorization"] == "Bearer demo-token-vela"
    # a DataLink service and the files it names on another origin do not
    links = archive._datalinks([did], url=f"{other.url}/datalink")[did]
    urls = [link.access_url for link in links if link.access_url]
    assert urls and all(u.startswith(other.url + "/f/") for u in urls)
    archive.downloads.cache_dir = tmp_path
    archive.downloads.fetch(urls[:1])
    assert other.auth_of("/datalink") == [None]
    assert other.auth_of("/f/") and set(other.auth_of("/f/")) == {None}
    # even when the archive's own session headers are set by hand, the scope holds
    archive.session.headers["Authorization"] = "Bearer leaked"
    archive.session.get(f"{other.url}/f/x")
    assert other.auth_of("/f/x") == [None]


def test_trusted_origins_get_it_and_redirects_are_rescoped(archive_url: str, servers) -> None:
    trusted, stranger = servers
    archive = ctanb.connect(
        archive_url, token="vela-team:demo-token-vela", trusted_origins=[trusted.url + "/x"],
        progress=False,
    )  # fmt: skip
    assert archive.has_token
    archive.session.get(f"{trusted.url}/f/a")
    (auth,) = trusted.auth_of("/f/a")
    assert auth is not None and auth.startswith("Basic ")
    # a trusted server redirecting elsewhere: the next hop gets no token...
    archive.session.get(f"{trusted.url}/redirect?to={stranger.url}/f/b")
    assert stranger.auth_of("/f/b") == [None]
    # ...and a stranger redirecting to a trusted origin: that hop gets it again
    archive.session.get(f"{stranger.url}/redirect?to={trusted.url}/f/c")
    assert stranger.auth_of("/redirect") == [None]
    (auth,) = trusted.auth_of("/f/c")
    assert auth is not None and auth.startswith("Basic ")
    assert "demo-token" not in repr(archive.session.auth)


def test_origin_is_scheme_host_port() -> None:
    assert origin("HTTP://Example.org/tap") == ("http", "example.org", 80)
    assert origin("https://example.org:443/a") == origin("https://EXAMPLE.org/b")
    scoped = ScopedToken("t", ["http://127.0.0.1:8000/tap"])
    assert scoped.trusts("http://127.0.0.1:8000/files/x")
    assert not scoped.trusts("http://127.0.0.1:8001/files/x")
    assert not scoped.trusts("https://127.0.0.1:8000/files/x")
    assert not scoped.trusts("http://127.0.0.1.evil.org:8000/")
    assert not scoped.trusts("http://evil.org/?http://127.0.0.1:8000/")
    with pytest.raises(ConfigError):
        ctanb.connect("http://127.0.0.1:1/tap", token="t", trusted_origins=["ftp://x"])
