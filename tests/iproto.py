"""A tiny blocking IPROTO client for raw-socket tests: no connector between
the test and the bytes. `frame` and `packet` are the suite's one IPROTO
frame encoder: every test that sends a well-formed packet builds it here."""

from __future__ import annotations

import socket
import struct
from typing import Any

import msgpack

from styx.protocol.auth import scramble
from styx.protocol.greeting import decode_greeting

__all__ = ["Raw", "frame", "packet"]


def frame(payload: bytes) -> bytes:
    """`0xce <u32 len>` + payload, the payload sent as is (exact or
    deliberately malformed MessagePack inside a valid length prefix)."""
    return b"\xce" + struct.pack(">I", len(payload)) + payload


def packet(header: dict[int, Any], body: Any = None) -> bytes:
    """One packet: the header map, then the body if there is one."""
    return frame(msgpack.packb(header) + (msgpack.packb(body) if body is not None else b""))


class Raw:
    """One connection. `reply()` returns (header, body) of the next packet."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.greeting_bytes = self._exact(128)
        self.greeting = decode_greeting(self.greeting_bytes)
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.raw_replies: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, rtype: int, sync: int, body: Any = None, **header: int) -> None:
        h = {0: rtype, 1: sync}
        h.update({int(k[1:]): v for k, v in header.items()})  # k5=schema version etc.
        self.send(packet(h, body))

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def reply(self) -> tuple[dict[int, Any], dict[int, Any]]:
        head = self._exact(5)
        assert head[0] == 0xCE, f"length prefix must be 0xce + u32, got {head!r}"
        (length,) = struct.unpack(">I", head[1:])
        payload = self._exact(length)
        self.raw_replies.append(head + payload)
        # surrogateescape: strings that are not UTF-8 (a splice can cut a
        # character) come back as the server sent them.
        u = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape")
        u.feed(payload)
        header = u.unpack()
        body = u.unpack()
        return header, body

    def call(self, name: str, *args: Any, sync: int = 1) -> tuple[dict[int, Any], dict[int, Any]]:
        self.request(10, sync, {0x22: name, 0x21: list(args)})
        return self.reply()

    def auth(self, user: str, password: str, sync: int = 1) -> tuple[dict[int, Any], dict[int, Any]]:
        self.request(7, sync, {0x23: user, 0x21: ["chap-sha1", scramble(self.greeting.salt, password)]})
        return self.reply()

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection (EOF) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
