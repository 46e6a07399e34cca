"""`box`, as the app file sees it: Tarantool's Lua API with Python manners.

    from styx import box

    def greet(name):
        box.session.push(f"hello, {name}")   # an IPROTO_CHUNK to the caller
        return box.session.user(), box.session.id()

`styx.box` is a proxy: it resolves to the box of the server whose TX is
running the current fiber (several servers may share one process). Inside a
request, `box.session` is the caller's session. Outside any server it
raises RuntimeError.

Names follow Tarantool (`box.schema.user.create`, `box.session.push`,
`box.cfg`, `box.stat.net`); options are keyword arguments.

Each API object takes only what it uses, not the whole `Tx`: the schema and
the users (`box.schema.*`, `box.space`), a callable (`box.session.push`,
`box.broadcast`), and for the few services of TX itself -- statistics,
configuration, new transactions -- the narrow protocols below, which `Tx`
meets. What an object can reach is what its constructor names, so the box
API cannot come to lean on TX's internals (pipes, obufs, the fiber pool)
unseen. The caller's session is the fiber's, as before.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..box.index import ITERATOR_NAMES
from ..box.privileges import CREATE, DROP, priv_names
from ..protocol.errors import ER, MESSAGES, BoxError
from . import fiber as fiber_mod
from .space_api import Members, SchemaSpaceApi, SpacesApi, effective_user, set_trigger

if TYPE_CHECKING:
    from ..box.schema import Schema
    from ..box.txn import Txn
    from ..box.users import Users
    from .session import Session

__all__ = ["Box", "BoxProxy", "SessionTriggers"]


def _fiber() -> fiber_mod.Fiber:
    f = fiber_mod.current.get()
    if f is None:
        raise RuntimeError("styx.box is only available inside a Styx server (app functions, init)")
    if threading.get_ident() != f.tx.thread_ident:
        # asyncio.to_thread() copies the context, fiber included: box is TX's
        # alone, and another thread must not touch it.
        raise RuntimeError("styx.box is used from another thread: box belongs to the server's TX thread; "
                           "do the blocking work in the thread, and use box after the await, in the procedure")
    return f


class Stats(Protocol):
    """What `box.stat` asks of TX."""

    def request_stats(self) -> dict[str, dict[str, int]]: ...

    async def net_stats(self) -> dict[str, dict[str, int]]: ...

    async def net_stats_threads(self) -> list[dict[str, dict[str, int]]]: ...


class TxServices(Stats, Protocol):
    """What `box` asks of TX beyond the schema and the users: the statistics,
    a new transaction (box.begin), new dynamic options (box.cfg), a chunk to
    the caller (box.session.push)."""

    def new_txn(self, timeout: float | None, isolation: int = 0) -> Txn: ...

    def reconfigure(self, options: dict[str, Any]) -> None: ...

    def cfg_values(self) -> dict[str, Any]: ...

    def push_chunk(self, session: Session, sync: int, value: Any) -> None: ...

    async def snapshot(self) -> None: ...

    def lua(self) -> Any: ...

    @property
    def session_triggers(self) -> SessionTriggers: ...


def _take_txn() -> Any:
    """Detach the fiber's transaction (and its stream's) to end it."""
    f = _fiber()
    txn, f.txn = f.txn, None
    if f.stream_id and f.session is not None:
        f.session.txns.pop(f.stream_id, None)
    return txn


class SessionTriggers:
    """box.session's triggers, which TX runs (tx/process.py, run_triggers)."""

    __slots__ = ("connect", "disconnect", "auth")

    def __init__(self) -> None:
        self.connect: list[Callable[[], Any]] = []
        self.disconnect: list[Callable[[], Any]] = []
        self.auth: list[Callable[[str, bool], Any]] = []


