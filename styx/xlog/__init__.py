"""Tarantool's persistence files, sans I/O where it can be: rows (xrow.py)
and the .xlog/.snap file format (xlog.py), as Tarantool 2.6 writes them.
The WAL thread, snapshots and recovery build on this layer; it knows
nothing of them, of box or of threads."""

from .xlog import (
    EOF_MARKER,
    Meta,
    XlogCorrupted,
    XlogError,
    XlogReader,
    XlogWriter,
    crc32,
    encode_block,
    file_name,
    files,
    name_signature,
    parse_vclock,
    signature,
    vclock_text,
)
from .xrow import Row, autocommit_header, decode_rows, encode_dml_body, encode_header, encode_row, encode_snapshot_body

__all__ = [
    "EOF_MARKER", "Meta", "XlogCorrupted", "XlogError", "XlogReader", "XlogWriter", "crc32", "encode_block",
    "file_name", "files", "name_signature", "parse_vclock", "signature", "vclock_text", "Row", "decode_rows",
    "autocommit_header", "encode_dml_body", "encode_header", "encode_row", "encode_snapshot_body",
]
