"""File ranges sent with sendfile(2) under uvicorn (web/server.py's FileSpan and HeadWithBody,
responses.FileReply, storage/page_cache.py).

The protocol `vodorigin serve` uses runs over a transport on a real socket pair: what the peer
reads is what a client would, whichever of sendfile or the transport's write carried it."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.test_head_with_body import connection
from vodorigin.origin import Origin
from vodorigin.settings import Settings
from vodorigin.storage import page_cache
from vodorigin.storage.local import LocalStorage
from vodorigin.web import server
from vodorigin.web.app import create_app
from vodorigin.web.responses import FileReply

PAYLOAD = os.urandom(300_000)


def _kernel_tells() -> bool:
    """Whether this kernel answers cachestat (Linux 6.5, and no seccomp filter refusing it)."""
    with tempfile.TemporaryFile() as file:
        file.write(b"x")
        file.flush()
        return page_cache.holds(file.fileno(), 0, 1)


needs_cachestat = pytest.mark.skipif(not _kernel_tells(), reason="no cachestat here: ranges are read")


class SocketTransport:
    """A transport over one end of a socket pair that writes as uvloop's does: straight to the
    socket while nothing is queued, the rest queued until `flush`. With `backlog`, every write is
    queued (a client that is not reading)."""

    def __init__(self, send_buffer: int | None = None, tls: bool = False) -> None:
        self.sock, self.peer = socket.socketpair()
        if send_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.sock.setblocking(False)
        self.queued = bytearray()
        self.backlog = False
        self.closed = False
        self.closed_by_server = False  # before the test ends the connection
        self.tls = tls

    def write(self, data: bytes) -> None:
        self.queued += data
        if not self.backlog:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        try:
            while self.queued:
                del self.queued[: self.sock.send(self.queued)]
        except BlockingIOError:
            pass
        except OSError:  # the peer has gone: as a real transport, drop what is queued
            self.queued.clear()

    def get_write_buffer_size(self) -> int:
        return len(self.queued)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "ssl_object": object() if self.tls else None}.get(name, default)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def received(self) -> bytes:
        """Everything the peer can read, draining the queue as it reads."""
        self.backlog = False
        self.peer.setblocking(False)
        data = bytearray()
        while True:
            self.flush()
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                if not self.queued:
                    return bytes(data)
                continue
            if not chunk:
                return bytes(data)
            data += chunk


@pytest.fixture
def sendfile_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each os.sendfile the server made sent."""
    calls: list[int] = []
    real = os.sendfile

    def counted(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = real(out_fd, in_fd, offset, count)
        calls.append(sent)
        return sent

    monkeypatch.setattr(server.os, "sendfile", counted)
    return calls


def _file_app(path: Path, count: int, seen: list[Any]) -> Any:
    """Answers every request with `count` bytes of `path` as a FileSpan body, keeping the scope's
    extensions in `seen`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope.get("extensions"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % count)]})
        with path.open("rb") as file:
            await send({"type": "http.response.body", "body": server.FileSpan(file.fileno(), 0, count)})

    return app


def _exchange(app: Any, transport: SocketTransport, request: bytes, before: bytes = b"") -> bytes:
    """What the peer reads after `request` (behind `before`, still queued when the body is sent)."""

    async def run() -> bytes:
        protocol, _ = connection(app, transport)
        if before:
            transport.backlog = True
            transport.write(before)
        protocol.data_received(request)
        for _ in range(300):
            await asyncio.sleep(0.01)
            if protocol.cycle is not None and protocol.cycle.response_complete or transport.closed:
                break
        data = transport.received()
        transport.closed_by_server = transport.closed
        protocol.connection_lost(None)
        return data

    try:
        return asyncio.run(run())
    finally:
        transport.sock.close()
        transport.peer.close()


def _body(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[2]


GET = b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n"


def test_a_file_range_goes_from_the_file_to_the_socket(tmp_path: Path, sendfile_calls: list[int]) -> None:
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    seen: list[Any] = []
    data = _exchange(_file_app(media, len(PAYLOAD), seen), SocketTransport(), GET)
    assert data.startswith(b"HTTP/1.1 200 OK") and _body(data) == PAYLOAD
    assert seen == [{server.FILE_SPAN: {}}]
    assert sum(sendfile_calls) > 0


def test_bytes_queued_ahead_keep_their_place(tmp_path: Path, sendfile_calls: list[int]) -> None:
    """While the transport holds bytes not yet sent, the file's bytes queue behind them."""
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    data = _exchange(_file_app(media, len(PAYLOAD), []), SocketTransport(), GET, before=b"EARLIER")
    assert data.startswith(b"EARLIERHTTP/1.1 200 OK") and _body(data) == PAYLOAD
    assert sendfile_calls == []


def test_what_the_socket_does_not_take_goes_through_the_transport(tmp_path: Path,
                                                                   sendfile_calls: list[int]) -> None:
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    data = _exchange(_file_app(media, len(PAYLOAD), []), SocketTransport(send_buffer=4096), GET)
    assert _body(data) == PAYLOAD
    assert 0 < sum(sendfile_calls) < len(PAYLOAD)


def test_a_file_shorter_than_its_range_closes_the_connection(tmp_path: Path) -> None:
    """The file was cut after its size was taken: the client gets a short body and the end of the
    connection, never a next response read as the rest of this one."""
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    transport = SocketTransport()
    data = _exchange(_file_app(media, len(PAYLOAD) + 1000, []), transport, GET)
    assert _body(data) == PAYLOAD and transport.closed_by_server


def test_no_zerocopy_over_tls(sendfile_calls: list[int]) -> None:
    """Bytes written to the socket itself would bypass the encryption: the extension is not offered."""
    seen: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope.get("extensions"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    assert _body(_exchange(app, SocketTransport(tls=True), GET)) == b"ok"
    assert seen == [None] and sendfile_calls == []


def _media_root(tmp_path: Path) -> Path:
    """A media root whose file holds PAYLOAD (written, so in the page cache), then 1 MiB never
    written (a hole: no page of it cached)."""
    root = tmp_path / "media"
    root.mkdir()
    with (root / "clip.mp4").open("wb") as file:
        file.write(PAYLOAD)
        file.truncate(len(PAYLOAD) + (1 << 20))
    return root


@needs_cachestat
def test_pd_ranges_in_the_page_cache_are_sent_with_sendfile(tmp_path: Path,
                                                            sendfile_calls: list[int]) -> None:
    app = create_app(Settings(media_root=str(_media_root(tmp_path))))
    request = b"GET /pd/clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-200999\r\n\r\n"
    data = _exchange(app, SocketTransport(), request)
    assert data.startswith(b"HTTP/1.1 206") and b"content-range: bytes 1000-200999/" in data
    assert _body(data) == PAYLOAD[1000:201000] and sum(sendfile_calls) > 0


def test_pd_ranges_not_in_the_page_cache_are_read(tmp_path: Path, sendfile_calls: list[int]) -> None:
    """sendfile would wait for the disk on the event loop: the range is read as before."""
    app = create_app(Settings(media_root=str(_media_root(tmp_path))))
    start = len(PAYLOAD) + 4096
    request = b"GET /pd/clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-%d\r\n\r\n" % (start, start + 99_999)
    data = _exchange(app, SocketTransport(), request)
    assert data.startswith(b"HTTP/1.1 206") and _body(data) == bytes(100_000)
    assert sendfile_calls == []


@needs_cachestat
def test_the_page_cache_is_asked_page_by_page(tmp_path: Path) -> None:
    root = _media_root(tmp_path)
    fd = os.open(root / "clip.mp4", os.O_RDONLY)
    try:
        assert page_cache.holds(fd, 0, len(PAYLOAD))
        assert page_cache.holds(fd, 1, 10)
        assert not page_cache.holds(fd, len(PAYLOAD) + page_cache.PAGE, 10)  # the hole
        assert not page_cache.holds(fd, 0, len(PAYLOAD) + (1 << 20))  # partly cached
        assert not page_cache.holds(fd, 0, 0)  # cachestat reads 0 as "to the end of the file"
    finally:
        os.close(fd)
    assert not page_cache.holds(fd, 0, 10)  # a closed descriptor
    assert page_cache._available  # ...is that descriptor's fault, not the kernel's


def test_a_kernel_without_cachestat_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[int] = []

    def missing(*arguments: Any) -> int:
        calls.append(1)
        ctypes.set_errno(errno.ENOSYS)
        return -1

    monkeypatch.setattr(page_cache, "_syscall", missing)
    monkeypatch.setattr(page_cache, "_available", True)
    fd = os.open(_media_root(tmp_path) / "clip.mp4", os.O_RDONLY)
    try:
        assert not page_cache.holds(fd, 0, 10) and not page_cache.holds(fd, 0, 10)
    finally:
        os.close(fd)
    assert calls == [1]  # not asked again


def test_a_client_gone_ends_the_connection(tmp_path: Path) -> None:
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    transport = SocketTransport()
    transport.peer.close()  # sendfile meets EPIPE
    transport.peer, other = socket.socketpair()  # for received(): a socket at its end
    other.close()
    _exchange(_file_app(media, len(PAYLOAD), []), transport, GET)
    assert transport.closed_by_server


def test_a_refused_sendfile_copies_instead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without sendfile (EINVAL): the bytes are read and written, as they were."""
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)

    def refused(*arguments: Any) -> int:
        raise OSError(errno.EINVAL, "not for this file")

    monkeypatch.setattr(server.os, "sendfile", refused)
    data = _exchange(_file_app(media, len(PAYLOAD), []), SocketTransport(), GET)
    assert _body(data) == PAYLOAD


def test_a_closing_connection_is_not_written_to_directly(tmp_path: Path, sendfile_calls: list[int]) -> None:
    """Once the transport is closing, its descriptor may be closed and its number reused: the file's
    bytes go through the transport, which drops them."""
    (media := tmp_path / "media.bin").write_bytes(PAYLOAD)
    transport = SocketTransport()
    span_writer = server.HeadWithBody(transport)  # type: ignore[arg-type]
    transport.closed = True
    with media.open("rb") as file:
        span_writer.write(server.FileSpan(file.fileno(), 0, len(PAYLOAD)))
    assert sendfile_calls == []
    transport.sock.close()
    transport.peer.close()


@pytest.mark.parametrize("offered", [True, False])
def test_a_file_changed_before_its_range_is_sent_is_an_error_response(tmp_path: Path, offered: bool) -> None:
    """The file is opened, its identity checked again, before the head goes: a file replaced
    since its stat is a 422 with a JSON body, never an exception after a 206's head."""
    root = _media_root(tmp_path)
    origin = Origin(Settings(media_root=str(root)), LocalStorage(root))
    source = asyncio.run(origin.storage.stat("clip.mp4"))
    (root / "clip.mp4").write_bytes(PAYLOAD[:1000])  # replaced: another size
    messages: list[Any] = []

    async def send(message: Any) -> None:
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": "/pd/clip.mp4",
             "extensions": {server.FILE_SPAN: {}} if offered else {}}
    reply = FileReply(206, [(b"content-length", b"100")], origin, source, 0, 100)
    asyncio.run(reply(scope, None, send))  # type: ignore[arg-type]
    assert messages[0]["status"] == 422
    assert b"changed" in messages[1]["body"]
