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
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..protocol.errors import ER, MESSAGES, BoxError
from . import fiber as fiber_mod

if TYPE_CHECKING:
    from .thread import Tx

__all__ = ["Box", "BoxProxy"]


def _fiber() -> fiber_mod.Fiber:
    f = fiber_mod.current.get()
    if f is None:
        raise RuntimeError("styx.box is only available inside a Styx server (app functions, init)")
    return f


class SessionApi:
    """`box.session`: the session of the request being served."""

    def __init__(self, tx: "Tx") -> None:
        self._tx = tx

    def _session(self) -> Any:
        session = _fiber().session
        if session is None:
            raise BoxError(ER.UNSUPPORTED, "box.session", "this call outside of a request")
        return session

    def id(self) -> int:
        session = _fiber().session
        return 0 if session is None else session.id

    def user(self) -> str:
        session = _fiber().session
        return "admin" if session is None else session.user.name

    def uid(self) -> int:
        session = _fiber().session
        return 1 if session is None else session.user.uid

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
        self._tx.push_chunk(f.session, f.sync, value)
        return True


class UserApi:
    """`box.schema.user`."""

    def __init__(self, tx: "Tx") -> None:
        self._users = tx.users

    def create(self, name: str, *, password: str | None = None, if_not_exists: bool = False) -> None:
        self._users.create(name, password, if_not_exists=if_not_exists)

    def drop(self, name: str, *, if_exists: bool = False) -> None:
        self._users.drop(name, if_exists=if_exists)

    def passwd(self, name: str, password: str | None = None) -> None:
        if password is None:  # box.schema.user.passwd(password): the session's user
            name, password = box_session_user(), name
        self._users.passwd(name, password)

    def exists(self, name: str) -> bool:
        user = self._users.get(name)
        return user is not None and user.type == "user"


def box_session_user() -> str:
    session = _fiber().session
    return "admin" if session is None else session.user.name


class SchemaApi:
    """`box.schema`."""

    def __init__(self, tx: "Tx") -> None:
        self.user = UserApi(tx)


class StatApi:
    """`box.stat`."""

    def __init__(self, tx: "Tx") -> None:
        self._tx = tx

    async def net(self) -> dict[str, Any]:
        """Totals over all iproto threads, plus `threads`: each thread's own."""
        return await self._tx.net_stats()


class ErrorApi:
    """`box.error`: `raise box.error(box.error.NO_SUCH_USER, "bob")`, or
    `raise box.error(code=1000, reason="...", type="MyError")`."""

    def __init__(self) -> None:
        for code, (name, _fmt) in MESSAGES.items():
            setattr(self, name[3:], code)

    def __call__(self, code: int = ER.UNKNOWN, *args: Any, reason: str | None = None,
                 type: str = "ClientError", **fields: Any) -> BoxError:
        caller = sys._getframe(1)
        return BoxError(code, *args, message=reason, type_name=type, fields=fields or None,
                        file=caller.f_code.co_filename, line=caller.f_lineno)

    new = __call__


class Box:
    """One server's box."""

    def __init__(self, tx: "Tx") -> None:
        self._tx = tx
        self.session = SessionApi(tx)
        self.schema = SchemaApi(tx)
        self.stat = StatApi(tx)
        self.error = ErrorApi()

    def cfg(self, **options: Any) -> None:
        """Change dynamic options at runtime: `box.cfg(net_msg_max=1024)`.

        The new value reaches every iproto thread through a cbus message.
        """
        self._tx.reconfigure(options)

    @property
    def schema_version(self) -> int:
        return self._tx.schema.version


class BoxProxy:
    """`styx.box`: the current server's box."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_fiber().tx.box, name)

    def __repr__(self) -> str:
        f = fiber_mod.current.get()
        return "<styx.box (no server)>" if f is None else f"<styx.box of {f.tx!r}>"
