"""Tarantool's .xlog and .snap files (format 0.13, as Tarantool 2.6 writes it).

A file is a text header (`XLOG` or `SNAP`, `0.13`, `Version:`, `Instance:`,
`VClock:`, for an xlog `PrevVClock:`, then an empty line), blocks, and the
4-byte EOF marker. A block is a 19-byte fixed header (magic, payload length,
a zero, the payload's checksum, padding) and a payload of rows (xrow.py),
zstd-compressed when the block is 2 KiB or more. The checksum is Tarantool's
CRC-32C: the register starts at 0 and is not inverted at the end. A file is
named by its vclock's signature (the sum of its components), 20 digits.
Reference: ../shared/reference/tarantool-xlog.md, sections 1 to 3 and 6.

What is here, and what is not: encoding (`Meta.encode`, `encode_block`),
reading (`XlogReader`, over a binary file: the meta, then block by block,
every checksum checked), and `XlogWriter`, which owns one open file (create
as `.inprogress`, write blocks, close with the EOF marker and fsync, rename).
When to write, rotate, or sync is the WAL's business, not this module's.

Reading a damaged file, as Tarantool does:
- a block cut short at the end of the file (a crash mid-write) ends the
  reading; `torn` says where, and the caller drops it with a warning;
- a file that ends without the EOF marker is normal for the last xlog after
  a crash (`eof` is False), and fatal for a snapshot (the caller decides);
- a wrong checksum, a bad fixed header, or rows that are not MessagePack
  raise `XlogCorrupted` naming the file and the offset; with `force`, the
  reader skips to the next block magic instead and counts what it skipped;
- anything after the EOF marker is corruption.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import google_crc32c
import msgpack
import zstandard

from .xrow import Row, RowError, decode_rows

__all__ = ["Meta", "XlogReader", "XlogWriter", "XlogError", "XlogCorrupted", "encode_block", "crc32",
           "vclock_text", "parse_vclock", "signature", "file_name", "name_signature", "files", "EOF_MARKER",
           "ROW_MAGIC", "ZROW_MAGIC", "FIXHEADER_SIZE", "COMPRESS_THRESHOLD"]

ROW_MAGIC = b"\xd5\xba\x0b\xab"
ZROW_MAGIC = b"\xd5\xba\x0b\xba"
EOF_MARKER = b"\xd5\x10\xad\xed"
FIXHEADER_SIZE = 19
COMPRESS_THRESHOLD = 2048  # a block this big, fixed header included, is compressed
BLOCK_MAX = 1 << 31
FORMAT_VERSION = "0.13"
_META_MAX = 1024 + 4096

Vclock = dict[int, int]


class XlogError(Exception):
    """A file Styx cannot use: its header, its type, its name."""


class XlogCorrupted(XlogError):
    """Damage inside a file, at `offset`."""

    def __init__(self, path: str, offset: int, what: str) -> None:
        super().__init__(f"{path}: {what} at offset {offset}")
        self.path = path
        self.offset = offset


def crc32(data: bytes | memoryview) -> int:
    """Tarantool's `crc32_calc(0, data, len)`: CRC-32C with the register
    seeded with 0 and no final inversion (the standard one inverts both)."""
    return ~google_crc32c.extend(0xFFFFFFFF, bytes(data)) & 0xFFFFFFFF


def vclock_text(vclock: Vclock) -> str:
    """`{1: 19, 2: 5}`: non-zero components by replica id; `{}` if none."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(vclock.items()) if v) + "}"


_VCLOCK_PAIR = re.compile(r"(\d+)\s*:\s*(\d+)")


def parse_vclock(text: str) -> Vclock:
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise XlogError(f"invalid vclock {text!r}")
    inner = text[1:-1].strip()
    pairs = _VCLOCK_PAIR.findall(inner)
    if inner and len(pairs) != inner.count(":"):
        raise XlogError(f"invalid vclock {text!r}")
    return {int(k): int(v) for k, v in pairs}


def signature(vclock: Vclock) -> int:
    return sum(vclock.values())


def file_name(vclock: Vclock, kind: str) -> str:
    """`00000000000000000019.xlog` for a vclock of signature 19 (kind `xlog` or `snap`)."""
    return f"{signature(vclock):020d}.{kind}"


def name_signature(path: str) -> int:
    """The signature a file's name says (`file_name`'s inverse)."""
    return int(os.path.basename(path).split(".")[0])


def files(directory: str, kind: str) -> list[str]:
    """The paths of a directory's `.xlog` or `.snap` files, oldest first
    (by name: the signature); none if there is no such directory."""
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, n) for n in sorted(os.listdir(directory)) if n.endswith("." + kind)]


