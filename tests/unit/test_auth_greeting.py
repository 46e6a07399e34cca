"""styx.protocol.auth (chap-sha1) and styx.protocol.greeting, against test
vectors and Tarantool 2.6's own bytes (/work/shared/reference/captures.md)."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styx.protocol import auth
from styx.protocol.auth import CHAP_SHA1, check_scramble, hash2_of, scramble, stored_hash2
from styx.protocol.constants import GREETING_SIZE, SALT_SIZE, SCRAMBLE_SIZE
from styx.protocol.greeting import Greeting, decode_greeting, encode_greeting

SALT = bytes(range(32))

# Tarantool 2.6.0's greeting, byte for byte (captures.md, "Greeting").
TARANTOOL_26_GREETING = (
    b"Tarantool 2.6.0 (Binary) 9b44b024-936c-4e56-a1c0-bd0854f33ef0  \n"
    b"vTjsXsC+o0VqAaDBeXYkwhY2SqZs7hrrwc4mZK/1rdo=                   \n"
)
# The same connection's AUTH of user 'bench' with password 'bench', and a wrong password.
BENCH_SCRAMBLE = bytes.fromhex("00a0a8de69eb86cd7280cf0a87d753f08156be71")
WRONG_SCRAMBLE = bytes.fromhex("d159bdbac0beed5971b2fdc539dc08e6fabf34ab")


# -- chap-sha1 ----------------------------------------------------------------------


def test_chap_sha1_vector() -> None:
    hash1 = hashlib.sha1(b"secret").digest()
    assert hash1.hex().startswith("e5e9fa1b")
    assert hash1.hex() == "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"
    assert hash2_of("secret") == hashlib.sha1(hash1).digest() == hash2_of(b"secret")
    s = scramble(SALT, "secret")
    assert len(s) == SCRAMBLE_SIZE == 20
    assert s.hex() == "21b3ff405f32cbe4aafff291396046ea29fa3a4d"
    assert scramble(SALT, b"secret") == s
    assert stored_hash2("secret") == "FOZVZ6vbUTXQz9mnCzAywXmknuc="
    assert len(stored_hash2("secret")) == 28
    assert base64.b64decode(stored_hash2("secret")) == hash2_of("secret")
    assert CHAP_SHA1 == "chap-sha1"


def test_check_scramble_vector() -> None:
    h2 = hash2_of("secret")
    s = scramble(SALT, "secret")
    assert check_scramble(SALT, s, h2) is True
    assert check_scramble(SALT, scramble(SALT, "Secret"), h2) is False  # wrong password
    assert check_scramble(SALT, s, hash2_of("other")) is False
    other_salt = bytes(range(1, 33))
    assert check_scramble(other_salt, s, h2) is False  # replayed against another salt


@pytest.mark.parametrize("size", [0, 1, 19, 21, 32])
def test_check_scramble_rejects_wrong_size(size: int) -> None:
    h2 = hash2_of("secret")
    good = scramble(SALT, "secret")
    bad = (good * 2)[:size]
    assert check_scramble(SALT, bad, h2) is False


def test_only_the_first_20_salt_bytes_count() -> None:
    other = SALT[:20] + bytes(12)  # same first 20 bytes, different tail
    assert scramble(other, "secret") == scramble(SALT, "secret")
    assert check_scramble(other, scramble(SALT, "secret"), hash2_of("secret"))


def test_tarantool_26_auth_capture() -> None:
    """The scramble a real client sent to Tarantool 2.6 for bench/bench, with
    the salt of that connection's greeting."""
    salt = decode_greeting(TARANTOOL_26_GREETING).salt
    assert salt[:20].hex() == "bd38ec5ec0bea3456a01a0c1797624c216364aa6"
    assert scramble(salt, "bench") == BENCH_SCRAMBLE
    assert check_scramble(salt, BENCH_SCRAMBLE, hash2_of("bench"))
    assert not check_scramble(salt, WRONG_SCRAMBLE, hash2_of("bench"))


@given(salt=st.binary(min_size=32, max_size=32), password=st.text(max_size=40), other=st.text(max_size=40))
def test_chap_sha1_property(salt: bytes, password: str, other: str) -> None:
    s = scramble(salt, password)
    assert check_scramble(salt, s, hash2_of(password))
    assert check_scramble(salt, s, hash2_of(other)) == (password.encode() == other.encode())


