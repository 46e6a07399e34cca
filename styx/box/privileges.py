"""Privileges: grants, roles, and the access checks every request makes.

Tarantool's model (`_priv`): a grant is (grantor, grantee, object type,
object id, privilege bitmask). Objects are the universe, a space, a function,
a user, a role, a sequence; an "entity" grant (object id '') covers every
object of its type. A role is granted like an object: object type 'role',
privilege execute. A user's effective rights are the union of its own grants
and those of its roles, transitively; an object's owner has every right on
it; `admin` (universe: all) and the role `super` can do anything.

Bootstrap grants are Tarantool's (read off 2.6): guest has session and usage
on the universe and the role `public`; public may read the system views and
execute `box.schema.user.info`; admin and super have everything. A user made
by `box.schema.user.create` gets session and usage on the universe and the
role public, as in Tarantool.

`check(user, kind, id, name, access)` raises AccessDeniedError (42)
with Tarantool's message, e.g. "Read access to space 'x' is denied for user
'guest'". Effective rights are cached per user and recomputed after any
grant or revoke, so a check on the hot path is two dict lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..protocol.errors import ER, BoxError
from .bootstrap import bootstrap_rows
from .users import ADMIN, PUBLIC, User, Users

__all__ = [
    "R", "W", "X", "SESSION", "USAGE", "CREATE", "DROP", "ALTER", "ALL", "Privileges",
    "parse_privileges", "is_privilege_list", "priv_names", "access_denied",
]

R, W, X, SESSION, USAGE, CREATE, DROP, ALTER = 1, 2, 4, 8, 16, 32, 64, 128
REFERENCE, TRIGGER, INSERT, UPDATE, DELETE = 256, 512, 1024, 2048, 4096
ALL = 0xFFFFFFFF

_NAMES = {
    "read": R, "write": W, "execute": X, "session": SESSION, "usage": USAGE, "create": CREATE,
    "drop": DROP, "alter": ALTER, "reference": REFERENCE, "trigger": TRIGGER, "insert": INSERT,
    "update": UPDATE, "delete": DELETE,
}

VSPACE_SEQUENCE = 341  # 2.10's _vspace_sequence: Styx has it, 2.6 does not
# Bootstrap grants that 2.6 shows in _priv but that give nothing: a user
# with only public's rights does not see _vsequence or _truncate in _vspace.
_NO_EFFECT = {(PUBLIC, "space", 286), (PUBLIC, "space", 330)}


def parse_privileges(spec: str | int, object_type: str = "universe") -> int:
    """'read,write' (or 'read, write', or a bitmask) -> bitmask."""
    if isinstance(spec, int):
        return spec
    mask = 0
    for word in spec.replace(" ", "").split(","):
        if word == "all":
            mask |= ALL
        elif word in _NAMES:
            mask |= _NAMES[word]
        else:
            raise BoxError(ER.UNSUPPORTED_PRIV, object_type, word)
    return mask


def is_privilege_list(spec: Any) -> bool:
    return isinstance(spec, int) or all(
        w == "all" or w in _NAMES for w in str(spec).replace(" ", "").split(","))


def priv_names(mask: int) -> str:
    """'read,write,...' in Tarantool's order (it never says 'all')."""
    return ",".join(n for n, bit in _NAMES.items() if mask & bit)


@dataclass(frozen=True)
class Grant:
    grantor: int
    grantee: int
    object_type: str
    object_id: Any  # int id, 0 for the universe, '' for every object of the type
    privilege: int

    def row(self) -> list[Any]:
        return [self.grantor, self.grantee, self.object_type, self.object_id, self.privilege]


class Rights:
    """A user's effective rights: universe mask and per-object masks."""

    __slots__ = ("universe", "objects")

    def __init__(self) -> None:
        self.universe = 0
        self.objects: dict[tuple[str, Any], int] = {}

    def on(self, object_type: str, object_id: Any) -> int:
        objects = self.objects
        return (self.universe | objects.get((object_type, object_id), 0)
                | objects.get((object_type, ""), 0))


