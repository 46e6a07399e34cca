"""Sessions: who is on the other end of a connection, as TX sees it.

One per connection, made in the connect route (`Tx.process_connect`) and
deleted in the destroy route. It holds the greeting salt (chap-sha1 uses its
first 20 bytes), the authenticated user (everyone starts as `guest`), the
IPROTO_ID features the client and Styx both have, the open transactions of
its streams, and the connection's output state (`tx_conn`: obufs and the Kharon).
"""

from __future__ import annotations

import os
from typing import Any

from ..iproto_msg import TxConn
from ..protocol.constants import SALT_SIZE

__all__ = ["Session"]


class Session:
    __slots__ = ("id", "tx_conn", "salt", "user", "features", "packb", "peer", "closed", "txns",
                 "watchers")

    def __init__(self, session_id: int, tx_conn: TxConn, user: Any, peer: Any, packb: Any) -> None:
        self.id = session_id
        self.tx_conn = tx_conn
        self.salt = os.urandom(SALT_SIZE)
        self.user = user
        self.features: frozenset[int] = frozenset()
        self.packb = packb  # encodes values this client gets (error extension or not)
        self.peer = peer
        self.closed = False
        self.txns: dict[int, Any] = {}  # stream id -> its open transaction
        self.watchers: dict[str, Any] = {}  # key -> its Watcher

    def __repr__(self) -> str:
        return f"<Session {self.id} {self.user.name} {self.peer}>"
