"""Client logos: fetched by the agent within limits, kept on the device, never loaded by the browser."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.ui.logos import LogoCache
from core.fetch import MAX_IMAGE, FetchError, fetch_image, image_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BODIES = {
    "/logo.png": (200, PNG),
    "/logo.svg": (200, b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
    "/huge.png": (200, b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_IMAGE + 1)),
    "/moved.png": (302, b""),
    "/gone.png": (404, b""),
}


class Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        Handler.hits.append(self.path)
        status, body = BODIES.get(self.path, (404, b""))
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/logo.png")
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def picture_server() -> Iterator[str]:
    """A loopback server of the pictures above; ``Handler.hits`` lists the paths asked for."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.hits = []
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[str]:
    with picture_server() as base:
        yield base


def test_a_logo_is_fetched_once_kept_on_disk_and_announced(server: str, tmp_path: Path) -> None:
    ready: list[str] = []
    cache = LogoCache(tmp_path / "logos", allow_loopback=True, on_ready=ready.append)
    uri = server + "/logo.png"
    assert cache.get(uri) is None  # not on the device yet: the fetch starts in the background
    assert cache.wait_idle()
    assert ready == [uri]
    assert cache.get(uri) == PNG
    again = LogoCache(tmp_path / "logos", allow_loopback=True)  # a restarted agent reads it from disk
    assert again.get(uri) == PNG
    assert Handler.hits == ["/logo.png"]


@pytest.mark.parametrize("path", ["/logo.svg", "/huge.png", "/moved.png", "/gone.png"])
def test_what_is_not_a_small_raster_picture_at_that_address_is_refused_and_not_asked_again(
        server: str, tmp_path: Path, path: str) -> None:
    ready: list[str] = []
    cache = LogoCache(tmp_path / "logos", allow_loopback=True, on_ready=ready.append)
    uri = server + path
    assert cache.get(uri) is None
    assert cache.wait_idle()
    assert cache.get(uri) is None
    assert cache.wait_idle()
    assert ready == []
    assert Handler.hits == [path]  # the failure is remembered: no second fetch, no redirect followed


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:9/logo.png", "only https"),           # loopback needs the development switch
    ("http://clinic.example/logo.png", "only https"),
    ("https://192.168.1.1/logo.png", "not a public"),         # the owner's own network
    ("https://10.0.0.8/logo.png", "not a public"),
    ("https://[::1]/logo.png", "not a public"),
    ("https://169.254.169.254/logo.png", "not a public"),
    ("file:///etc/passwd", "only https"),
])
def test_fetch_image_refuses_addresses_on_the_device_or_its_network(url: str, why: str) -> None:
    with pytest.raises(FetchError, match=why):
        fetch_image(url)


def test_image_type_trusts_the_bytes_not_the_name() -> None:
    assert image_type(PNG) == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_type(b"<svg/>") is None
    assert image_type(b"") is None


def test_fetch_json_shares_the_same_limits(server: str) -> None:
    from core.fetch import fetch_json

    with pytest.raises(FetchError, match="answered 404"):
        fetch_json(server + "/gone.png")
    with pytest.raises(FetchError, match="answered 302"):
        fetch_json(server + "/moved.png")
    with pytest.raises(FetchError, match="did not serve JSON"):
        fetch_json(server + "/logo.png")
