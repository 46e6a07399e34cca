"""TX's half of every route: one handler per request type.

Each handler is a cbus hop function: it receives the message in TX, does the
work, writes the reply into the connection's obuf, and returns None (the
message then goes back to its net thread), or returns a coroutine when the
work may yield (the message goes back when the fiber ends).

Every request starts with `_accept`, Tarantool's `tx_accept_msg` +
`tx_check_msg`: recycle obufs up to the flushed position the message
brought, and refuse a request whose non-zero SCHEMA_VERSION is not the
current one (error 109; checked first, for every type, as Tarantool does).

`Process` is mixed into `Tx` (tx/thread.py), which owns the state the
handlers use: schema, users, procedures, packers, fiber pool.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable

from ..iproto_msg import BOUNCED, RETRY, IprotoMsg, ServiceMsg
from ..protocol import constants as C
from ..protocol.auth import CHAP_SHA1, check_scramble
from ..protocol.codec import DmlRequest
from ..protocol.errors import ER, BoxError, error_from_exception
from ..protocol.greeting import encode_greeting
from ..box.privileges import R, W, X
from ..box.schema import SystemSpace
from ..box.space import Space, unpack_tuple
from ..box.users import GUEST
from .app import Procedure, call16_tuples, lua_values
from .fiber import Fiber, current
from .kharon import accept_wpos, end_push
from .reply import reply_data, reply_error, reply_map, reply_ok

if TYPE_CHECKING:
    from .thread import Tx

log = logging.getLogger("styx.tx")

__all__ = ["Process", "FEATURES", "PROTOCOL_VERSION"]

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


class Process:
    # -- prologue -------------------------------------------------------------

    def _accept(self: "Tx", msg: IprotoMsg) -> bool:
        """Recycle output, count it, check the schema version; False if
        already answered (or sent back: `_defer`)."""
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return False
        self.req_counts[msg.type] += 1
        return not msg.schema_version or self._schema_ok(msg)

    def _schema_ok(self: "Tx", msg: IprotoMsg) -> bool:
        sv = msg.schema_version
        if sv != self.schema.version:
            # Tarantool passes the two versions in this (swapped) order.
            self._error(msg, BoxError(ER.WRONG_SCHEMA_VERSION, sv, self.schema.version))
            return False
        return True

    def _defer(self: "Tx", msg: IprotoMsg, unsent: int) -> bool:
        """Send the request back unexecuted if its connection has more than
        `net_obuf_max` bytes unsent, or if an earlier one was sent back (the
        order of requests holds); net sends it again when output drained
        (net/connection.py, "Output bound"). True if sent back."""
        srv = msg.srv
        if not srv.alive:
            return False  # closed: nothing is written any more, run it
        if msg.bounce == RETRY:
            srv.deferring = False
        if not srv.deferring and unsent <= self.net_obuf_max:
            return False
        srv.deferring = True
        msg.bounce = BOUNCED
        return True

    def _error(self: "Tx", msg: IprotoMsg, err: BoxError) -> None:
        self.errors += 1
        reply_error(msg.srv, msg, self.schema.version, err, self.packb)

    # -- routes -----------------------------------------------------------------

    def handlers(self: "Tx") -> dict[int, Callable[[IprotoMsg], Any]]:
        """Request type -> TX hop function. A type not here is unknown (48)."""
        return {
            C.PING: self.process_ping,
            C.ID: self.process_id,
            C.AUTH: self.process_auth,
            C.CALL: self.process_call,
            C.CALL_16: self.process_call,
            C.EVAL: self.process_eval,
            C.SELECT: self.process_select,
            C.INSERT: self.process_dml,
            C.REPLACE: self.process_dml,
            C.UPDATE: self.process_dml,
            C.DELETE: self.process_dml,
            C.UPSERT: self.process_dml,
            C.WATCH: self.process_watch,
            C.UNWATCH: self.process_unwatch,
            C.WATCH_ONCE: self.process_watch_once,
            C.BEGIN: self.process_begin,
            C.COMMIT: self.process_commit,
            C.ROLLBACK: self.process_rollback,
        }

    def process_error(self: "Tx", msg: IprotoMsg) -> None:
        """A request net could not decode: reply with the error it found (for a
        bad header, with the sync net read before the failure)."""
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return
        self._error(msg, msg.diag)  # type: ignore[arg-type]

    # -- requests ------------------------------------------------------------------

    def process_ping(self: "Tx", msg: IprotoMsg) -> None:
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return
        if not msg.schema_version or self._schema_ok(msg):
            reply_ok(srv, msg, self.schema.version)

    def process_id(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        req = msg.req
        session = msg.srv.session
        session.features = FEATURES.intersection(req.features)
        session.packb = (self.packb_ext if C.FEATURE_ERROR_EXTENSION in session.features
                         else self.packb)
        body = self.packb({C.VERSION: PROTOCOL_VERSION, C.FEATURES: sorted(FEATURES),
                           C.AUTH_TYPE: CHAP_SHA1})
        reply_map(msg.srv, msg, self.schema.version, body)

    def process_auth(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        try:
            msg.srv.session.user = self.authenticate(msg.srv.session, msg.req.user, msg.req.tuple)
        except BoxError as e:
            self._error(msg, e)
            return
        reply_ok(msg.srv, msg, self.schema.version)

    def authenticate(self: "Tx", session: Any, user_name: str, tup: list[Any]) -> Any:
        """chap-sha1, in the order of Tarantool 2.11+ (`authenticate`): the body
        is checked before the user's existence matters, and an unknown user and
        a wrong password get the same error."""
        user = self.users.get(user_name)
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
        self.schema.privileges.check_session(user)
        return user

    def process_eval(self: "Tx", msg: IprotoMsg) -> None:
        if self._accept(msg):
            self._error(msg, BoxError(ER.UNSUPPORTED, "Styx", "EVAL: there is no Lua interpreter"))

    # -- CALL ----------------------------------------------------------------------

    def process_call(self: "Tx", msg: IprotoMsg) -> Any:
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return None
        self.req_counts[msg.type] += 1
        if msg.schema_version and not self._schema_ok(msg):
            return None
        name, args = msg.req
        proc = self.procedures.get(name) or self._builtin(name)
        try:
            # Access first: a user without execute must not learn what exists.
            self.check_execute(srv.session.user, name)
        except BoxError as e:
            self._error(msg, e)
            return None
        if proc is None:
            self._error(msg, BoxError(ER.NO_SUCH_PROC, name))
            return None
        sid = msg.stream_id
        fiber = Fiber(self, srv.session, msg.sync, sid, srv.session.txns.get(sid) if sid else None)
        if proc.is_async:
            self.discard_input(msg)
            return self._call_in_fiber(msg, fiber, proc, args)
        token = current.set(fiber)
        try:
            result = proc.func(*args)
        except Exception as e:  # noqa: BLE001 - the procedure's error goes to the caller
            self._end_call_txn(fiber)
            self._error(msg, error_from_exception(e))
            return None
        finally:
            current.reset(token)
        if hasattr(result, "__await__"):
            # A plain function that returned an awaitable: finish it in a fiber.
            self.discard_input(msg)
            return self._await_in_fiber(msg, fiber, result)
        if self._end_call_txn(fiber):
            self._error(msg, BoxError(ER.FUNCTION_TX_ACTIVE))
            return None
        self._reply_call(msg, result)
        return None

    def _end_call_txn(self: "Tx", fiber: Fiber) -> bool:
        """Outside a stream a procedure must end the transaction it began; one
        left open is rolled back (True: the call fails with error 30)."""
        txn = fiber.txn
        if txn is None or fiber.stream_id:
            return False
        fiber.txn = None
        txn.rollback()
        return True

    def _builtin(self: "Tx", name: str) -> Procedure | None:
        """A Lua API name (`box.space.test:select`) as a procedure taking the
        CALL's arguments as one list and returning Lua's values as a tuple."""
        fn = self.builtins.resolve(name)
        if fn is None:
            return None
        if asyncio.iscoroutinefunction(fn):
            async def acall(*args: Any) -> tuple[Any, ...]:
                return tuple(await fn(list(args)))
            return Procedure(name, acall)
        return Procedure(name, lambda *args: tuple(fn(list(args))))

    def check_execute(self: "Tx", user: Any, name: str) -> None:
        """Execute access: on the function object if `box.schema.func.create`
        made one, else on the universe (Tarantool's rule for global functions)."""
        func = self.schema.functions.get(name)
        self.schema.privileges.check(user, "function", func.id if func else -1, name, X)

    async def _call_in_fiber(self: "Tx", msg: IprotoMsg, fiber: Fiber, proc: Procedure,
                             args: list[Any]) -> None:
        await self._await_in_fiber(msg, fiber, proc.func(*args))

    async def _await_in_fiber(self: "Tx", msg: IprotoMsg, fiber: Fiber, awaitable: Any) -> None:
        current.set(fiber)  # this task's own context
        net = msg.srv.net
        net.in_progress += 1
        net.in_progress_total += 1
        try:
            result = await awaitable
        except Exception as e:  # noqa: BLE001
            self._end_call_txn(fiber)
            self._error(msg, error_from_exception(e))
            return
        finally:
            net.in_progress -= 1
        if self._end_call_txn(fiber):
            self._error(msg, BoxError(ER.FUNCTION_TX_ACTIVE))
            return
        self._reply_call(msg, result)

    def _reply_call(self: "Tx", msg: IprotoMsg, result: Any) -> None:
        values = lua_values(result)
        if msg.type == C.CALL_16:
            values = call16_tuples(values)
        pack = msg.srv.session.packb
        try:
            items = [pack(v) for v in values]
        except Exception as e:  # noqa: BLE001 - e.g. a value msgpack cannot encode
            self._error(msg, BoxError(ER.PROC_LUA, message=f"Failed to encode the result: {e}",
                                      type_name=type(e).__name__))
            return
        reply_data(msg.srv, msg, self.schema.version, items)

    # -- SELECT and DML ---------------------------------------------------------------

    def process_select(self: "Tx", msg: IprotoMsg) -> None:
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return
        self.req_counts[C.SELECT] += 1
        if msg.schema_version and not self._schema_ok(msg):
            return
        req: DmlRequest = msg.req
        user = srv.session.user
        position = None
        try:
            if req.iterator >= 12:  # Tarantool checks this before anything else
                raise BoxError(ER.ILLEGAL_PARAMS, "Invalid iterator type")
            space = self.schema.space(req.space_id, req.space_name)
            self.schema.privileges.check(user, "space", space.id, space.name, R)
            index = space.index(req.index_id, req.index_name)
            key = req.key or []
            if msg.stream_id and type(space) is Space:
                txn = srv.session.txns.get(msg.stream_id)
                if txn is not None:
                    space = txn.view(space)  # type: ignore[assignment]
            if type(space) is Space and req.after_position is None and req.after_tuple is None:
                items = space.select(index, req.iterator, key, req.offset, req.limit)
                if req.fetch_position and items:
                    position = index.position_of(unpack_tuple(items[-1]))
            elif type(space) is SystemSpace:
                items = space.select(user, index, req.iterator, key, req.offset, req.limit)
            else:
                after = None
                if req.after_position is not None:
                    pos = req.after_position
                    if pos:  # an empty position means "from the start"
                        after = index.after_key(pos)
                elif req.after_tuple is not None:
                    after = index.key_of(req.after_tuple)
                items = space.select(index, req.iterator, key, req.offset, req.limit, after)
                if req.fetch_position and items:
                    position = index.position_of(unpack_tuple(items[-1]))
        except BoxError as e:
            self._error(msg, e)
            return
        if position is not None:
            reply_data(srv, msg, self.schema.version, items, position=position)
        else:
            reply_data(srv, msg, self.schema.version, items)

    def process_dml(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        req: DmlRequest = msg.req
        t = msg.type
        try:
            space = self.schema.space(req.space_id, req.space_name)
            self.schema.privileges.check(msg.srv.session.user, "space", space.id, space.name, W)
            space = self.schema.user_space(space.id)
            index = None
            if t == C.UPDATE or t == C.DELETE:
                index = space.index(req.index_id, req.index_name)
            if msg.stream_id:
                txn = msg.srv.session.txns.get(msg.stream_id)
                if txn is not None:
                    space = txn.view(space)  # type: ignore[assignment]
            if t == C.INSERT:
                result = space.insert(req.tuple)
            elif t == C.REPLACE:
                result = space.replace(req.tuple)
            elif t == C.UPSERT:
                space.upsert(req.tuple, req.ops, req.index_base)
                result = None
            else:
                if t == C.DELETE:
                    result = space.delete(index, req.key)
                else:  # UPDATE: its operations travel under TUPLE
                    result = space.update(index, req.key, req.tuple, req.index_base)
        except BoxError as e:
            self._error(msg, e)
            return
        reply_data(msg.srv, msg, self.schema.version, [] if result is None else [result])

    # -- watchers ------------------------------------------------------------------------

    def process_watch(self: "Tx", msg: IprotoMsg) -> None:
        """No reply, ever (the event is the answer)."""
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return
        self.watchers.watch(srv.session, msg.req, msg.sync)
        msg.wpos = srv.end()

    def process_unwatch(self: "Tx", msg: IprotoMsg) -> None:
        srv = msg.srv
        unsent = accept_wpos(srv, msg.wpos)
        if (unsent > self.net_obuf_max or srv.deferring) and self._defer(msg, unsent):
            return
        self.watchers.unwatch(srv.session, msg.req)
        msg.wpos = srv.end()

    def process_watch_once(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        current = self.watchers.get(msg.req)
        items = [] if current is None else [msg.srv.session.packb(current[1])]
        reply_data(msg.srv, msg, self.schema.version, items)

    # -- transactions in streams ------------------------------------------------------

    def process_begin(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        txns = msg.srv.session.txns
        if msg.stream_id in txns:
            self._error(msg, BoxError(ER.ACTIVE_TRANSACTION))
            return
        req = msg.req
        txns[msg.stream_id] = self.new_txn(req.timeout, req.isolation)
        reply_ok(msg.srv, msg, self.schema.version)

    def process_commit(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        txn = msg.srv.session.txns.pop(msg.stream_id, None)
        if txn is not None:  # COMMIT with no transaction is fine (as Tarantool)
            try:
                txn.commit()
            except BoxError as e:
                self._error(msg, e)
                return
        reply_ok(msg.srv, msg, self.schema.version)

    def process_rollback(self: "Tx", msg: IprotoMsg) -> None:
        if not self._accept(msg):
            return
        txn = msg.srv.session.txns.pop(msg.stream_id, None)
        if txn is not None:
            txn.rollback()
        reply_ok(msg.srv, msg, self.schema.version)

    # -- the connection's life --------------------------------------------------------

    def process_connect(self: "Tx", msg: ServiceMsg) -> None:
        """Make the session and write the greeting (`tx_process_connect`)."""
        srv, session = self.new_session(msg)
        srv.obuf[srv.p_obuf].dup(encode_greeting(self.version, self.instance_uuid, session.salt))
        msg.srv = srv
        msg.wpos = srv.end()

    def process_disconnect(self: "Tx", msg: ServiceMsg) -> None:
        srv = msg.srv
        if srv is None:
            return
        srv.alive = False
        srv.kharon.is_push_pending = False  # a returning Kharon must not sail again
        session = srv.session
        if session is not None:
            session.closed = True
            self.watchers.drop_session(session)

    def process_destroy(self: "Tx", msg: ServiceMsg) -> None:
        srv = msg.srv
        if srv is None:
            return
        session = srv.session
        if session is not None:
            # Every request the connection sent has run (destroy waits for
            # that): transactions still open are rolled back now.
            for txn in session.txns.values():
                txn.rollback()
            session.txns.clear()
            self.sessions.pop(session.id, None)
        srv.obuf[0].release()
        srv.obuf[1].release()

    def process_end_push(self: "Tx", kharon: Any) -> None:
        end_push(kharon)
