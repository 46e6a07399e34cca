"""TX's half of every route: one handler per request type.

Each handler is a cbus hop function: it receives the message in TX, does the
work, writes the reply into the connection's obuf, and returns None (the
message then goes back to its net thread), or returns a coroutine when the
work may yield (the message goes back when the fiber ends).

Every request starts with `_accept`, Tarantool's `tx_accept_msg` +
`tx_check_msg`: recycle obufs up to the flushed position the message
brought, and refuse a request whose non-zero SCHEMA_VERSION is not the
current one (error 109; checked first, for every type, as Tarantool does).

The handlers are plain functions of `tx` (tx/thread.py), which owns the
state they use (schema, users, procedures, packers, sessions), as
Tarantool's `tx_process_*` are functions; `handlers(tx)` binds them for the
routes (routes.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .. import cbus
from ..box.privileges import R, W, X
from ..box.schema import SystemSpace
from ..box.space import Space, unpack_tuple
from ..box.txn import View
from ..box.users import GUEST
from ..iproto_msg import BOUNCED, RETRY, IprotoMsg, ServiceMsg
from ..protocol import constants as C
from ..protocol.auth import CHAP_SHA1, check_scramble
from ..protocol.codec import DmlRequest
from ..protocol.errors import ER, BoxError, error_from_exception
from ..protocol.greeting import encode_greeting
from ..wal import CascadeRollback
from .app import Procedure, call16_tuples
from .fiber import Fiber, current
from .kharon import accept_wpos
from .reply import array_header_len, reply_array, reply_data, reply_error, reply_map, reply_ok, reply_one, write_error

if TYPE_CHECKING:
    from .thread import Tx

log = logging.getLogger("styx.tx")

__all__ = ["handlers", "reply_failure", "process_error", "process_connect", "process_disconnect",
           "process_destroy", "FEATURES", "PROTOCOL_VERSION"]

# What IPROTO_ID advertises: only what Styx implements. STREAMS and
# TRANSACTIONS: STREAM_ID, BEGIN/COMMIT/ROLLBACK; ERROR_EXTENSION: a
# returned box.error is encoded as MP_ERROR (ext 3) for clients that asked;
# PAGINATION: FETCH_POSITION, AFTER_POSITION, AFTER_TUPLE on TREE indexes;
# SPACE_AND_INDEX_NAMES: SPACE_NAME and INDEX_NAME in place of the ids.
# WATCHERS, WATCH_ONCE: WATCH/UNWATCH/EVENT and WATCH_ONCE.
FEATURES = frozenset({C.FEATURE_STREAMS, C.FEATURE_TRANSACTIONS, C.FEATURE_ERROR_EXTENSION,
                      C.FEATURE_WATCHERS, C.FEATURE_PAGINATION,
                      C.FEATURE_SPACE_AND_INDEX_NAMES, C.FEATURE_WATCH_ONCE})
# The protocol version that introduced the newest advertised feature
# (WATCH_ONCE came with version 6).
PROTOCOL_VERSION = 6


# -- prologue -------------------------------------------------------------


def _accept(tx: Tx, msg: IprotoMsg) -> bool:
    """Recycle output, count it, check the schema version; False if
    already answered (or sent back: `_defer`)."""
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return False
    tx.req_counts[msg.type] += 1
    return not msg.schema_version or _schema_ok(tx, msg)


def _schema_ok(tx: Tx, msg: IprotoMsg) -> bool:
    sv = msg.schema_version
    if sv != tx.schema.version:
        # Tarantool passes the two versions in this (swapped) order.
        _error(tx, msg, BoxError(ER.WRONG_SCHEMA_VERSION, sv, tx.schema.version))
        return False
    return True


def _defer(tx: Tx, msg: IprotoMsg, held: int) -> bool:
    """Send the request back unexecuted if its connection holds more than
    `net_obuf_max` bytes of output not all written (`accept_wpos`), or if an
    earlier one was sent back (the order of requests holds); net sends it
    again when output drained (net/connection.py, "Output bound"). True if
    sent back."""
    tx_conn = msg.tx_conn
    if not tx_conn.alive:
        return False  # closed: nothing is written any more, run it
    if msg.bounce == RETRY:
        tx_conn.deferring = False
    if not tx_conn.deferring and held <= tx.net_obuf_max:
        return False
    tx_conn.deferring = True
    msg.bounce = BOUNCED
    return True


def _error(tx: Tx, msg: IprotoMsg, err: BoxError) -> None:
    tx.errors += 1
    reply_error(msg.tx_conn, msg, tx.schema.version, err, tx.packb)


def reply_failure(tx: Tx, msg: IprotoMsg, exc: Exception) -> None:
    """A handler raised where it should have replied (a bug): the client
    still gets an answer."""
    _error(tx, msg, BoxError(ER.SYSTEM, message=f"Internal error: {type(exc).__name__}: {exc}",
                             type_name="SystemError"))


# -- routes -----------------------------------------------------------------


def handlers(tx: Tx) -> dict[int, Callable[[IprotoMsg], Any]]:
    """Request type -> TX hop function, bound to `tx`. A type not here is
    unknown (48)."""
    return {
        C.PING: partial(process_ping, tx),
        C.ID: partial(process_id, tx),
        C.AUTH: partial(process_auth, tx),
        C.CALL: partial(process_call, tx),
        C.CALL_16: partial(process_call, tx),
        C.EVAL: partial(process_eval, tx),
        C.EXECUTE: partial(process_sql, tx),
        C.PREPARE: partial(process_sql, tx),
        C.SELECT: partial(process_select, tx),
        C.INSERT: partial(process_dml, tx),
        C.REPLACE: partial(process_dml, tx),
        C.UPDATE: partial(process_dml, tx),
        C.DELETE: partial(process_dml, tx),
        C.UPSERT: partial(process_dml, tx),
        C.WATCH: partial(process_watch, tx),
        C.UNWATCH: partial(process_unwatch, tx),
        C.WATCH_ONCE: partial(process_watch_once, tx),
        C.BEGIN: partial(process_begin, tx),
        C.COMMIT: partial(process_commit, tx),
        C.ROLLBACK: partial(process_rollback, tx),
    }


def process_error(tx: Tx, msg: IprotoMsg) -> None:
    """A request net could not decode: reply with the error it found (for a
    bad header, with the sync net read before the failure)."""
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return
    assert msg.diag is not None  # the error route carries one
    _error(tx, msg, msg.diag)


# -- requests ------------------------------------------------------------------


def process_ping(tx: Tx, msg: IprotoMsg) -> None:
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return
    if not msg.schema_version or _schema_ok(tx, msg):
        reply_ok(tx_conn, msg, tx.schema.version)


def process_id(tx: Tx, msg: IprotoMsg) -> None:
    if not _accept(tx, msg):
        return
    req = msg.req
    session = msg.tx_conn.session
    session.features = FEATURES.intersection(req.features)
    session.packb = (tx.packb_ext if C.FEATURE_ERROR_EXTENSION in session.features
                     else tx.packb)
    body = tx.packb({C.VERSION: PROTOCOL_VERSION, C.FEATURES: sorted(FEATURES),
                       C.AUTH_TYPE: CHAP_SHA1})
    reply_map(msg.tx_conn, msg, tx.schema.version, body)


def process_auth(tx: Tx, msg: IprotoMsg) -> None:
    if not _accept(tx, msg):
        return
    session = msg.tx_conn.session
    name = msg.req.user
    on_auth = tx.session_triggers.auth
    try:
        user = authenticate(tx, session, name, msg.req.tuple)
    except BoxError as e:
        if _FAILED_LOGINS.allow():
            log.warning("client %s: authentication as %r failed: %s%s", _peer(session.peer), name,
                        e.message, _FAILED_LOGINS.suppressed_note())
        if on_auth and e.code == ER.CREDS_MISMATCH and tx.users.get(name) is not None:
            e = run_triggers(tx, session, on_auth, name, False) or e  # 2.6: a known user's wrong password
        _error(tx, msg, e)
        return
    if on_auth:
        err = run_triggers(tx, session, on_auth, name, True)
        if err is not None:
            _error(tx, msg, err)
            return
    session.user = user
    reply_ok(msg.tx_conn, msg, tx.schema.version)


class RateLimit:
    """At most `n` log lines every `seconds`; how many were left out is told
    with the next one (Tarantool's say_ratelimited)."""

    def __init__(self, n: int, seconds: float) -> None:
        self.n, self.seconds = n, seconds
        self.start, self.count, self.suppressed = float("-inf"), 0, 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self.start >= self.seconds:
            self.start, self.count = now, 0
        if self.count < self.n:
            self.count += 1
            return True
        self.suppressed += 1
        return False

    def suppressed_note(self) -> str:
        note, self.suppressed = (f" ({self.suppressed} more left out)" if self.suppressed else ""), 0
        return note


_FAILED_LOGINS = RateLimit(10, 10.0)
_PROC_ERRORS = RateLimit(10, 10.0)


def _peer(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer or "unix")


def log_app_error(name: str, e: BaseException) -> None:
    """A procedure raised (the caller gets error 32): the app's traceback,
    for whoever runs the server, at most 10 every 10 s."""
    if not isinstance(e, BoxError) and _PROC_ERRORS.allow():
        log.warning("procedure %s raised %s: %s (the caller got error 32)%s", name, type(e).__name__, e,
                    _PROC_ERRORS.suppressed_note(), exc_info=e)


def authenticate(tx: Tx, session: Any, user_name: str, tup: list[Any]) -> Any:
    """chap-sha1, in the order of Tarantool 2.11+ (`authenticate`): the body
    is checked before the user's existence matters, and an unknown user and
    a wrong password get the same error."""
    user = tx.users.get(user_name)
    if not tup and user is not None and user.uid == GUEST:
        return user
    if len(tup) < 2 or type(tup[0]) is not str:
        raise BoxError(ER.INVALID_MSGPACK, "authentication request body")
    method, scramble = tup[0], tup[1]
    if method != CHAP_SHA1:
        raise BoxError(ER.UNKNOWN_AUTH_METHOD, method)
    if type(scramble) is str:
        scramble = scramble.encode("utf-8", "surrogateescape")
    elif type(scramble) is not bytes:
        raise BoxError(ER.INVALID_AUTH_REQUEST, CHAP_SHA1, "scramble must be string")
    if len(scramble) != C.SCRAMBLE_SIZE:
        raise BoxError(ER.INVALID_AUTH_REQUEST, CHAP_SHA1, "invalid scramble size")
    hash2 = user.hash2() if user is not None and user.type == "user" else None
    if hash2 is None or not check_scramble(session.salt, scramble, hash2):
        raise BoxError(ER.CREDS_MISMATCH)
    assert user is not None  # it gave hash2
    tx.schema.privileges.check_session(user)
    return user


def process_eval(tx: Tx, msg: IprotoMsg) -> Any:
    """EVAL: the expression runs in TX's Lua (tx/lua.py) as a chunk whose
    arguments are `...`, with the caller's rights, as a plain procedure
    runs: its writes are one WAL transaction, its reply leaves after them."""
    if not _accept(tx, msg):
        return None
    tx_conn = msg.tx_conn
    expr, args = msg.req
    try:
        tx.schema.privileges.check(tx_conn.session.user, "universe", 0, "", X)  # as Tarantool: EVAL needs it
    except BoxError as e:
        _error(tx, msg, e)
        return None
    fiber = _call_fiber(tx, msg)
    token = current.set(fiber)
    try:
        values = tx.lua().eval(expr, args)
    except Exception as e:  # noqa: BLE001 - the expression's error goes to the caller
        return _call_failed(tx, msg, fiber, e)
    finally:
        current.reset(token)
    if asyncio.iscoroutine(values):  # it waits (fiber.sleep, ...): the rest in a fiber
        tx.discard_input(msg)
        return _await_in_fiber(tx, msg, fiber, values, "eval")
    return _call_returned(tx, msg, fiber, values)


def process_sql(tx: Tx, msg: IprotoMsg) -> None:
    """EXECUTE and PREPARE: Styx has no SQL. Routed (not left unknown, 48) so
    a connector's execute() gets an answer that says why; counted in
    box.stat like Tarantool's."""
    if _accept(tx, msg):
        _error(tx, msg, BoxError(ER.UNSUPPORTED, "Styx", "SQL"))


# -- CALL ----------------------------------------------------------------------


def process_call(tx: Tx, msg: IprotoMsg) -> Any:
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return None
    tx.req_counts[msg.type] += 1
    if msg.schema_version and not _schema_ok(tx, msg):
        return None
    name, args = msg.req
    proc = tx.procedures.get(name) or _builtin(tx, name) or _lua_function(tx, name)
    try:
        # Access first: a user without execute must not learn what exists.
        check_execute(tx, tx_conn.session.user, name)
    except BoxError as e:
        _error(tx, msg, e)
        return None
    if proc is None:
        _error(tx, msg, BoxError(ER.NO_SUCH_PROC, name))
        return None
    fiber = _call_fiber(tx, msg)
    if proc.is_async:
        tx.discard_input(msg)
        return _call_in_fiber(tx, msg, fiber, proc, args)
    token = current.set(fiber)
    started = perf_counter()
    try:
        result = proc.func(*args)
    except Exception as e:  # noqa: BLE001 - the procedure's error goes to the caller
        log_app_error(proc.name, e)
        return _call_failed(tx, msg, fiber, e)
    finally:
        current.reset(token)
        elapsed = perf_counter() - started
        if elapsed >= TOO_LONG:
            _check_blocking(proc, elapsed)
    if hasattr(result, "__await__"):
        # A plain function that returned an awaitable: finish it in a fiber.
        tx.discard_input(msg)
        return _await_in_fiber(tx, msg, fiber, result, proc.name)
    if fiber.txn is None and not fiber.changes:
        _reply_call(tx, msg, result)  # the common case: nothing to end, nothing to write
        return None
    return _call_returned(tx, msg, fiber, result)


def _call_fiber(tx: Tx, msg: IprotoMsg) -> Fiber:
    """The fiber record a CALL or an EVAL runs with: its session, sync,
    stream transaction, and (with a WAL) the changes it makes."""
    session = msg.tx_conn.session
    stream_id = msg.stream_id
    fiber = Fiber(tx, session, msg.sync, stream_id, session.txns.get(stream_id) if stream_id else None)
    if tx.committer is not None:
        fiber.changes = []
    return fiber


def _call_failed(tx: Tx, msg: IprotoMsg, fiber: Fiber, e: Exception) -> Any:
    """An inline CALL or EVAL raised: its error, once its writes are written."""
    _end_call_txn(tx, fiber)
    err = error_from_exception(e)
    return _after_call(tx, msg, fiber, lambda: _error(tx, msg, err))


def _call_returned(tx: Tx, msg: IprotoMsg, fiber: Fiber, result: Any) -> Any:
    """An inline CALL or EVAL returned: its reply, once its writes are
    written; FUNCTION_TX_ACTIVE if it left a transaction open."""
    if _end_call_txn(tx, fiber):
        return _after_call(tx, msg, fiber, lambda: _error(tx, msg, BoxError(ER.FUNCTION_TX_ACTIVE)))
    return _after_call(tx, msg, fiber, lambda: _reply_call(tx, msg, result))


TOO_LONG = 0.5  # seconds a plain def may hold TX's loop before a warning (Tarantool's too_long_threshold)
TOO_LONG_EVERY = 10.0  # seconds between two warnings about one procedure


def _check_blocking(proc: Procedure, seconds: float) -> None:
    """A plain def ran inline in TX for `seconds` (over TOO_LONG): while it
    ran, nothing else was served."""
    now = time.monotonic()
    if now - proc.warned_at >= TOO_LONG_EVERY:
        proc.warned_at = now
        log.warning("procedure %s held the event loop for %.2f s, and every other request waited: "
                    "make it `async def` and move blocking work off the loop "
                    "(`await asyncio.to_thread(...)`)", proc.name, seconds)


def _end_call_txn(tx: Tx, fiber: Fiber) -> bool:
    """Outside a stream a procedure must end the transaction it began; one
    left open is rolled back (True: the call fails with error 30)."""
    txn = fiber.txn
    if txn is None or fiber.stream_id:
        return False
    fiber.txn = None
    txn.rollback()
    return True


def _builtin(tx: Tx, name: str) -> Procedure | None:
    """A Lua API name (`box.space.test:select`) as a procedure taking the
    CALL's arguments as one list and returning Lua's values as a tuple."""
    fn = tx.builtins.resolve(name)
    if fn is None:
        return None
    if asyncio.iscoroutinefunction(fn):
        async def acall(*args: Any) -> tuple[Any, ...]:
            return tuple(await fn(list(args)))
        return Procedure(name, acall)
    return Procedure(name, lambda *args: tuple(fn(list(args))))


def _lua_function(tx: Tx, name: str) -> Procedure | None:
    """A global Lua function (tx/lua.py), once the server runs Lua: after
    the Python app's procedures and box's own, as Python wins a shared name."""
    lua = tx.lua_if_running()
    if lua is None:
        return None
    return lua.procedure(name)


def check_execute(tx: Tx, user: Any, name: str) -> None:
    """Execute access: on the function object if `box.schema.func.create`
    made one, else on the universe (Tarantool's rule for global functions)."""
    func = tx.schema.functions.get(name)
    tx.schema.privileges.check(user, "function", func.id if func else -1, name, X)


async def _call_in_fiber(tx: Tx, msg: IprotoMsg, fiber: Fiber, proc: Procedure,
                         args: list[Any]) -> None:
    await _await_in_fiber(tx, msg, fiber, proc.func(*args), proc.name)


async def _await_in_fiber(tx: Tx, msg: IprotoMsg, fiber: Fiber, awaitable: Any, name: str) -> None:
    current.set(fiber)  # this task's own context
    net = msg.tx_conn.net
    net.in_progress += 1
    net.in_progress_total += 1
    try:
        try:
            result = await awaitable
        except Exception as e:  # noqa: BLE001 - the procedure's error goes to the caller
            log_app_error(name, e)
            _end_call_txn(tx, fiber)
            err = error_from_exception(e)
            _error(tx, msg, await _written(tx, fiber) or err)
            return
        failed = _end_call_txn(tx, fiber)
        wal_error = await _written(tx, fiber)
        if wal_error is not None:
            _error(tx, msg, wal_error)
        elif failed:
            _error(tx, msg, BoxError(ER.FUNCTION_TX_ACTIVE))
        else:
            _reply_call(tx, msg, result)
    finally:
        net.in_progress -= 1


def _reply_call(tx: Tx, msg: IprotoMsg, result: Any) -> None:
    # As Lua's return values: a tuple is several, None none, anything else one.
    values = list(result) if type(result) is tuple else [] if result is None else [result]
    if msg.type == C.CALL_16:
        values = call16_tuples(values)
    limit = tx.net_reply_max
    if not (len(values) == 1 and type(values[0]) in _SCALARS):  # (one number is never too big)
        least = _size_at_least(values, limit)
        if least > limit:
            _error(tx, msg, _too_big(tx, f"at least {least}"))
            return
    try:
        packed = msg.tx_conn.session.packb(values)  # one array: reply_array takes its elements
    except Exception as e:  # noqa: BLE001 - e.g. a value msgpack cannot encode
        _error(tx, msg, BoxError(ER.PROC_LUA, message=f"Failed to encode the result: {e}",
                                  type_name=type(e).__name__))
        return
    if len(packed) > limit:
        size = len(packed) - array_header_len(len(values))  # the elements, not the array header
        if size > limit:
            _error(tx, msg, _too_big(tx, str(size)))
            return
    reply_array(msg.tx_conn, msg, tx.schema.version, packed, len(values))


_SCALARS = frozenset((int, float, bool, type(None)))


# Replies are bounded (net_reply_max): encoding a reply of hundreds of MB,
# copying it into the obuf and out kept TX, so every other client, waiting
# for seconds. `_size_at_least` catches the usual culprit (big strings) before
# anything is encoded; the encoded size is checked for the rest.
_SIZE_WALK_NODES = 32  # enough for a few big strings; a few µs at most


def _size_at_least(values: Any, limit: int) -> int:
    """A lower bound of the encoded size of `values`, from at most
    `_SIZE_WALK_NODES` nodes (a str's UTF-8 is at least its length in
    characters, any value takes at least a byte); stops once over `limit`."""
    total, todo, budget = 0, [values], _SIZE_WALK_NODES
    while todo and budget and total <= limit:
        v = todo.pop()
        budget -= 1
        t = type(v)
        if t is str or t is bytes or t is bytearray:
            total += len(v) + 1
        elif t is list or t is tuple:
            total += 1
            todo.extend(v)
        elif t is dict:
            total += 1
            todo.extend(v.keys())
            todo.extend(v.values())
        else:
            total += 1
    return total


def _too_big(tx: Tx, size: str) -> BoxError:
    return BoxError(ER.PROC_LUA, message=f"Failed to encode the result: the reply would be "
                                         f"{size} bytes, over net_reply_max ({tx.net_reply_max})")


# -- SELECT and DML ---------------------------------------------------------------


def process_select(tx: Tx, msg: IprotoMsg) -> None:
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return
    tx.req_counts[C.SELECT] += 1
    if msg.schema_version and not _schema_ok(tx, msg):
        return
    req: DmlRequest = msg.req
    point = req.point
    if point is not None and not msg.stream_id:
        # A point read (protocol/codec.py): one dict look-up where the
        # index allows, else the general path below.
        space = tx.schema.spaces.get(req.space_id)  # type: ignore[arg-type]  # set with point
        if space is not None:
            entries = space.points.get(req.index_id)
            if entries is not None:
                try:
                    tx.schema.privileges.check(tx_conn.session.user, "space", space.id, space.name, R)
                except BoxError as e:
                    _error(tx, msg, e)
                    return
                reply_one(tx_conn, msg, tx.schema.version, entries.get(point))
                return
    user = tx_conn.session.user
    position = None
    try:
        if req.iterator >= 12:  # Tarantool checks this before anything else
            raise BoxError(ER.ILLEGAL_PARAMS, "Invalid iterator type")
        space = tx.schema.space(req.space_id, req.space_name)
        tx.schema.privileges.check(user, "space", space.id, space.name, R)
        key = req.key or []
        if isinstance(space, SystemSpace):
            sys_index = space.index(req.index_id, req.index_name)
            items = space.select(user, sys_index, req.iterator, key, req.offset, req.limit)
        else:
            index = space.index(req.index_id, req.index_name)
            data: Space | View = space
            if msg.stream_id:
                txn = tx_conn.session.txns.get(msg.stream_id)
                if txn is not None:
                    data = txn.view(space)
            after = None
            if req.after_position is not None:
                pos = req.after_position
                if pos:  # an empty position means "from the start"
                    after = index.after_key(pos)
            elif req.after_tuple is not None:
                after = index.key_of(req.after_tuple)
            items = data.select(index, req.iterator, key, req.offset, req.limit, after)
            if req.fetch_position and items:
                position = index.position_of(unpack_tuple(items[-1]))
    except BoxError as e:
        _error(tx, msg, e)
        return
    if position is not None:
        reply_data(tx_conn, msg, tx.schema.version, items, position=position)
    else:
        reply_data(tx_conn, msg, tx.schema.version, items)


def process_dml(tx: Tx, msg: IprotoMsg) -> Any:
    tx_conn = msg.tx_conn  # _accept, inline (as in the other hot handlers)
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return None
    tx.req_counts[msg.type] += 1
    if msg.schema_version and not _schema_ok(tx, msg):
        return None
    committer = tx.committer
    if committer is not None:
        committer.begin()
    try:
        result = _dml(tx, msg)
    except BoxError as e:
        if committer is not None:
            committer.end()
        _error(tx, msg, e)
        return None
    if committer is None:
        if msg.stream_id:
            reply_data(tx_conn, msg, tx.schema.version, [] if result is None else [result])
        else:
            reply_one(tx_conn, msg, tx.schema.version, result)
        return None
    items = [] if result is None else [result]
    changes = committer.end()
    # UPDATE and UPSERT are logged as the requests they are, as Tarantool logs
    # them (a procedure's, as what they changed: tx/commit.py).
    rows = committer.request_rows(msg.type, msg.req, changes) if msg.type in (C.UPDATE, C.UPSERT) else None
    return _after_wal(tx, msg, changes, items, rows)


def _dml(tx: Tx, msg: IprotoMsg) -> bytes | None:
    req: DmlRequest = msg.req
    t = msg.type
    schema = tx.schema
    space = schema.space(req.space_id, req.space_name)
    schema.privileges.check(msg.tx_conn.session.user, "space", space.id, space.name, W)
    if isinstance(space, SystemSpace):
        space = schema.user_space(space.id)  # raises: changed through box.schema only
    index = space.index(req.index_id, req.index_name) if t == C.UPDATE or t == C.DELETE else None
    data: Space | View = space
    if msg.stream_id:
        txn = msg.tx_conn.session.txns.get(msg.stream_id)
        if txn is not None:
            data = txn.view(space)
    if space.on_replace:  # its triggers run in the request's fiber (box.session.push, ...)
        token = current.set(Fiber(tx, msg.tx_conn.session, msg.sync, msg.stream_id))
        try:
            return _dml_write(msg, data, index)
        finally:
            current.reset(token)
    return _dml_write(msg, data, index)


def _dml_write(msg: IprotoMsg, data: Space | View, index: Any) -> bytes | None:
    req: DmlRequest = msg.req
    t = msg.type
    if t == C.REPLACE or t == C.INSERT:
        return data.store(req.tuple, t == C.REPLACE)
    if t == C.UPSERT:
        data.upsert(req.tuple, req.ops, req.index_base)
        return None
    assert index is not None  # UPDATE or DELETE
    if t == C.DELETE:
        return data.delete(index, req.key)
    return data.update(index, req.key, req.tuple, req.index_base)  # UPDATE: its operations travel under TUPLE


# -- waiting for the WAL -----------------------------------------------------------


def _after_wal(tx: Tx, msg: IprotoMsg, changes: list[Any], reply: Callable[[], None] | list[bytes],
               rows: list[Any] | None = None) -> Any:
    """Reply now if nothing changed; else once the changes (as `rows`, if
    given) are written (the message waits: PARK), or with error 40 if the
    write failed. `reply`: what replies, or a DML's tuples."""
    if not changes:
        _send(tx, msg, reply)
        return None
    assert tx.committer is not None  # there are changes only with a WAL
    tx.committer.submit(changes, _Answer(tx, msg, reply), rows)
    return cbus.PARK


def _send(tx: Tx, msg: IprotoMsg, reply: Callable[[], None] | list[bytes]) -> None:
    if type(reply) is list:
        reply_data(msg.tx_conn, msg, tx.schema.version, reply)
    else:
        reply()  # type: ignore[operator]  # not a list: the callable


class _Answer:
    """A write's reply, sent once the WAL is done with it. One object rather
    than closures: it lives as long as the write, and every live object is
    work for the collector."""

    __slots__ = ("tx", "msg", "reply")

    def __init__(self, tx: Tx, msg: IprotoMsg, reply: Callable[[], None] | list[bytes]) -> None:
        self.tx = tx
        self.msg = msg
        self.reply = reply

    def __call__(self, error: BaseException | None) -> None:
        """The write is back: reply, and the parked message goes on."""
        msg = self.msg
        if error is not None:
            _error(self.tx, msg, _wal_error(error))
        else:
            _send(self.tx, msg, self.reply)
        cbus.forward(msg)


def _after_call(tx: Tx, msg: IprotoMsg, fiber: Fiber, reply: Callable[[], None]) -> Any:
    return _after_wal(tx, msg, fiber.take_changes(), reply)


async def _written(tx: Tx, fiber: Fiber) -> BoxError | None:
    """In a fiber: wait until the call's changes are written; the error if not."""
    changes = fiber.take_changes()
    if not changes:
        return None
    assert tx.committer is not None  # there are changes only with a WAL
    done = asyncio.get_running_loop().create_future()
    tx.committer.submit(changes, done.set_result)
    error = await done
    return None if error is None else _wal_error(error)


def _wal_error(error: BaseException) -> BoxError:
    """What the client is told: 134 for a write taken by another's failure, else 40."""
    return BoxError(ER.CASCADE_ROLLBACK if isinstance(error, CascadeRollback) else ER.WAL_IO)


# -- watchers ------------------------------------------------------------------------


def process_watch(tx: Tx, msg: IprotoMsg) -> None:
    """No reply, ever (the event is the answer)."""
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return
    tx.watchers.watch(tx_conn.session, msg.req, msg.sync)
    msg.wpos = tx_conn.end()


def process_unwatch(tx: Tx, msg: IprotoMsg) -> None:
    tx_conn = msg.tx_conn
    held = accept_wpos(tx_conn, msg.wpos)
    if (held > tx.net_obuf_max or tx_conn.deferring) and _defer(tx, msg, held):
        return
    tx.watchers.unwatch(tx_conn.session, msg.req)
    msg.wpos = tx_conn.end()


def process_watch_once(tx: Tx, msg: IprotoMsg) -> None:
    if not _accept(tx, msg):
        return
    current = tx.watchers.get(msg.req)
    items = [] if current is None else [msg.tx_conn.session.packb(current[1])]
    reply_data(msg.tx_conn, msg, tx.schema.version, items)


# -- transactions in streams ------------------------------------------------------


def process_begin(tx: Tx, msg: IprotoMsg) -> None:
    if not _accept(tx, msg):
        return
    txns = msg.tx_conn.session.txns
    if msg.stream_id in txns:
        _error(tx, msg, BoxError(ER.ACTIVE_TRANSACTION))
        return
    req = msg.req
    txns[msg.stream_id] = tx.new_txn(req.timeout, req.isolation)
    reply_ok(msg.tx_conn, msg, tx.schema.version)


def process_commit(tx: Tx, msg: IprotoMsg) -> Any:
    if not _accept(tx, msg):
        return
    txn = msg.tx_conn.session.txns.pop(msg.stream_id, None)
    committer = tx.committer
    if txn is not None:  # COMMIT with no transaction is fine (as Tarantool)
        if committer is not None:
            committer.begin()
        token = current.set(Fiber(tx, msg.tx_conn.session, msg.sync, msg.stream_id))  # on_replace triggers
        try:
            txn.commit()
        except BoxError as e:
            if committer is not None:
                committer.end()  # commit undid what it had applied
            _error(tx, msg, e)
            return None
        finally:
            current.reset(token)
    if committer is None or txn is None:
        reply_ok(msg.tx_conn, msg, tx.schema.version)
        return None
    return _after_wal(tx, msg, committer.end(), lambda: reply_ok(msg.tx_conn, msg, tx.schema.version))


def process_rollback(tx: Tx, msg: IprotoMsg) -> None:
    if not _accept(tx, msg):
        return
    txn = msg.tx_conn.session.txns.pop(msg.stream_id, None)
    if txn is not None:
        txn.rollback()
    reply_ok(msg.tx_conn, msg, tx.schema.version)


# -- the connection's life --------------------------------------------------------


def process_connect(tx: Tx, msg: ServiceMsg) -> None:
    """Make the session and write the greeting (`tx_process_connect`); an
    on_connect trigger that raises adds its error and closes."""
    tx_conn, session = tx.new_session(msg)
    tx_conn.obuf[tx_conn.cur_obuf].dup(encode_greeting(tx.version, tx.instance_uuid, session.salt))
    msg.tx_conn = tx_conn
    if tx.session_triggers.connect:
        err = run_triggers(tx, session, tx.session_triggers.connect)
        if err is not None:
            write_error(tx_conn, 0, tx.schema.version, err, tx.packb)
            msg.close = True
    msg.wpos = tx_conn.end()


def run_triggers(tx: Tx, session: Any, triggers: list[Callable[..., Any]], *args: Any) -> BoxError | None:
    """box.session's triggers, in the session, newest first: the first
    error stops them, and is what the caller answers."""
    token = current.set(Fiber(tx, session, 0))
    try:
        for trigger in list(triggers):
            trigger(*args)
    except Exception as e:  # noqa: BLE001 - a trigger's error is its session's answer
        return error_from_exception(e)
    finally:
        current.reset(token)
    return None


def process_disconnect(tx: Tx, msg: ServiceMsg) -> None:
    tx_conn = msg.tx_conn
    if tx_conn is None:
        return
    tx_conn.alive = False
    tx_conn.kharon.is_push_pending = False  # a returning Kharon must not sail again
    session = tx_conn.session
    if session is not None:
        if tx.session_triggers.disconnect:
            err = run_triggers(tx, session, tx.session_triggers.disconnect)
            if err is not None:
                log.error("on_disconnect trigger: %s", err.message)
        session.closed = True
        tx.watchers.drop_session(session)


def process_destroy(tx: Tx, msg: ServiceMsg) -> None:
    tx_conn = msg.tx_conn
    if tx_conn is None:
        return
    session = tx_conn.session
    if session is not None:
        # Every request the connection sent has run (destroy waits for
        # that): transactions still open are rolled back now.
        for txn in session.txns.values():
            txn.rollback()
        session.txns.clear()
        tx.sessions.pop(session.id, None)
    tx_conn.obuf[0].release()
    tx_conn.obuf[1].release()
