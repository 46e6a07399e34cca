"""TX's side of the WAL: each request's changes become one journal entry,
and its reply waits until they are written (Tarantool's `txn_commit`).

Box tells every change to a user space (`ChangeLog.record`: the space, the
old tuple, the new one). While a WAL is configured, `Committer.record`
keeps them where they belong:
- a procedure's in its fiber (`Fiber.changes`), whatever it awaits between;
- an IPROTO DML's or a stream COMMIT's in the list its handler opened
  (`begin`/`end`: handlers never yield, so nothing else runs in between);
- anything else (the app's `init()`, a task a procedure left running) in
  `loose`, submitted at the end of the loop pass with nobody waiting.
A handler with changes `submit`s them with its reply as the callback and
returns `cbus.PARK`: the message goes back to net (`cbus.forward`) once the
WAL answered, so a client is told "done" only of what is written. Reads
and other requests go on meanwhile; they may see the change before it is
written, as in Tarantool 2.6 (no MVCC: read-committed-to-memory).

What a row says. An IPROTO UPDATE or UPSERT is logged as the request, as
Tarantool logs it (`request_rows`). Anything else is logged as what
changed: a new tuple is a REPLACE of its stored bytes (verbatim), a removed
one a DELETE by its primary key, a truncate a REPLACE into `_truncate`
(Tarantool logs an INSERT as an INSERT, and a procedure's UPDATE as an
UPDATE; replaying either gives the same data, and Tarantool recovers from
these rows). Temporary spaces are not logged; rows
of local spaces carry GROUP_ID 1.

A failed write (the WAL's batch failed): the entry's changes are undone,
newest first, and the request gets error 40, ER_WAL_IO; the entries after
it were undone before it (wal/journal.py, cascading rollback) and get 134.

DDL, users, grants and functions are logged as Tarantool logs them: as
rows of the system spaces (`_schema`, `_space`, `_index`, `_func`, `_user`,
`_priv`). The schema tells every such change (`Schema.on_ddl`); the
committer then compares what the system spaces show with what they showed
before, and logs the difference in place, among the data changes: rows
that went as DELETEs (`_priv` before `_user`, `_index` before `_space`),
new or changed ones as REPLACEs (`_space` before `_index`, `_user` before
`_priv`). A DDL whose write fails is undone by applying the rows it
replaced (box/apply.py), newest first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..box.apply import apply_row
from ..box.schema import LOGGED_SYSTEM_SPACES, Schema, system_rows
from ..box.space import DROPPED, TRUNCATED, Space, unpack_tuple
from ..protocol import constants as C
from ..protocol.codec import new_packer
from ..wal import Journal, JournalEntry, RedoRow
from ..xlog import encode_dml_body
from .fiber import current

log = logging.getLogger("styx.tx")

__all__ = ["Committer", "Change"]

Change = tuple[Any, Any, Any]  # (space, old, new) of data; (None, row, undo) of a system-space row
REPLACE, UPDATE, DELETE, UPSERT = 3, 4, 5, 9
TRUNCATE_SPACE_ID = 330  # _truncate: [space id, count]


class Committer:
    def __init__(self, journal: Journal, defer: Callable[[Callable[[], Any]], None], schema: Schema) -> None:
        self.journal = journal
        self.defer = defer  # the loop's Feed: end of this pass
        self.schema = schema
        self.open: list[Change] | None = None  # the running handler's
        self.loose: list[Change] = []
        self.failed = 0
        self.system_rows = system_rows(schema)  # as the WAL knows them
        self._replace_prefix: dict[int, bytes] = {}
        schema.txns.in_flight = lambda: [e.data[0] for e in journal.pending if e.data is not None]
        self._packb = new_packer().pack  # keys, ops and system rows, with Styx's extensions (uuid, decimal)

    # -- recording (box calls this on every change) -----------------------------

    def record(self, space: Space, old: bytes | None, new: bytes | None) -> None:
        if space.flags.get("temporary"):
            return  # not logged, as Tarantool
        if self.open is not None and current.get() is None:  # an IPROTO DML's: the common case, inline
            self.open.append((space, old, new))
        else:
            self._changes().append((space, old, new))

    def record_ddl(self) -> None:
        """The system spaces changed: log their rows' difference."""
        before, after = self.system_rows, system_rows(self.schema)
        self.system_rows = after
        changes = self._changes()
        packb = self._packb
        # Each: (None, the row to log, what undoes it: the space, the key, the row before).
        for sid in reversed(LOGGED_SYSTEM_SPACES):
            for key in before[sid].keys() - after[sid].keys():
                row = (DELETE, encode_dml_body(sid, key=packb(list(key))))
                changes.append((None, row, (sid, key, before[sid][key])))
        for sid in LOGGED_SYSTEM_SPACES:
            old_rows = before[sid]
            for key, new in after[sid].items():
                prev = old_rows.get(key)
                if prev != new:
                    changes.append((None, (REPLACE, encode_dml_body(sid, tuple=packb(new))), (sid, key, prev)))

    def _changes(self) -> list[Change]:
        """Where a change made now belongs: the running fiber's, the running
        handler's, or the loose ones."""
        f = current.get()
        changes = f.changes if f is not None and f.changes is not None else self.open
        if changes is None:
            changes = self.loose
            if not changes:
                self.defer(self._flush_loose)
        return changes

    def begin(self) -> None:
        self.open = []

    def end(self) -> list[Change]:
        changes, self.open = self.open or [], None
        return changes

    # -- submitting ------------------------------------------------------------------

    def submit(self, changes: list[Change], on_done: Callable[[BaseException | None], None],
               rows: list[RedoRow] | None = None) -> None:
        """Journal `changes` as one transaction (logged as `rows` if given);
        `on_done(error)` once written (error None) or failed (the changes
        are undone first)."""
        self.journal.submit(JournalEntry(rows or self.rows(changes), self._done, (changes, on_done)))
        txns = self.schema.txns
        if txns.confirmed_readers:
            txns.prepared(changes)  # until the WAL is done, some transactions see what was before

    def request_rows(self, type_: int, req: Any, changes: list[Change]) -> list[RedoRow] | None:
        """An IPROTO UPDATE or UPSERT as Tarantool logs it: the request, ops
        under TUPLE (UPDATE) or OPS (UPSERT), with its INDEX_BASE. None (log
        what changed) unless it changed exactly one tuple of one space.

        Only for requests that change memory and submit in one step: a
        checkpoint's copy then never holds a change whose row comes after it,
        which replaying an UPDATE twice could not bear."""
        if len(changes) != 1 or changes[0][0] is None or changes[0][1] in (TRUNCATED, DROPPED):
            return None
        space = changes[0][0]
        group = 1 if space.flags.get("group_id") == 1 else 0
        packb = self._packb
        if type_ == UPDATE:
            iid = space.index(req.index_id, req.index_name).iid
            body = encode_dml_body(space.id, index_id=iid, index_base=req.index_base, key=packb(req.key),
                                   tuple=packb(req.tuple))
        else:
            body = encode_dml_body(space.id, index_base=req.index_base, ops=packb(req.ops), tuple=packb(req.tuple))
        return [(type_, body, group)]

    def _done(self, entry: JournalEntry) -> None:
        changes, on_done = entry.data
        if entry.error is not None:
            self.failed += 1
            self._undo(changes)
        if self.schema.txns.unconfirmed:
            self.schema.txns.confirmed(changes, failed=entry.error is not None)
        on_done(entry.error)

    def _flush_loose(self) -> None:
        changes, self.loose = self.loose, []
        if changes:
            self.submit(changes, _log_loose_failure)

    def rows(self, changes: list[Change]) -> list[RedoRow]:
        rows: list[RedoRow] = []
        for space, old, new in changes:
            if space is None:  # a system-space row, made by record_ddl
                rows.append((old[0], old[1], 0))
                continue
            if old is DROPPED:
                continue  # the drop is its system rows; the tuples are for an undo
            if old is TRUNCATED:  # logged as its _truncate row, as Tarantool logs it
                row = [space.id, space.truncations]
                self.system_rows[TRUNCATE_SPACE_ID][(space.id,)] = row
                rows.append((REPLACE, encode_dml_body(TRUNCATE_SPACE_ID, tuple=self._packb(row)), 0))
                continue
            group = 1 if space.flags.get("group_id") == 1 else 0  # a local space
            if new is not None:
                prefix = self._replace_prefix.get(space.id)
                if prefix is None:  # the body up to the tuple: the same for every REPLACE into the space
                    prefix = self._replace_prefix[space.id] = encode_dml_body(space.id, tuple=b"")
                rows.append((REPLACE, prefix + new, group))
            else:
                key = _pk_key(space, old)
                rows.append((DELETE, encode_dml_body(space.id, key=self._packb(key)), group))
        return rows

    def _undo(self, changes: list[Change]) -> None:
        schema = self.schema
        ddl = False
        for space, old, new in reversed(changes):
            if space is None:  # a system row: the row before comes back (the schema change is undone)
                ddl = True
                sid, key, prev = new
                on_ddl, schema.on_ddl = schema.on_ddl, None
                try:
                    if prev is None:
                        apply_row(schema, DELETE, {C.SPACE_ID: sid, C.KEY: list(key)})
                    else:
                        apply_row(schema, REPLACE, {C.SPACE_ID: sid, C.TUPLE: prev})
                except Exception:  # noqa: BLE001 - one change that cannot go back must not stop the others
                    log.exception("WAL write failed: a schema change could not be undone")
                finally:
                    schema.on_ddl = on_ddl
                continue
            record, space.changes.record = space.changes.record, None
            try:
                if old is TRUNCATED or old is DROPPED:  # the tuples come back (into the space the undo remade)
                    if old is TRUNCATED:
                        space.truncations -= 1
                        ddl = True  # and its _truncate row
                    target = schema.spaces.get(space.id)
                    if isinstance(target, Space):
                        for data in new:
                            target.replace(unpack_tuple(data))
                else:
                    space.revert(old, new)
            except Exception:  # noqa: BLE001 - one change that cannot go back must not stop the others
                log.exception("WAL write failed: a change to space '%s' could not be undone", space.name)
            finally:
                space.changes.record = record
        if ddl:
            self.system_rows = system_rows(schema)  # the WAL knows the schema as it is again


def _pk_key(space: Space, data: bytes) -> list[Any]:
    fields = unpack_tuple(data)
    return [fields[p.fieldno] for p in space.pk.parts]


def _log_loose_failure(error: BaseException | None) -> None:
    if error is not None:
        log.error("WAL write failed: changes made outside a request were undone (%s)", error)