class SessionApi(Members):
    """`box.session`: the session of the request being served."""

    API_NAME = "box.session"

    def __init__(self, push: Callable[[Session, int, Any], None], users: Users,
                 check_session: Callable[[Any], None], triggers: SessionTriggers) -> None:
        self._push = push  # an IPROTO_CHUNK to the session, for the request `sync`
        self._users = users
        self._check_session = check_session
        self._triggers = triggers

    def on_connect(self, trigger: Any = None, old: Any = None) -> Any:
        """fn() after a client connects, in its session; one that raises
        refuses the connection (the client gets the greeting, the error,
        and the close, as from Tarantool)."""
        return set_trigger("on_connect", self._triggers.connect, trigger, old)

    def on_disconnect(self, trigger: Any = None, old: Any = None) -> Any:
        """fn() after a client disconnects, in its session (errors are logged)."""
        return set_trigger("on_disconnect", self._triggers.disconnect, trigger, old)

    def on_auth(self, trigger: Any = None, old: Any = None) -> Any:
        """fn(user_name, success) after an AUTH with a known user's name
        (2.6's rule); one that raises fails the AUTH with its error."""
        return set_trigger("on_auth", self._triggers.auth, trigger, old)

    def _session(self) -> Any:
        session = _fiber().session
        if session is None:
            raise BoxError(ER.UNSUPPORTED, "box.session", "this call outside of a request")
        return session

    def id(self) -> int:
        session = _fiber().session
        return 0 if session is None else session.id

    def user(self) -> str:
        """The session's user (inside `su(user, fn)` still the session's, as
        Tarantool 2.6 answers; `effective_user()` is whose rights apply)."""
        session = _fiber().session
        return "admin" if session is None else session.user.name

    def uid(self) -> int:
        session = _fiber().session
        return 1 if session is None else session.user.uid

    def effective_user(self) -> str:
        return str(effective_user(self._users).name)

    def su(self, user: str | int, fn: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        """Tarantool's `box.session.su`: with `fn`, fn(*args) runs with
        `user`'s rights and its result is returned; without, the session
        is `user`'s from now on. The user must be able to log in."""
        f = _fiber()
        target = self._users.get(user) if isinstance(user, str) else self._users.by_id.get(user)
        if target is None:
            raise BoxError(ER.NO_SUCH_USER, str(user))
        self._check_session(target)
        if fn is None:
            if f.session is not None:
                f.session.user = target
            f.user = None if f.session is not None else target
            return None
        before, f.user = f.user, target
        try:
            return fn(*args, **kwargs)
        finally:
            f.user = before

    def sync(self) -> int:
        return _fiber().sync

    def peer(self) -> Any:
        return self._session().peer

    def push(self, value: Any) -> bool:
        """Send `value` to the caller now, as an IPROTO_CHUNK, before the reply.

        Returns True (as Tarantool). The call does not wait for delivery.
        """
        f = _fiber()
        if f.session is None:
            raise BoxError(ER.UNSUPPORTED, "console session", "push")
        self._push(f.session, f.sync, value)
        return True


class UserApi(Members):
    """`box.schema.user`."""

    API_NAME = "box.schema.user"

    def __init__(self, schema: Schema, users: Users) -> None:
        self._schema = schema
        self._users = users
        self._role = False

    def _me(self) -> Any:
        return effective_user(self._users)

    def create(self, name: str, *, password: str | None = None, if_not_exists: bool = False) -> None:
        me = self._me()
        self._schema.privileges.check(me, "universe", 0, "", CREATE)
        self._schema.create_user(name, password, me.uid, if_not_exists=if_not_exists,
                                 role=self._role)

    def drop(self, name: str, *, if_exists: bool = False) -> None:
        self._schema.privileges.check(self._me(), "universe", 0, "", DROP)
        self._schema.drop_user(name, if_exists=if_exists, role=self._role)

    def exists(self, name: str) -> bool:
        user = self._users.get(name)
        return user is not None and (user.type == "role") == self._role

    def grant(self, user: str, privileges: str | int, object_type: str | None = None,
              object_name: Any = None, *, if_not_exists: bool = False) -> None:
        """`grant("bob", "read,write", "space", "test")`; with no object type
        the universe, or a role if `privileges` names one: `grant("bob",
        "super")`. Only admin and an object's owner may grant on it."""
        self._schema.grant(self._me().uid, user, privileges, object_type, object_name,
                           if_not_exists=if_not_exists)

    def revoke(self, user: str, privileges: str | int, object_type: str | None = None,
               object_name: Any = None, *, if_exists: bool = False) -> None:
        self._schema.grant(self._me().uid, user, privileges, object_type, object_name,
                           revoke=True, if_exists=if_exists)

    def info(self, name: str | None = None) -> list[list[Any]]:
        """[[privileges, object type, object name], ...], as Tarantool shows them."""
        schema = self._schema
        user = schema.users.get(name) if name is not None else self._me()
        if user is None:
            raise BoxError(ER.NO_SUCH_USER, name)
        grants = sorted((g for g in schema.privileges.grants.values() if g.grantee == user.uid),
                        key=lambda g: (g.object_type, str(type(g.object_id)), g.object_id))
        return [[priv_names(g.privilege), g.object_type,
                 _object_name(schema, g.object_type, g.object_id)] for g in grants]

    def passwd(self, name: str, password: str | None = None) -> None:
        if password is None:  # box.schema.user.passwd(password): the session's user
            name, password = self._me().name, name
        self._users.passwd(name, password)


class RoleApi(UserApi):
    API_NAME = "box.schema.role"

    """`box.schema.role`: roles are users you cannot log in as."""

    def __init__(self, schema: Schema, users: Users) -> None:
        super().__init__(schema, users)
        self._role = True

    def create(self, name: str, *, if_not_exists: bool = False) -> None:  # type: ignore[override]  # no password
        super().create(name, if_not_exists=if_not_exists)


class FuncApi(Members):
    """`box.schema.func`: named objects to grant execute on."""

    API_NAME = "box.schema.func"

    def __init__(self, schema: Schema, users: Users) -> None:
        self._schema = schema
        self._users = users

    def create(self, name: str, *, if_not_exists: bool = False, setuid: bool = False,
               language: str = "LUA", **_: Any) -> None:
        me = effective_user(self._users)
        self._schema.privileges.check(me, "function", None, name, CREATE)  # 2.6 names the function
        self._schema.create_function(name, me.uid, setuid=setuid, language=language,
                                     if_not_exists=if_not_exists)

    def drop(self, name: str, *, if_exists: bool = False) -> None:
        self._schema.privileges.check(effective_user(self._users), "universe", 0, "", DROP)
        self._schema.drop_function(name, if_exists=if_exists)

    def exists(self, name: str) -> bool:
        return name in self._schema.functions


def _object_name(schema: Any, object_type: str, object_id: Any) -> str:
    if object_type == "universe" or object_id == "":
        return ""
    if object_type == "space":
        s = schema.spaces.get(object_id)
        return s.name if s is not None else str(object_id)
    if object_type in ("user", "role"):
        u = schema.users.by_id.get(object_id)
        return u.name if u is not None else str(object_id)
    if object_type == "function":
        for f in schema.functions.values():
            if f.id == object_id:
                return f.name
    return str(object_id)


class SchemaApi(Members):
    """`box.schema`."""

    API_NAME = "box.schema"

    def __init__(self, schema: Schema, users: Users, req_counts: list[int]) -> None:
        self.user = UserApi(schema, users)
        self.role = RoleApi(schema, users)
        self.func = FuncApi(schema, users)
        self.space = SchemaSpaceApi(schema, users, req_counts)


class StatApi(Members):
    """`box.stat()`: requests by type; `box.stat.net()`: the iproto threads."""

    API_NAME = "box.stat"

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def __call__(self) -> dict[str, Any]:
        return self._stats.request_stats()

    async def net(self) -> dict[str, Any]:
        """Totals over all iproto threads: SENT, RECEIVED, CONNECTIONS, REQUESTS,
        REQUESTS_IN_PROGRESS, STREAMS, REQUESTS_IN_STREAM_QUEUE, each with
        total and rps (and current where it has one)."""
        return await self._stats.net_stats()

    async def net_thread(self) -> list[dict[str, Any]]:
        """The same, per iproto thread (Tarantool's box.stat.net.thread())."""
        return await self._stats.net_stats_threads()


class SlabApi(Members):
    """`box.slab.info()` with Tarantool's keys. Styx keeps tuples as Python
    bytes, not in slabs: the quota is real (`memtx_memory`, charged per
    tuple), and the arena and items figures are that same charge."""

    API_NAME = "box.slab"

    def __init__(self, quota: Any) -> None:
        self._quota = quota

    def info(self) -> dict[str, Any]:
        used, size = self._quota.used, self._quota.limit
        ratio = f"{100 * used / size:.1f}%" if size else "0%"
        return {"quota_size": size, "quota_used": used, "quota_used_ratio": ratio,
                "arena_size": used, "arena_used": used, "arena_used_ratio": "100%" if used else "0%",
                "items_size": used, "items_used": used, "items_used_ratio": "100%" if used else "0%"}

    def stats(self) -> list[Any]:
        return []  # no slab classes


# box.txn_isolation_level (BEGIN's TXN_ISOLATION numbers), both spellings, as
# Tarantool's; 4, linearizable, is 2.11's.
TXN_ISOLATION_LEVEL = {"default": 0, "read-committed": 1, "read-confirmed": 2, "best-effort": 3,
                       "DEFAULT": 0, "READ_COMMITTED": 1, "READ_CONFIRMED": 2, "BEST_EFFORT": 3}


class InfoApi(Members):
    """`box.info()` (a dict), or `box.info.status` and friends."""

    API_NAME = "box.info"

    def __init__(self, schema: Schema, version: tuple[int, int, int], instance_uuid: str) -> None:
        self._schema = schema
        self._version = version
        self._uuid = instance_uuid
        self._started = time.monotonic()

    def __call__(self) -> dict[str, Any]:
        uuid = self._uuid
        return {
            "version": "{}.{}.{}-styx".format(*self._version),
            "id": 1,
            "ro": self._schema.changes.read_only,
            "status": "running",
            "uuid": uuid,
            "uptime": int(time.monotonic() - self._started),
            "pid": os.getpid(),
            "lsn": 0,
            "signature": 0,
            "vclock": {},
            "cluster": {"uuid": self._schema.replicaset_uuid},
            "replication": {1: {"id": 1, "uuid": uuid, "lsn": 0}},
            "schema_version": self._schema.version,
        }

    def memory(self) -> dict[str, int]:
        """box.info.memory() with Tarantool's keys: `data` is what tuples take
        (the memtx_memory charge); Styx does not measure the others apart."""
        return {"cache": 0, "data": self._schema.quota.used, "index": 0, "lua": 0, "net": 0, "tx": 0}

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            info = self()
            if name in info:
                return info[name]
        return super().__getattr__(name)


class ErrorApi(Members):
    """`box.error`: `raise box.error(box.error.NO_SUCH_USER, "bob")`, or
    `raise box.error(code=1000, reason="...", type="MyError")`."""

    API_NAME = "box.error"

    def __init__(self) -> None:
        for code, (name, _fmt) in MESSAGES.items():
            setattr(self, name[3:], code)

    def __call__(self, code: int = ER.UNKNOWN, *args: Any, reason: str | None = None,
                 type: str = "ClientError", **fields: Any) -> BoxError:
        caller = sys._getframe(1)
        return BoxError(code, *args, message=reason, type_name=type, fields=fields or None,
                        file=caller.f_code.co_filename, line=caller.f_lineno)

    new = __call__


class Box(Members):
    """One server's box.

    `req_counts` are box.stat's counters by request type (the space API's
    data calls count); `broadcast` sets a watched key (the watchers')."""

    def __init__(self, schema: Schema, users: Users, req_counts: list[int], tx: TxServices, *,
                 broadcast: Callable[[str, Any], None], version: tuple[int, int, int],
                 instance_uuid: str) -> None:
        self._tx = tx
        self._schema = schema
        self._broadcast = broadcast
        self.session = SessionApi(tx.push_chunk, users, schema.privileges.check_session, tx.session_triggers)
        self.schema = SchemaApi(schema, users, req_counts)
        self.space = SpacesApi(schema, users, req_counts)
        self.stat = StatApi(tx)
        self.info = InfoApi(schema, version, instance_uuid)
        self.error = ErrorApi()
        self.txn_isolation_level = dict(TXN_ISOLATION_LEVEL)
        self.cfg = CfgApi(tx)
        self.slab = SlabApi(schema.quota)
        self.index = IndexConstants()
        self.NULL = None  # Lua's box.NULL is MessagePack's nil, which is Python's None
        self.lua = LuaApi(tx.lua)


    # -- transactions ------------------------------------------------------------

    def begin(self, *, timeout: float | None = None, txn_isolation: str | int = "default") -> None:
        """Start a transaction: in a stream it lives on across requests (until
        COMMIT or ROLLBACK); elsewhere it must end before the procedure returns.

        `timeout` as Tarantool's box.begin{timeout=} checks it: a number
        more than 0. NaN and +inf pass there, and their timers never fire:
        here they mean no timeout. `txn_isolation`: a name or number of
        box.txn_isolation_level (README: what each means here)."""
        isolation = TXN_ISOLATION_LEVEL.get(txn_isolation) if isinstance(txn_isolation, str) else txn_isolation
        if isolation is None or isolation not in TXN_ISOLATION_LEVEL.values() or isinstance(isolation, bool):
            raise BoxError(ER.ILLEGAL_PARAMS,
                           "txn_isolation must be one of box.txn_isolation_level (keys or values)")
        f = _fiber()
        if timeout is not None:
            if type(timeout) not in (int, float) or timeout <= 0:
                raise BoxError(ER.ILLEGAL_PARAMS, "timeout must be a number greater than 0")
            if timeout != timeout or timeout == math.inf:
                timeout = None
        if f.txn is not None:
            raise BoxError(ER.ACTIVE_TRANSACTION)
        txn = f.txn = self._tx.new_txn(timeout, isolation)
        if f.stream_id and f.session is not None:
            f.session.txns[f.stream_id] = txn

    def commit(self) -> None:
        txn = _take_txn()
        if txn is not None:
            txn.commit()

    def rollback(self) -> None:
        txn = _take_txn()
        if txn is not None:
            txn.rollback()

    def is_in_txn(self) -> bool:
        return _fiber().txn is not None

    def broadcast(self, key: str, value: Any = None) -> None:
        """Set `key` to `value` for every watcher (IPROTO_WATCH) of it."""
        if not isinstance(key, str):
            raise BoxError(ER.ILLEGAL_PARAMS, "key must be a string")
        self._broadcast(key, value)

    async def snapshot(self) -> str:
        """`await box.snapshot()`: a checkpoint (styx/checkpoint.py); "ok"."""
        await self._tx.snapshot()
        return "ok"

    def once(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`box.once(key, fn, ...)`: fn(...) the first time this database
        sees `key`, ever (the mark is a _schema row, as Tarantool's, so it
        survives a restart); None after."""
        if not isinstance(key, str) or not callable(fn):
            raise BoxError(ER.ILLEGAL_PARAMS, "Usage: box.once(key, func, ...)")
        _fiber()
        if self._schema.once(key):
            return fn(*args, **kwargs)
        return None

    def atomic(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`box.atomic(fn, ...)`: fn(...) in a transaction, committed if it
        returns, rolled back if it raises (Tarantool's box.atomic)."""
        self.begin()
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return result

    @property
    def schema_version(self) -> int:
        return self._schema.version


class LuaApi(Members):
    """`box.lua`: TX's Lua (tx/lua.py) from Python. Each call answers Lua's
    return values as a tuple, or, if the Lua code waits (fiber.sleep, ...),
    an awaitable of them. Global functions a file or an expression defines
    are callable over CALL, after the Python app's procedures."""

    API_NAME = "box.lua"

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get

    def eval(self, expr: str, *args: Any) -> Any:
        """Run a Lua chunk with `args` as its `...`."""
        _fiber()
        return self._get().eval(expr, list(args))

    def dofile(self, path: str | os.PathLike[str]) -> Any:
        """Run a Lua file."""
        _fiber()
        return self._get().dofile(os.fspath(path))

    def call(self, name: str, *args: Any) -> Any:
        """Call a global Lua function (`f`, `a.b.f`, `a:f`), as CALL does."""
        _fiber()
        proc = self._get().procedure(name)
        if proc is None:
            raise BoxError(ER.NO_SUCH_PROC, name)
        return proc.func(*args)


class CfgApi:
    """`box.cfg`: `box.cfg.listen` (or `box.cfg["listen"]`) reads an option;
    `box.cfg(net_msg_max=1024)` changes the dynamic ones at runtime, each new
    value reaching every iproto thread through a cbus message."""

    def __init__(self, tx: TxServices) -> None:
        self._tx = tx

    def __call__(self, **options: Any) -> None:
        self._tx.reconfigure(options)

    def __getitem__(self, name: str) -> Any:
        values = self._tx.cfg_values()
        if name not in values:
            raise KeyError(f"box.cfg has no option {name!r}")
        return values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(e.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tx.cfg_values())

    def __repr__(self) -> str:
        return f"box.cfg({self._tx.cfg_values()!r})"


class IndexConstants(Members):
    """`box.index.EQ`, `box.index.GE`, ...: the iterator types, as numbers."""

    API_NAME = "box.index"

    def __init__(self) -> None:
        for name, code in ITERATOR_NAMES.items():
            setattr(self, name, code)


class BoxProxy:
    """`styx.box`: the current server's box."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_fiber().tx.box, name)

    def __repr__(self) -> str:
        f = fiber_mod.current.get()
        return "<styx.box (no server)>" if f is None else f"<styx.box of {f.tx!r}>"