def test_auth_exports() -> None:
    assert set(auth.__all__) == {"CHAP_SHA1", "hash2_of", "scramble", "check_scramble", "stored_hash2"}


# -- greeting ------------------------------------------------------------------------


def test_decode_tarantool_26_greeting() -> None:
    assert len(TARANTOOL_26_GREETING) == 128
    g = decode_greeting(TARANTOOL_26_GREETING)
    assert g == Greeting(
        (2, 6, 0),
        "Binary",
        "9b44b024-936c-4e56-a1c0-bd0854f33ef0",
        base64.b64decode("vTjsXsC+o0VqAaDBeXYkwhY2SqZs7hrrwc4mZK/1rdo="),
    )
    assert len(g.salt) == SALT_SIZE == 32


def test_encode_greeting_layout() -> None:
    u = "9b44b024-936c-4e56-a1c0-bd0854f33ef0"
    salt = base64.b64decode("vTjsXsC+o0VqAaDBeXYkwhY2SqZs7hrrwc4mZK/1rdo=")
    g = encode_greeting((2, 6, 0), u, salt)
    # Byte for byte what Tarantool 2.6 sent, apart from the line padding being
    # spaces up to byte 62 in both.
    assert g == TARANTOOL_26_GREETING
    assert len(g) == GREETING_SIZE == 128
    assert g[63:64] == b"\n" and g[127:128] == b"\n"
    assert g.count(b"\n") == 2


def test_encode_greeting_newer_version() -> None:
    u = str(uuid.UUID(int=1))
    g = encode_greeting((2, 11, 1), u, bytes(32))
    assert g.startswith(b"Tarantool 2.11.1 (Binary) " + u.encode())
    assert len(g) == 128
    line2 = g[64:128]
    assert line2 == base64.b64encode(bytes(32)).ljust(63) + b"\n"
    assert decode_greeting(g) == Greeting((2, 11, 1), "Binary", u, bytes(32))


@given(
    version=st.tuples(st.integers(0, 9), st.integers(0, 99), st.integers(0, 9)),
    u=st.uuids(),
    salt=st.binary(min_size=32, max_size=32),
)
def test_greeting_round_trip(version: tuple[int, int, int], u: uuid.UUID, salt: bytes) -> None:
    g = encode_greeting(version, str(u), salt)
    assert len(g) == 128 and g[63] == 0x0A and g[127] == 0x0A
    assert decode_greeting(g) == Greeting(version, "Binary", str(u), salt)


@pytest.mark.parametrize("salt", [b"", bytes(20), bytes(31), bytes(33)])
def test_encode_greeting_rejects_salt_size(salt: bytes) -> None:
    with pytest.raises(ValueError):
        encode_greeting((2, 11, 0), str(uuid.UUID(int=0)), salt)


def test_encode_greeting_rejects_bad_uuid() -> None:
    with pytest.raises(ValueError):
        encode_greeting((2, 11, 0), "not-a-uuid", bytes(32))


def test_decode_greeting_with_version_suffix() -> None:
    """A `-suffix` after the three numbers is accepted (and ignored)."""
    line1 = b"Tarantool 2.6.1-1 (Binary) 9b44b024-936c-4e56-a1c0-bd0854f33ef0"
    assert len(line1) == 64 - 1
    data = line1.ljust(63) + b"\n" + base64.b64encode(bytes(range(32))).ljust(63) + b"\n"
    g = decode_greeting(data)
    assert g.version == (2, 6, 1) and g.uuid == "9b44b024-936c-4e56-a1c0-bd0854f33ef0"
    assert g.salt == bytes(range(32))


@pytest.mark.parametrize(
    "data",
    [
        TARANTOOL_26_GREETING[:127],
        TARANTOOL_26_GREETING + b" ",
        TARANTOOL_26_GREETING[:63] + b" " + TARANTOOL_26_GREETING[64:],  # no newline at 63
        TARANTOOL_26_GREETING[:127] + b" ",  # no newline at 127
        b"Memcached 1.6 (Binary)".ljust(63) + b"\n" + TARANTOOL_26_GREETING[64:],
    ],
)
def test_decode_greeting_rejects(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_greeting(data)
