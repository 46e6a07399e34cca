"""Users and roles, as in Tarantool's `_user` space.

Every server starts with Tarantool's bootstrap users: `guest` (uid 0, whose
password is the empty one, so chap-sha1 with "" logs in as guest), `admin`
(uid 1, no password until one is set), and the roles `public` (2),
`replication` (3) and `super` (31). A password is stored the way `_user`
stores it: base64 of chap-sha1's hash2, under the "chap-sha1" key.

Only TX touches this (it is box data). Grants live in privileges.py.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.auth import CHAP_SHA1, stored_hash2
from ..protocol.errors import ER, BoxError

__all__ = ["User", "Users", "GUEST", "ADMIN", "PUBLIC", "REPLICATION", "SUPER"]

GUEST, ADMIN, PUBLIC, REPLICATION, SUPER = 0, 1, 2, 3, 31
FIRST_USER_ID = 32


@dataclass
class User:
    uid: int
    name: str
    type: str = "user"  # or "role"
    owner: int = ADMIN
    auth: dict[str, str] = field(default_factory=dict)

    def hash2(self) -> bytes | None:
        stored = self.auth.get(CHAP_SHA1)
        return base64.b64decode(stored) if stored else None

    def row(self) -> list[Any]:
        """The `_user` tuple: [id, owner, name, type, auth, auth_history, last_modified]."""
        return [self.uid, self.owner, self.name, self.type, dict(self.auth), [], 0]


class Users:
    def __init__(self) -> None:
        self.on_change: Callable[[], None] | None = None  # the schema's `changed` (the WAL listens)
        self.by_id: dict[int, User] = {}
        self.by_name: dict[str, User] = {}
        for u in (User(GUEST, "guest", auth={CHAP_SHA1: stored_hash2("")}), User(ADMIN, "admin"),
                  User(PUBLIC, "public", "role"), User(REPLICATION, "replication", "role"),
                  User(SUPER, "super", "role")):
            self._add(u)

    def _add(self, user: User) -> None:
        self.by_id[user.uid] = user
        self.by_name[user.name] = user

    def get(self, name: str) -> User | None:
        return self.by_name.get(name)

    def create(self, name: str, password: str | None = None, *, if_not_exists: bool = False,
               role: bool = False, owner: int = ADMIN) -> User:
        if not isinstance(name, str) or not name:
            raise BoxError(ER.ILLEGAL_PARAMS, "name should be a non-empty string")
        existing = self.by_name.get(name)
        if existing is not None:
            if if_not_exists:
                return existing
            raise BoxError(ER.USER_EXISTS, name)
        uid = max([FIRST_USER_ID - 1, *self.by_id]) + 1
        user = User(uid, name, "role" if role else "user", owner)
        if password is not None:
            user.auth[CHAP_SHA1] = stored_hash2(password)
        self._add(user)
        self._changed()
        return user

    def drop(self, name: str, *, if_exists: bool = False, role: bool = False) -> None:
        user = self.by_name.get(name)
        if user is None or (user.type == "role") != role:
            if if_exists:
                return
            raise BoxError(ER.NO_SUCH_USER, name)
        if user.uid in (GUEST, ADMIN, PUBLIC, REPLICATION, SUPER):
            raise BoxError(ER.DROP_USER, name, "the user or the role is a system")
        del self.by_name[name]
        del self.by_id[user.uid]
        self._changed()

    def passwd(self, name: str, password: str) -> None:
        user = self.by_name.get(name)
        if user is None or user.type != "user":
            raise BoxError(ER.NO_SUCH_USER, name)
        if user.uid == GUEST:
            raise BoxError(ER.GUEST_USER_PASSWORD)
        user.auth[CHAP_SHA1] = stored_hash2(password)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()
