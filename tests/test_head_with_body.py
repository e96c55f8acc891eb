"""uvicorn under vodorigin writes a response's head together with its body (web/server.py's
HeadWithBody): one send per response instead of two, with nothing lost or reordered.

The protocol class `vodorigin serve` uses runs over a transport that records each send the
socket would make (a write or a writelines is one send)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from tests.conftest import FIXTURES
from vodorigin.settings import Settings
from vodorigin.web.app import create_app
from vodorigin.web.server import uvicorn_options


class Recorder:
    """A transport that keeps what each send would have put on the socket."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False
        self.before_loss: tuple[int, bool] = (0, False)  # sends made and closed, as the client left

    def write(self, data: bytes) -> None:
        if data:
            self.sends.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.sends.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _toy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """/ one body; /two a body in two parts; /upload reads the request body; /fail starts and fails."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/upload":
        received = b""
        more = True
        while more:
            message = await receive()
            received += message.get("body", b"")
            more = message.get("more_body", False)
        body = b"got %d" % len(received)
    else:
        body = b"first|second" if path == "/two" else b"hello"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    if path == "/fail":
        raise RuntimeError("the app fails after its head")
    if path == "/two":
        await send({"type": "http.response.body", "body": body[:6], "more_body": True})
        await asyncio.sleep(0.01)
        body = body[6:]
    await send({"type": "http.response.body", "body": body})


def connection(app: Any, transport: Any = None) -> tuple[Any, Any]:
    """A fresh connection of the protocol `vodorigin serve` uses, over a Recorder or the transport
    given (call from a loop)."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off",
                            **uvicorn_options(Settings(media_root=str(FIXTURES))))
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = transport or Recorder()
    protocol.connection_made(transport)
    return protocol, transport


async def _exchange(app: Any, request: bytes, responses: int = 1) -> Recorder:
    """Feed `request` to a fresh connection; wait for `responses` answers."""
    protocol, transport = connection(app)
    protocol.data_received(request)
    for _ in range(500):
        if transport.closed or sum(send.startswith(b"HTTP/1.1 2") for send in transport.sends) >= responses:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let anything still to come be written
    transport.before_loss = (len(transport.sends), transport.closed)
    protocol.connection_lost(None)
    return transport


def _run(app: Any, request: bytes, responses: int = 1) -> Recorder:
    return asyncio.run(_exchange(app, request, responses))


def test_a_response_is_one_send() -> None:
    sends = _run(_toy, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").sends
    assert len(sends) == 1, sends
    head, _, body = sends[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 5" in head and body == b"hello"


def test_a_playlist_from_the_app_is_one_send() -> None:
    app = create_app(Settings(media_root=str(FIXTURES), response_cache_bytes=0))
    sends = _run(app, b"GET /hls/bframes.mp4/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n").sends
    assert len(sends) == 1, [send[:80] for send in sends]
    head, _, body = sends[0].partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.startswith(b"content-length"))
    assert body.startswith(b"#EXTM3U") and len(body) == length


def test_a_body_in_parts_is_sent_in_order() -> None:
    sends = _run(_toy, b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n").sends
    assert len(sends) == 2, sends
    assert sends[0].endswith(b"\r\n\r\nfirst|") and sends[1] == b"second"


def test_head_only_answers_are_sent_when_the_response_completes() -> None:
    """uvicorn writes no body for HEAD: the head goes out as the response completes, not when the
    idle connection is closed."""
    transport = _run(_toy, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.before_loss == (1, False)
    assert transport.sends[0].startswith(b"HTTP/1.1 200") and transport.sends[0].endswith(b"\r\n\r\n")


def test_pipelined_requests_are_answered_in_order() -> None:
    request = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path for path in (b"/", b"/two", b"/"))
    data = b"".join(_run(_toy, request, responses=3).sends)
    bodies = [part.partition(b"\r\n\r\n")[2] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"hello", b"first|second", b"hello"]


def test_an_interim_continue_is_not_held() -> None:
    """A client waiting for "100 Continue" before its body gets it before any response."""

    async def exchange() -> list[bytes]:
        protocol, transport = connection(_toy)
        protocol.data_received(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                               b"Content-Length: 4\r\n\r\n")
        for _ in range(100):
            if transport.sends:
                break
            await asyncio.sleep(0.01)
        assert transport.sends == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        protocol.data_received(b"data")
        for _ in range(100):
            if len(transport.sends) > 1:
                break
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return transport.sends

    sends = asyncio.run(exchange())
    assert len(sends) == 2 and sends[1].endswith(b"\r\n\r\ngot 4")


def test_a_head_whose_body_never_comes_is_sent_before_the_close() -> None:
    transport = _run(_toy, b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.before_loss == (1, True) and transport.sends[0].startswith(b"HTTP/1.1 200")