class Privileges:
    """Every grant, and per-user effective rights derived from them."""

    def __init__(self, users: Users) -> None:
        self.users = users
        self.grants: dict[tuple[int, str, Any], Grant] = {}  # (grantee, type, id) -> grant
        self._rights: dict[int, Rights] = {}
        self.owner_of: dict[tuple[str, Any], int] = {}  # object -> owner uid
        # Tarantool 2.6's bootstrap grants, and public's read on the one view
        # Styx has that 2.6 has not.
        for grantor, grantee, otype, oid, mask in bootstrap_rows(312):
            self._set(Grant(grantor, grantee, otype, oid, mask))
        self._set(Grant(ADMIN, PUBLIC, "space", VSPACE_SEQUENCE, R))

    # -- grants -------------------------------------------------------------

    def _set(self, grant: Grant) -> None:
        key = (grant.grantee, grant.object_type, grant.object_id)
        if grant.privilege:
            self.grants[key] = grant
        else:
            self.grants.pop(key, None)
        self._rights.clear()

    def granted(self, grantee: int, object_type: str, object_id: Any) -> int:
        g = self.grants.get((grantee, object_type, object_id))
        return g.privilege if g else 0

    def grant(self, grantor: int, grantee: User, object_type: str, object_id: Any, mask: int,
              object_name: str, if_not_exists: bool = False) -> None:
        old = self.granted(grantee.uid, object_type, object_id)
        if old & mask == mask:
            if if_not_exists:
                return
            if object_type == "role":
                raise BoxError(ER.ROLE_GRANTED, grantee.name, object_name)
            raise BoxError(ER.PRIV_GRANTED, grantee.name, priv_names(mask), object_type,
                           object_name, message=_already(grantee.name, mask, object_type, object_name))
        self._set(Grant(grantor, grantee.uid, object_type, object_id, old | mask))

    def revoke(self, grantee: User, object_type: str, object_id: Any, mask: int, object_name: str,
               if_exists: bool = False) -> None:
        old = self.granted(grantee.uid, object_type, object_id)
        if old & mask != mask:
            if if_exists:
                return
            if object_type == "role":
                raise BoxError(ER.ROLE_NOT_GRANTED, grantee.name, object_name)
            raise BoxError(ER.PRIV_NOT_GRANTED, grantee.name, priv_names(mask), object_type,
                           object_name)
        self._set(Grant(ADMIN, grantee.uid, object_type, object_id, old & ~mask))

    def drop_object(self, object_type: str, object_id: Any) -> None:
        """An object is gone: so are the grants on it."""
        for key in [k for k in self.grants if k[1] == object_type and k[2] == object_id]:
            del self.grants[key]
        self.owner_of.pop((object_type, object_id), None)
        self._rights.clear()

    def drop_grantee(self, uid: int) -> None:
        for key in [k for k in self.grants if k[0] == uid]:
            del self.grants[key]
        self._rights.clear()

    def rows(self) -> list[list[Any]]:
        return [g.row() for g in self.grants.values()]

    def roles_of(self, uid: int) -> set[int]:
        """Roles granted to `uid`, transitively."""
        out: set[int] = set()
        todo = [uid]
        while todo:
            u = todo.pop()
            for (grantee, otype, oid), g in self.grants.items():
                if grantee == u and otype == "role" and g.privilege & X and oid not in out:
                    out.add(oid)
                    todo.append(oid)
        return out

    def rights(self, user: User) -> Rights:
        r = self._rights.get(user.uid)
        if r is None:
            r = self._rights[user.uid] = self._compute(user.uid)
        return r

    def _compute(self, uid: int) -> Rights:
        r = Rights()
        who = {uid} | self.roles_of(uid)
        for key, g in self.grants.items():
            grantee, otype, oid = key
            if grantee not in who or key in _NO_EFFECT:
                continue
            if otype == "universe":
                r.universe |= g.privilege
            else:
                r.objects[(otype, oid)] = r.objects.get((otype, oid), 0) | g.privilege
        for (otype, oid), owner in self.owner_of.items():
            if owner == uid:
                r.objects[(otype, oid)] = ALL
        return r

    # -- checks ---------------------------------------------------------------------

    def check(self, user: User, object_type: str, object_id: Any, object_name: str,
              mask: int) -> None:
        rights = self._rights.get(user.uid) or self.rights(user)
        universe = rights.universe
        if universe & mask == mask and universe & USAGE:
            return  # granted on the universe: the common case, decided at once
        if universe & USAGE == 0 and user.uid != ADMIN:
            raise access_denied("Usage", "universe", "", user.name)
        if rights.on(object_type, object_id) & mask != mask:
            raise access_denied(_verb(mask), object_type, object_name, user.name)

    def check_session(self, user: User) -> None:
        if self.rights(user).universe & SESSION == 0:
            raise access_denied("Session", "universe", "", user.name)

    def can_see(self, user: User, object_type: str, object_id: Any, mask: int = R | W | X) -> bool:
        """For the _v views: read or write on the universe shows everything;
        else a right in `mask` on the object itself (session and usage, which
        every user has on the universe, show nothing)."""
        rights = self.rights(user)
        if rights.universe & (R | W):
            return True
        objects = rights.objects
        return bool((objects.get((object_type, object_id), 0)
                     | objects.get((object_type, ""), 0)) & mask)


def _verb(mask: int) -> str:
    for name, bit in _NAMES.items():
        if mask & bit:
            return name.capitalize()
    return "Access"


def access_denied(verb: str, object_type: str, object_name: str, user_name: str) -> BoxError:
    return BoxError(ER.ACCESS_DENIED, verb, object_type, object_name, user_name,
                    type_name="AccessDeniedError",
                    fields={"object_type": object_type, "object_name": object_name,
                            "access_type": verb})


def _already(user: str, mask: int, object_type: str, object_name: str) -> str:
    what = f"{object_type} '{object_name}'" if object_type != "universe" else "universe"
    return f"User '{user}' already has {priv_names(mask)} access on {what}"

