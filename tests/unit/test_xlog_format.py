"""The .xlog/.snap format against Tarantool 2.6's own bytes.

The vectors are the ones in ../shared/reference/tarantool-xlog.md, section
11: (a) written by Tarantool 2.6, (b) written by Python and recovered by
Tarantool 2.6. Rows and plain blocks must encode to exactly these bytes, and
read back to the same values. Then the reader's handling of damage: a torn
tail, a flipped byte, data after the EOF marker, `force`.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from styx.xlog import (
    EOF_MARKER,
    Meta,
    XlogCorrupted,
    XlogReader,
    XlogWriter,
    autocommit_header,
    crc32,
    decode_rows,
    encode_block,
    encode_dml_body,
    encode_header,
    encode_row,
    encode_snapshot_body,
    file_name,
    parse_vclock,
    vclock_text,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def ts(hex8: str) -> float:
    return struct.unpack(">d", h(hex8))[0]


packb = msgpack.packb
T_A = ts("41 da c4 b8 8b 65 49 6a")


def test_checksum_is_tarantools() -> None:
    assert crc32(b"123456789") == 0x58E3FA20  # the standard CRC-32C gives 0xe3069283


def test_vclock_text_and_file_names() -> None:
    assert vclock_text({}) == "{}"
    assert vclock_text({2: 5, 1: 19, 3: 0}) == "{1: 19, 2: 5}"
    assert parse_vclock("{1: 19, 2: 5}") == {1: 19, 2: 5}
    assert parse_vclock("{ 1:19 }") == {1: 19}
    assert file_name({1: 19}, "xlog") == "00000000000000000019.xlog"
    assert file_name({}, "snap") == "00000000000000000000.snap"


def test_meta_as_tarantool_writes_it() -> None:
    meta = Meta("XLOG", "aaaaaaaa-0000-4000-8000-000000000001", {}, version="2.6.0-0-g47aa4e01e")
    text = b"XLOG\n0.13\nVersion: 2.6.0-0-g47aa4e01e\nInstance: aaaaaaaa-0000-4000-8000-000000000001\nVClock: {}\n\n"
    assert meta.encode() == text
    after = Meta("XLOG", meta.instance_uuid, {1: 19}, prev_vclock={}, version=meta.version)
    assert after.encode().endswith(b"VClock: {1: 19}\nPrevVClock: {}\n\n")
    assert Meta.decode(text[:-2].decode()) == meta


def test_rows_of_tarantool_2_6() -> None:
    """Section 11 (a): INSERT, UPDATE, DELETE, UPSERT, each with its block."""
    insert = encode_header(2, replica_id=1, lsn=5, timestamp=T_A) + encode_dml_body(512, tuple=packb([1, "a", 0]))
    assert insert == h("84 00 02 02 01 03 05 04 cb 41 da c4 b8 8b 65 49 6a 82 10 cd 02 00 21 93 01 a1 61 00")
    assert encode_block(insert)[:19] == h("d5 ba 0b ab 1c 00 ce 42 06 5f af a7 00 00 00 00 00 00 00")
    update = (encode_header(4, replica_id=1, lsn=8, timestamp=ts("41 da c4 b8 8b 65 4a 69"))
              + encode_dml_body(512, index_base=1, key=packb([1]), tuple=packb([["=", 2, "aa"], ["+", 3, 5]])))
    assert update == h("84 00 04 02 01 03 08 04 cb 41 da c4 b8 8b 65 4a 69 84 10 cd 02 00 15 01 20 91 01 21 92 93"
                       " a1 3d 02 a2 61 61 93 a1 2b 03 05")
    delete = (encode_header(5, replica_id=1, lsn=10, timestamp=ts("41 da c4 b8 8b 65 4a da"))
              + encode_dml_body(512, key=packb([3])))
    assert delete == h("84 00 05 02 01 03 0a 04 cb 41 da c4 b8 8b 65 4a da 82 10 cd 02 00 20 91 03")
    upsert = (encode_header(9, replica_id=1, lsn=11, timestamp=ts("41 da c4 b8 8b 65 4b 16"))
              + encode_dml_body(512, index_base=1, ops=packb([["+", 3, 1]]), tuple=packb([4, "d", 0])))
    assert upsert == h("84 00 09 02 01 03 0b 04 cb 41 da c4 b8 8b 65 4b 16 84 10 cd 02 00 15 01 28 91 93 a1 2b 03 01"
                       " 21 93 04 a1 64 00")
    for raw in (insert, update, delete, upsert):
        [row] = decode_rows(raw)
        assert encode_row(row) == raw
    [row] = decode_rows(update)
    assert (row.type, row.lsn, row.replica_id, row.tsn, row.is_commit, row.multi) == (4, 8, 1, 8, True, False)
    assert row.body == {0x10: 512, 0x15: 1, 0x20: [1], 0x21: [["=", 2, "aa"], ["+", 3, 5]]}


def test_a_transaction_of_two_rows() -> None:
    t = ts("41 da c4 b8 8b 65 51 99")
    rows = (encode_header(2, replica_id=1, lsn=18, timestamp=t, tsn=18, is_commit=False)
            + encode_dml_body(512, tuple=packb([10, "x"]))
            + encode_header(2, replica_id=1, lsn=19, timestamp=t, tsn=18, is_commit=True)
            + encode_dml_body(512, tuple=packb([11, "y"])))
    assert encode_block(rows) == (
        h("d5 ba 0b ab 3c 00 ce 5e a3 98 e3 a7 00 00 00 00 00 00 00")
        + h("85 00 02 02 01 03 12 04 cb 41 da c4 b8 8b 65 51 99 08 00 82 10 cd 02 00 21 92 0a a1 78")
        + h("86 00 02 02 01 03 13 04 cb 41 da c4 b8 8b 65 51 99 08 01 09 01 82 10 cd 02 00 21 92 0b a1 79"))
    first, last = decode_rows(rows)
    assert (first.tsn, first.is_commit, last.tsn, last.is_commit) == (18, False, 18, True)
    assert encode_row(first) + encode_row(last) == rows


def test_blocks_tarantool_recovered_from() -> None:
    """Section 11 (b): blocks a Python writer made, which Tarantool 2.6 loaded."""
    t = 1700000000.0
    one = encode_header(3, replica_id=1, lsn=1, timestamp=t) + encode_dml_body(512, tuple=packb([1, "a"]))
    assert encode_block(one) == h("d5 ba 0b ab 1b 00 ce 12 ed 87 01 a7 00 00 00 00 00 00 00") + one
    txn = (encode_header(2, replica_id=1, lsn=2, timestamp=t, tsn=2, is_commit=False)
           + encode_dml_body(512, tuple=packb([2, "b"]))
           + encode_header(5, replica_id=1, lsn=3, timestamp=t, tsn=2) + encode_dml_body(512, key=packb([1])))
    assert encode_block(txn) == h(
        "d5 ba 0b ab 3a 00 ce 87 73 44 0f a7 00 00 00 00 00 00 00"
        "85 00 02 02 01 03 02 04 cb 41 d9 54 fc 40 00 00 00 08 00 82 10 cd 02 00 21 92 02 a1 62"
        "86 00 05 02 01 03 03 04 cb 41 d9 54 fc 40 00 00 00 08 01 09 01 82 10 cd 02 00 20 91 01")


def test_snapshot_rows() -> None:
    t = ts("41 da c4 b8 8b 64 b7 64")
    row = encode_header(2, lsn=1, timestamp=t) + encode_snapshot_body(272, packb(["max_id", 511]))
    assert row == h("83 00 02 03 01 04 cb 41 da c4 b8 8b 64 b7 64 82 10 ce 00 00 01 10 21 92 a6 6d 61 78 5f 69 64"
                    " cd 01 ff")
    first = encode_header(2, timestamp=t)  # row 0: no LSN key
    assert first == h("82 00 02 04 cb 41 da c4 b8 8b 64 b7 64")


def test_a_big_block_is_compressed_and_its_fixheader_fits() -> None:
    payload = b"".join(encode_header(2, replica_id=1, lsn=i + 1) + encode_dml_body(512, tuple=packb([i, "v" * 40]))
                       for i in range(100))
    block = encode_block(payload)
    assert block[:4] == h("d5 ba 0b ba") and block[19:23] == h("28 b5 2f fd")  # zstd
    small = encode_block(payload[:100])
    assert small[:4] == h("d5 ba 0b ab")


# -- reading files -------------------------------------------------------------------


def write_file(tmp_path: Path, blocks: list[bytes], eof: bool = True) -> Path:
    meta = Meta("XLOG", "aaaaaaaa-0000-4000-8000-000000000001", {1: 10}, prev_vclock={})
    w = XlogWriter(str(tmp_path), meta)
    for b in blocks:
        w.write_block(b)
    if eof:
        w.close()
    else:
        os.close(w.fd)  # a crash: no EOF marker
    return Path(w.path)


def rows_block(first_lsn: int, n: int, width: int = 8) -> bytes:
    return b"".join(encode_header(3, replica_id=1, lsn=first_lsn + i, timestamp=1.5)
                    + encode_dml_body(512, tuple=packb([first_lsn + i, "x" * width])) for i in range(n))


def read_all(path: Path, force: bool = False) -> tuple[list[int], XlogReader]:
    with XlogReader.open(str(path), force=force) as r:
        lsns = [row.lsn for row in r.rows()]
    return lsns, r


def test_written_file_reads_back(tmp_path: Path) -> None:
    path = write_file(tmp_path, [rows_block(11, 3), rows_block(14, 200, width=30)])
    assert path.name == "00000000000000000010.xlog"
    lsns, r = read_all(path)
    assert lsns == list(range(11, 214)) and r.eof and r.torn is None
    assert r.meta.vclock == {1: 10} and r.meta.prev_vclock == {}


def test_torn_tail_is_reported_not_raised(tmp_path: Path) -> None:
    path = write_file(tmp_path, [rows_block(11, 3), rows_block(14, 3)], eof=False)
    data = path.read_bytes()
    for cut in (3, 10, 25):  # in the fixed header's magic, in the fixed header, in the payload
        path.write_bytes(data[:-cut])
        lsns, r = read_all(path)
        assert lsns == [11, 12, 13] and not r.eof and r.torn is not None


def test_corruption_names_the_offset_and_force_skips_it(tmp_path: Path) -> None:
    path = write_file(tmp_path, [rows_block(11, 3), rows_block(14, 3), rows_block(17, 3)])
    data = bytearray(path.read_bytes())
    second = data.index(h("d5 ba 0b ab"), data.index(h("d5 ba 0b ab")) + 1)
    data[second + 30] ^= 0xFF  # a byte of the second block's payload
    path.write_bytes(bytes(data))
    with pytest.raises(XlogCorrupted) as e:
        read_all(path)
    assert e.value.offset == second and "checksum" in str(e.value)
    lsns, r = read_all(path, force=True)
    assert lsns == [11, 12, 13, 17, 18, 19] and r.eof and r.skipped > 0


def test_data_after_eof_is_corruption(tmp_path: Path) -> None:
    path = write_file(tmp_path, [rows_block(11, 1)])
    path.write_bytes(path.read_bytes() + b"junk")
    with pytest.raises(XlogCorrupted):
        read_all(path)


def test_reader_takes_any_binary_file() -> None:
    meta = Meta("SNAP", "aaaaaaaa-0000-4000-8000-000000000001", {1: 5})
    data = meta.encode() + encode_block(rows_block(1, 2)) + EOF_MARKER
    r = XlogReader(io.BytesIO(data), "mem.snap")
    assert [row.lsn for row in r.rows()] == [1, 2] and r.eof and r.meta.filetype == "SNAP"


@given(st.sampled_from([2, 3, 4, 5, 9]), st.integers(1, 2**64 - 1), st.integers(1, 31),
       st.floats(1.0, 4e9, allow_nan=False))
def test_the_wal_batch_header_is_encode_header(type_: int, lsn: int, replica_id: int, timestamp: float) -> None:
    """The WAL writer's per-batch header maker gives encode_header's bytes."""
    assert autocommit_header(replica_id, timestamp)(type_, lsn) == encode_header(
        type_, replica_id=replica_id, lsn=lsn, timestamp=timestamp)
