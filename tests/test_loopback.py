"""The loopback test server does what the crawler tests rely on it to do."""

from __future__ import annotations

import email.utils
import io
import logging
import socket
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

try:
    from tests.loopback import GZIP_BOMB_DECOMPRESSED_SIZE, LoopbackServer, refused_port
except ImportError:  # tests/ is not a package and the repo root is not on sys.path
    from loopback import GZIP_BOMB_DECOMPRESSED_SIZE, LoopbackServer, refused_port  # type: ignore[no-redef]


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy from the environment must never see test traffic.
    with httpx.Client(timeout=2.0, trust_env=False) as http_client:
        yield http_client


def unique() -> str:
    return uuid.uuid4().hex[:12]


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- plain routes


def test_ok_page_and_head(loopback: LoopbackServer, client: httpx.Client) -> None:
    response = client.get(loopback.url_for("/ok"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>OK</title>" in response.text

    head = client.head(loopback.url_for(f"/ok/{unique()}"))
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(response.content)


def test_attributes(loopback: LoopbackServer) -> None:
    assert loopback.url == f"http://127.0.0.1:{loopback.port}"
    assert loopback.url_for("ok") == loopback.url_for("/ok") == f"{loopback.url}/ok"


@pytest.mark.parametrize("status", [404, 410, 500, 403, 401, 418])
def test_status_is_always_that_status(loopback: LoopbackServer, client: httpx.Client, status: int) -> None:
    url = loopback.url_for(f"/status/{status}")
    assert [client.get(url).status_code for _ in range(2)] == [status, status]


def test_unknown_path_is_404_and_bad_argument_is_400(loopback: LoopbackServer, client: httpx.Client) -> None:
    assert client.get(loopback.url_for(f"/nothing-here/{unique()}")).status_code == 404
    assert client.get(loopback.url_for("/status/abc")).status_code == 400
    assert loopback.errors == []


def test_flaky_fails_once_per_path(loopback: LoopbackServer, client: httpx.Client) -> None:
    path = f"/flaky/503/{unique()}"
    assert [client.get(loopback.url_for(path)).status_code for _ in range(3)] == [503, 200, 200]
    assert loopback.hits(path) == 3
    # A different suffix has its own counter.
    assert client.get(loopback.url_for(f"/flaky/503/{unique()}")).status_code == 503


def test_retry_after_seconds_once(loopback: LoopbackServer, client: httpx.Client) -> None:
    url = loopback.url_for(f"/retry-after/7/{unique()}")
    first = client.get(url)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "7"
    assert client.get(url).status_code == 200


def test_retry_after_http_date_once(loopback: LoopbackServer, client: httpx.Client) -> None:
    url = loopback.url_for(f"/retry-after-date/5/{unique()}")
    first = client.get(url)
    assert first.status_code == 429
    retry_at = email.utils.parsedate_to_datetime(first.headers["retry-after"]).timestamp()
    assert 4 <= retry_at - time.time() <= 7
    assert client.get(url).status_code == 200


def test_always_429(loopback: LoopbackServer, client: httpx.Client) -> None:
    url = loopback.url_for(f"/always-429/{unique()}")
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_codes_relative_location_and_cookie(
    loopback: LoopbackServer, client: httpx.Client, status: int
) -> None:
    path = f"/redirect/{status}/{unique()}"
    hop = client.get(loopback.url_for(path))
    assert hop.status_code == status
    assert hop.headers["location"] == "/ok"
    assert hop.headers["set-cookie"].startswith("hop=1")

    log_size = len(loopback.requests)
    final = client.get(loopback.url_for(path), follow_redirects=True)
    assert final.status_code == 200
    assert final.url == httpx.URL(loopback.url_for("/ok"))
    arrived = [request for request in loopback.requests.all()[log_size:] if request.path == "/ok"]
    assert arrived and arrived[-1].cookies.get("hop") == "1"


def test_chain_redirects_n_times(loopback: LoopbackServer, client: httpx.Client) -> None:
    suffix = unique()
    response = client.get(loopback.url_for(f"/chain/3/{suffix}"), follow_redirects=True)
    assert response.status_code == 200
    assert [hop.status_code for hop in response.history] == [302, 302, 302]
    assert response.url.path == f"/chain/0/{suffix}"
    for remaining in (3, 2, 1, 0):
        assert len(loopback.requests.for_path(f"/chain/{remaining}/{suffix}")) == 1


def test_loop_never_ends(loopback: LoopbackServer, client: httpx.Client) -> None:
    suffix = unique()
    response = client.get(loopback.url_for(f"/loop/a{suffix}"))
    assert response.headers["location"] == f"/loop/b{suffix}"
    with httpx.Client(timeout=2.0, trust_env=False, max_redirects=5) as limited:
        with pytest.raises(httpx.TooManyRedirects):
            limited.get(loopback.url_for(f"/loop/a{suffix}"), follow_redirects=True)


def test_redirect_to_points_anywhere_without_connecting(loopback: LoopbackServer, client: httpx.Client) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    # Never follow: the point of this route is that the crawler refuses the hop.
    response = client.get(loopback.url_for(f"/redirect-to?url={urllib.parse.quote(target, safe='')}"))
    assert response.status_code == 302
    assert response.headers["location"] == target


# --------------------------------------------------------------------------- misbehaving connections


def test_hang_times_out_quickly(loopback: LoopbackServer) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(loopback.url_for(f"/hang/{unique()}"), timeout=0.5, trust_env=False)
    assert time.monotonic() - started < 1.5


def test_slow_headers(loopback: LoopbackServer) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(loopback.url_for("/slow-headers/0.5"), timeout=0.1, trust_env=False)
    started = time.monotonic()
    assert httpx.get(loopback.url_for("/slow-headers/0.3"), timeout=2, trust_env=False).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drip_sends_a_byte_every_half_second(loopback: LoopbackServer) -> None:
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        with client.stream("GET", loopback.url_for(f"/drip/{unique()}")) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == "1000000"
            started = time.monotonic()
            received = b""
            for chunk in response.iter_raw():
                received += chunk
                if len(received) >= 2:
                    break
            assert received == b"aa"
            assert 0.3 <= time.monotonic() - started < 1.5

    # A per-read timeout shorter than the drip interval trips between bytes.
    with httpx.Client(timeout=0.25, trust_env=False) as client:
        with client.stream("GET", loopback.url_for(f"/drip/{unique()}")) as response:
            with pytest.raises(httpx.ReadTimeout):
                for _ in response.iter_raw():
                    pass


def test_reset_is_a_read_error(loopback: LoopbackServer, client: httpx.Client) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get(loopback.url_for(f"/reset/{unique()}"))


def test_close_without_response(loopback: LoopbackServer, client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(loopback.url_for(f"/close/{unique()}"))


def test_refused_url(refused_url: str) -> None:
    assert refused_url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        httpx.get(refused_url, timeout=2, trust_env=False)


def test_refused_port_has_no_listener() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refused_port()), timeout=1).close()


# --------------------------------------------------------------------------- bodies


def test_head405(loopback: LoopbackServer, client: httpx.Client) -> None:
    url = loopback.url_for(f"/head405/{unique()}")
    assert client.head(url).status_code == 405
    assert client.get(url).status_code == 200


def test_gzip_bomb_is_small_on_the_wire_and_huge_decoded(loopback: LoopbackServer) -> None:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        with client.stream("GET", loopback.url_for("/gzip-bomb")) as response:
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip"
            # iter_raw: the bytes as sent; iter_bytes/.content would inflate all 200 MiB.
            compressed = b"".join(response.iter_raw())
    assert len(compressed) == int(response.headers["content-length"]) < 1_000_000

    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated, pending = 0, compressed
    while pending:
        # max_length keeps memory small: the bomb is 200 MiB of zeros.
        inflated += len(decompressor.decompress(pending, 8 * 1024 * 1024))
        pending = decompressor.unconsumed_tail
    assert inflated == GZIP_BOMB_DECOMPRESSED_SIZE


def test_big_is_endless(loopback: LoopbackServer) -> None:
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        with client.stream("GET", loopback.url_for(f"/big/{unique()}")) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers
            received = 0
            for chunk in response.iter_raw():
                assert set(chunk) == {ord("a")}
                received += len(chunk)
                if received > 2_000_000:
                    break
    assert received > 2_000_000


def test_image_ranges(loopback: LoopbackServer, client: httpx.Client) -> None:
    data = png_bytes()
    name = f"{unique()}.png"
    url = loopback.add_file(name, data, "image/png")
    assert url == loopback.url_for(f"/image/{name}")

    full = client.get(url)
    assert (full.status_code, full.content, full.headers["content-type"]) == (200, data, "image/png")

    partial = client.get(url, headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206
    assert partial.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert partial.content == data[:10]

    suffix = client.get(url, headers={"Range": "bytes=-4"})
    assert (suffix.status_code, suffix.content) == (206, data[-4:])

    beyond = client.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"

    assert client.get(loopback.url_for("/image/missing.png")).status_code == 404


def test_image_without_range_support(loopback: LoopbackServer, client: httpx.Client) -> None:
    data = png_bytes(5, 4)
    name = f"{unique()}.png"
    loopback.add_file(f"/image/{name}", data, "image/png")
    ignored = client.get(loopback.url_for(f"/noimagerange/{name}"), headers={"Range": "bytes=0-9"})
    assert (ignored.status_code, ignored.content) == (200, data)

    refused = client.get(loopback.url_for(f"/range416/{name}"), headers={"Range": "bytes=0-9"})
    assert refused.status_code == 416
    plain = client.get(loopback.url_for(f"/range416/{name}"))
    assert (plain.status_code, plain.content) == (200, data)


def test_conditional_routes_answer_304_to_their_validators(loopback: LoopbackServer, client: httpx.Client) -> None:
    data = png_bytes(6, 7)
    name = f"{unique()}.png"
    loopback.add_file(name, data, "image/png", modified=1_700_000_000)
    url = loopback.url_for(f"/conditional/{name}")
    full = client.get(url)
    etag, last_modified = full.headers["etag"], full.headers["last-modified"]
    assert (full.status_code, full.content) == (200, data)
    assert last_modified == email.utils.formatdate(1_700_000_000, usegmt=True)

    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(url, headers={"If-Modified-Since": last_modified}).status_code == 304
    # If-None-Match wins over the date; Range is weighed only after both.
    assert client.get(url, headers={"If-None-Match": '"other"', "If-Modified-Since": last_modified}).status_code == 200
    assert client.get(url, headers={"If-None-Match": etag, "Range": "bytes=0-9"}).status_code == 304
    changed = client.get(url, headers={"If-None-Match": '"other"', "Range": "bytes=0-9"})
    assert (changed.status_code, changed.content, changed.headers["etag"]) == (206, data[:10], etag)
    earlier = email.utils.formatdate(1_700_000_000 - 1, usegmt=True)
    assert client.get(url, headers={"If-Modified-Since": earlier}).status_code == 200

    loopback.add_file(name, png_bytes(8, 9), "image/png")  # new bytes: a new ETag, modified now
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": last_modified}).status_code == 200

    dated = client.get(loopback.url_for(f"/last-modified/{name}"))
    assert "etag" not in dated.headers and "last-modified" in dated.headers
    assert client.get(dated.url, headers={"If-None-Match": etag}).status_code == 200
    assert client.get(dated.url, headers={"If-Modified-Since": dated.headers["last-modified"]}).status_code == 304


def test_custom_routes_sync_and_async(loopback: LoopbackServer, client: httpx.Client) -> None:
    page = '<html><head><link rel="amphtml" href="https://example.com/amp"></head></html>'
    sync_path = f"/custom/{unique()}"
    loopback.add_route(sync_path, lambda request: (200, {"X-Seen": request.method}, page))

    async def teapot(request: object) -> tuple[int, list[tuple[str, str]], bytes]:
        return 418, [("Content-Type", "text/plain")], b"short and stout"

    async_path = f"/custom/{unique()}"
    loopback.add_route(async_path, teapot)

    response = client.get(loopback.url_for(f"{sync_path}?q=1"))
    assert (response.status_code, response.text, response.headers["x-seen"]) == (200, page, "GET")
    assert response.headers["content-type"].startswith("text/html")
    teapot_response = client.get(loopback.url_for(async_path))
    assert (teapot_response.status_code, teapot_response.content) == (418, b"short and stout")


def test_a_fallback_answers_unknown_paths_only(client: httpx.Client) -> None:
    # A server of its own: the session's shared one must keep answering 404 to unknown paths.
    with LoopbackServer() as server:
        server.add_route("/known", lambda request: (200, {}, "known"))
        server.set_fallback(lambda request: (200, {"X-Fallback": request.path_only}, "<title>Home</title>"))
        unknown = client.get(server.url_for(f"/nothing/{unique()}"))
        assert (unknown.status_code, unknown.headers["x-fallback"]) == (200, unknown.url.path)
        assert client.get(server.url_for("/known")).text == "known"
        assert client.get(server.url_for("/status/410")).status_code == 410  # built-ins still win
        server.set_fallback(None)
        assert client.get(server.url_for(f"/nothing/{unique()}")).status_code == 404


def test_request_log_and_keep_alive(loopback: LoopbackServer, client: httpx.Client) -> None:
    path = f"/ok/{unique()}"
    client.get(loopback.url_for(f"{path}?a=1"), headers={"X-Probe": "Yes"})
    client.head(loopback.url_for(path))
    first, second = loopback.requests.for_path(path)
    assert (first.method, first.path, first.query) == ("GET", f"{path}?a=1", {"a": "1"})
    assert first.headers["x-probe"] == "Yes"
    assert all(name == name.lower() for name in first.headers)
    assert (second.method, second.hit) == ("HEAD", 2)
    assert loopback.requests.for_path(f"{path}?a=1") == [first]
    # httpx reused the connection, so the server really does keep-alive.
    assert first.connection_id == second.connection_id


# --------------------------------------------------------------------------- TLS


def test_tls_verifies_with_the_ca(loopback_tls: LoopbackServer) -> None:
    assert loopback_tls.url.startswith("https://127.0.0.1:")
    assert loopback_tls.ca_pem_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for base in (loopback_tls.url, f"https://localhost:{loopback_tls.port}"):
        with httpx.Client(verify=loopback_tls.client_ssl_context(), timeout=2, trust_env=False) as client:
            assert client.get(f"{base}/ok").status_code == 200


def test_tls_without_the_ca_fails(loopback_tls: LoopbackServer) -> None:
    # Default trust store (certifi) does not know the throwaway CA.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(loopback_tls.url_for("/ok"), timeout=2, trust_env=False)


def test_tls_wrong_name_fails_on_hostname(
    loopback_tls: LoopbackServer, loopback_tls_wrong_name: LoopbackServer
) -> None:
    with httpx.Client(verify=loopback_tls.client_ssl_context(), timeout=2, trust_env=False) as client:
        with pytest.raises(httpx.ConnectError, match="mismatch"):
            client.get(loopback_tls_wrong_name.url_for("/ok"))


def test_tls_reset(loopback_tls: LoopbackServer) -> None:
    with httpx.Client(verify=loopback_tls.client_ssl_context(), timeout=2, trust_env=False) as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get(loopback_tls.url_for(f"/reset/{unique()}"))


# --------------------------------------------------------------------------- shutdown


def raw_request(port: int, path: str) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=2)
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return connection


@pytest.mark.parametrize("tls", [False, True])
def test_stop_cancels_stuck_handlers_quickly(caplog: pytest.LogCaptureFixture, tls: bool) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    threads_before = set(threading.enumerate())
    server = LoopbackServer(tls=tls).start()
    if tls:
        # Hold TLS connections open: a dripping and an endless response, and a hung request.
        context = server.client_ssl_context()
        clients = [httpx.Client(verify=context, timeout=5, trust_env=False) for _ in range(2)]
        streams = [clients[0].stream("GET", server.url_for("/drip")), clients[1].stream("GET", server.url_for("/big"))]
        for stream in streams:
            stream.__enter__()

        def wait_on_hang() -> None:
            with pytest.raises(httpx.HTTPError):  # the stop ends it: reset or disconnect
                httpx.get(server.url_for("/hang"), verify=context, timeout=5, trust_env=False)

        hanging = threading.Thread(target=wait_on_hang)
        hanging.start()
        sockets: list[socket.socket] = []
    else:
        sockets = [raw_request(server.port, path) for path in ("/hang", "/drip", "/big", "/slow-headers/30")]
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=2)  # sends nothing at all
        sockets.append(idle)
    deadline = time.monotonic() + 2
    while len(server.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5

    for connection in sockets:
        connection.settimeout(2)
        try:
            while connection.recv(65536):
                pass  # drain what was sent before the stop; then EOF
        except ConnectionResetError:
            pass
        connection.close()
    if tls:
        hanging.join(timeout=3)
        assert not hanging.is_alive()
        for stream, http_client in zip(streams, clients, strict=False):
            try:
                stream.__exit__(None, None, None)
            except httpx.HTTPError:
                pass
            http_client.close()
    assert set(threading.enumerate()) - threads_before == set()
    noisy = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert noisy == []
    assert server.errors == []


def test_server_restarts_on_a_new_port() -> None:
    with LoopbackServer() as server:
        first_port = server.port
        assert httpx.get(server.url_for("/ok"), timeout=2, trust_env=False).status_code == 200
    with pytest.raises(RuntimeError):
        _ = server.port
    with server:
        assert httpx.get(server.url_for("/ok"), timeout=2, trust_env=False).status_code == 200
        assert server.port > 0
    assert first_port > 0
