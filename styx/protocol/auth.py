"""chap-sha1, exactly as Tarantool does it (`auth_chap_sha1.c`).

    hash1    = SHA1(password)
    hash2    = SHA1(hash1)                      # stored, base64: _user's auth data
    scramble = hash1 XOR SHA1(salt[:20] + hash2)  # sent by the client

The server recovers hash1 from the scramble and the stored hash2, and
accepts if SHA1(hash1) == hash2. Only the first 20 bytes of the 32-byte
greeting salt are used. The comparison runs in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .constants import SCRAMBLE_SIZE

__all__ = ["CHAP_SHA1", "hash2_of", "scramble", "check_scramble", "stored_hash2"]

CHAP_SHA1 = "chap-sha1"


def _sha1(*parts: bytes) -> bytes:
    h = hashlib.sha1()
    for p in parts:
        h.update(p)
    return h.digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def hash2_of(password: str | bytes) -> bytes:
    if isinstance(password, str):
        password = password.encode()
    return _sha1(_sha1(password))


def stored_hash2(password: str | bytes) -> str:
    """What `_user` stores under "chap-sha1": base64 of hash2 (28 chars)."""
    return base64.b64encode(hash2_of(password)).decode()


def scramble(salt: bytes, password: str | bytes) -> bytes:
    """The client side (for tests): the 20-byte scramble for this salt."""
    if isinstance(password, str):
        password = password.encode()
    hash1 = _sha1(password)
    return _xor(hash1, _sha1(salt[:SCRAMBLE_SIZE], _sha1(hash1)))


def check_scramble(salt: bytes, scramble_: bytes, hash2: bytes) -> bool:
    if len(scramble_) != SCRAMBLE_SIZE:
        return False
    hash1 = _xor(scramble_, _sha1(salt[:SCRAMBLE_SIZE], hash2))
    return hmac.compare_digest(_sha1(hash1), hash2)