@dataclass(slots=True)
class Meta:
    """A file's text header."""

    filetype: str  # "XLOG" or "SNAP"
    instance_uuid: str
    vclock: Vclock = field(default_factory=dict)
    prev_vclock: Vclock | None = None  # xlogs: the previous xlog's vclock, if there was one
    version: str = ""  # the writer's version (ignored on reading, as Tarantool does)
    format: str = FORMAT_VERSION

    def encode(self) -> bytes:
        lines = [self.filetype, self.format]
        if self.version:
            lines.append(f"Version: {self.version}")
        lines.append(f"Instance: {self.instance_uuid}")
        lines.append(f"VClock: {vclock_text(self.vclock)}")
        if self.prev_vclock is not None:
            lines.append(f"PrevVClock: {vclock_text(self.prev_vclock)}")
        return ("\n".join(lines) + "\n\n").encode()

    @classmethod
    def decode(cls, text: str, path: str = "") -> Meta:
        lines = text.split("\n")
        if len(lines) < 2:
            raise XlogError(f"{path}: invalid file header")
        filetype, fmt = lines[0], lines[1]
        if fmt not in ("0.13", "0.12"):
            raise XlogError(f"{path}: unsupported file format version {fmt!r}")
        meta = cls(filetype=filetype, instance_uuid="", format=fmt)
        for line in lines[2:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise XlogError(f"{path}: invalid file header line {line!r}")
            value = value.strip()
            if key in ("Instance", "Server"):
                meta.instance_uuid = value
            elif key == "VClock":
                meta.vclock = parse_vclock(value)
            elif key == "PrevVClock":
                meta.prev_vclock = parse_vclock(value)
            elif key == "Version":
                meta.version = value
            # Other keys are ignored, as Tarantool does ("Unknown meta item").
        return meta


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    """This thread's compressor (one may not be shared between threads):
    making one costs twice what compressing a WAL batch does."""
    c: zstandard.ZstdCompressor | None = getattr(_local, "zstd", None)
    if c is None:
        c = _local.zstd = zstandard.ZstdCompressor(level=3)
    return c


def encode_block(payload: bytes, compress: bool | None = None) -> bytes:
    """A block of rows: the fixed header and the payload (zstd-compressed if
    `compress`, by default when the block is COMPRESS_THRESHOLD or more)."""
    if compress is None:
        compress = len(payload) + FIXHEADER_SIZE >= COMPRESS_THRESHOLD
    if compress:
        data = _compressor().compress(payload)
        magic = ZROW_MAGIC
    else:
        data = payload
        magic = ROW_MAGIC
    head = magic + msgpack.packb(len(data)) + b"\x00" + msgpack.packb(crc32(data))
    pad = FIXHEADER_SIZE - len(head)  # one MessagePack string fills the rest
    return head + bytes((0xA0 | (pad - 1),)) + bytes(pad - 1) + data


def _decode_fixheader(head: bytes) -> tuple[bool, int, int] | None:
    """(compressed, length, crc) of a 19-byte fixed header; None if it is not one."""
    magic = head[:4]
    if magic not in (ROW_MAGIC, ZROW_MAGIC):
        return None
    u = msgpack.Unpacker()
    u.feed(head[4:])
    try:
        length, _crc_prev, crc = u.unpack(), u.unpack(), u.unpack()
        pos = 4 + u.tell()
        if not all(type(v) is int and v >= 0 for v in (length, _crc_prev, crc)) or pos >= FIXHEADER_SIZE:
            return None
        pad = head[pos]
        if not (0xA0 <= pad <= 0xBF and pos + 1 + (pad & 0x1F) == FIXHEADER_SIZE):
            return None
    except Exception:  # noqa: BLE001 - not MessagePack: not a fixed header
        return None
    if length > BLOCK_MAX:
        return None
    return magic == ZROW_MAGIC, length, crc


class XlogReader:
    """Read one file: `meta`, then `blocks()` or `rows()`.

    After iterating, `eof` tells whether the EOF marker ended the file,
    `torn` is the offset of a block cut short at its end (or None), and
    `skipped` counts the bytes skipped by `force`.
    """

    def __init__(self, f: BinaryIO, path: str = "", *, force: bool = False) -> None:
        self.f = f
        self.path = path or getattr(f, "name", "")
        self.force = force
        self.eof = False
        self.torn: int | None = None
        self.skipped = 0
        head = f.read(_META_MAX)
        end = head.find(b"\n\n")
        if end < 0:
            raise XlogError(f"{self.path}: no file header")
        try:
            text = head[:end].decode("ascii")
        except UnicodeDecodeError as e:
            raise XlogError(f"{self.path}: invalid file header") from e
        self.meta = Meta.decode(text, self.path)
        self.offset = end + 2
        f.seek(self.offset)

    @classmethod
    def open(cls, path: str, *, force: bool = False) -> XlogReader:
        f = open(path, "rb")  # noqa: SIM115 - the reader owns it; close() closes it
        try:
            return cls(f, path, force=force)
        except BaseException:
            f.close()
            raise

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> XlogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """(offset, decompressed payload) of each block, every checksum checked."""
        f = self.f
        while True:
            offset = self.offset
            head = f.read(FIXHEADER_SIZE)
            if head[:4] == EOF_MARKER:
                if len(head) != 4:
                    self._damage(offset, "data after the EOF marker")
                    return
                self.eof = True
                return
            if len(head) < FIXHEADER_SIZE:
                if head and (head[:4] in (ROW_MAGIC, ZROW_MAGIC) or len(head) < 4):
                    self.torn = offset  # cut short at the end: a crash mid-write
                elif head:
                    self._damage(offset, "garbage at the end of the file")
                return
            fix = _decode_fixheader(head)
            if fix is None:
                if not self._resync(offset, "invalid block header"):
                    return
                continue
            compressed, length, crc = fix
            data = f.read(length)
            if len(data) < length:
                self.torn = offset
                return
            if crc32(data) != crc:
                if not self._resync(offset, "block checksum mismatch"):
                    return
                continue
            self.offset = offset + FIXHEADER_SIZE + length
            if compressed:
                try:
                    data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
                except zstandard.ZstdError:
                    if not self._resync(offset, "a block that does not decompress"):
                        return
                    continue
            yield offset, data

    def rows(self) -> Iterator[Row]:
        for offset, payload in self.blocks():
            try:
                rows = decode_rows(payload)
            except RowError as e:
                self._damage(offset, f"invalid rows ({e})")
                continue
            yield from rows

    def _damage(self, offset: int, what: str) -> None:
        if not self.force:
            raise XlogCorrupted(self.path, offset, what)

    def _resync(self, offset: int, what: str) -> bool:
        """Corruption at `offset`: raise, or (force) go on from the next block
        magic after it. False if there is none."""
        self._damage(offset, what)
        self.f.seek(offset + 1)
        rest = self.f.read()
        candidates = [i for i in (rest.find(ROW_MAGIC), rest.find(ZROW_MAGIC), rest.find(EOF_MARKER)) if i >= 0]
        if not candidates:
            self.skipped += len(rest) + 1
            return False
        nxt = offset + 1 + min(candidates)
        self.skipped += nxt - offset
        self.offset = nxt
        self.f.seek(nxt)
        return True


class XlogWriter:
    """One file being written: created as `<name>.inprogress`, renamed when
    done (a snapshot at `close`; an xlog right after its header, as
    Tarantool does, so a crash leaves a readable xlog without EOF)."""

    def __init__(self, directory: str, meta: Meta, *, sync: bool = False) -> None:
        kind = "snap" if meta.filetype == "SNAP" else "xlog"
        self.path = os.path.join(directory, file_name(meta.vclock, kind))
        self.meta = meta
        if os.path.exists(self.path):
            raise XlogError(f"{self.path} already exists")
        self._tmp = self.path + ".inprogress"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_SYNC if sync else 0)
        self.fd = os.open(self._tmp, flags, 0o644)
        self.size = 0
        self.rows = 0  # rows written (the caller counts them)
        self._write(meta.encode())
        self.in_progress = kind == "snap"
        if not self.in_progress:
            os.rename(self._tmp, self.path)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)

    def write_block(self, payload: bytes, compress: bool | None = None) -> int:
        """Write one block of rows; its size on disk."""
        block = encode_block(payload, compress)
        self._write(block)
        return len(block)

    def truncate(self, size: int) -> None:
        """Cut a failed write off (back to the last good size)."""
        os.ftruncate(self.fd, size)
        os.lseek(self.fd, size, os.SEEK_SET)
        self.size = size

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> str:
        """The EOF marker, fsync, close; a snapshot is renamed into place now.
        The file's path."""
        if self.fd >= 0:
            self._write(EOF_MARKER)
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            if self.in_progress:
                os.rename(self._tmp, self.path)
                self.in_progress = False
        return self.path

    def discard(self) -> None:
        """Give up an unfinished file (a snapshot that failed)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.in_progress:
            os.unlink(self._tmp)
