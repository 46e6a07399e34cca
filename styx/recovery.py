"""Recovery on start: the newest snapshot, then the xlogs after it, into
box (Tarantool's `recovery.cc`).

The snapshot (if any) is loaded first; its vclock is where the xlogs take
over (xlogs entirely before it are not read).

Files are taken by name (their vclock's signature); each must be an XLOG
of this instance (the first one's `Instance:` becomes the instance's UUID,
unless the configuration names one, which must match). Every block's
checksum is checked. Each row whose LSN is past the vclock so far is
applied (box/apply.py) and moves the vclock. As in Tarantool 2.6, rows are
applied one by one, not grouped by transaction.

Damage: a block cut short at the end of a file (a crash mid-write) is
dropped with a warning: its rows were never acknowledged. Anything else (a
wrong checksum, bytes that are not blocks, a row box refuses) stops the
start with the file and the offset, unless `force` (Tarantool's
`force_recovery`), which skips the damage and says what it skipped.

Progress is logged every 100,000 rows. The result is the vclock the WAL
goes on from, and the vclock of the last file (the next one's PrevVClock).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from .box.apply import apply_row
from .box.schema import Schema
from .protocol.errors import BoxError
from .xlog import Row, XlogCorrupted, XlogError, XlogReader, files, name_signature, signature

log = logging.getLogger("styx.recovery")

__all__ = ["recover", "Recovered", "RecoveryError", "instance_of"]

PROGRESS_EVERY = 100_000


class RecoveryError(Exception):
    """The data directory cannot be recovered (without force)."""


@dataclass
class Recovered:
    vclock: dict[int, int] = field(default_factory=dict)
    instance_uuid: str | None = None
    last_vclock: dict[int, int] | None = None  # the last xlog's header vclock
    rows: int = 0
    files: int = 0
    empty_last: str | None = None  # the last xlog, if it holds no row (the next one takes its name)


def instance_of(wal_dir: str, memtx_dir: str | None = None) -> str | None:
    """The instance UUID the newest snapshot, else the first readable xlog,
    names; None for a new instance."""
    memtx_dir = memtx_dir or wal_dir
    for path in files(memtx_dir, "snap")[::-1] + files(wal_dir, "xlog"):
        try:
            with XlogReader.open(path) as r:
                return r.meta.instance_uuid
        except XlogError:
            continue
    return None


def recover(schema: Schema, wal_dir: str, memtx_dir: str | None = None, *, instance_uuid: str | None = None,
            force: bool = False) -> Recovered:
    out = Recovered(instance_uuid=instance_uuid)
    memtx_dir = memtx_dir or wal_dir
    _load_snapshot(schema, memtx_dir, out, force)
    paths = files(wal_dir, "xlog")
    for n, path in enumerate(paths):
        if n + 1 < len(paths) and name_signature(paths[n + 1]) <= sum(out.vclock.values()):
            continue  # every row of it is in the snapshot
        try:
            reader = XlogReader.open(path, force=force)
        except XlogError as e:
            if force:
                log.error("skipping %s: %s", path, e)
                continue
            raise RecoveryError(str(e)) from e
        with reader:
            meta = reader.meta
            problem = None
            if meta.filetype != "XLOG":
                problem = f"{path}: a {meta.filetype} file among the xlogs"
            elif out.instance_uuid is not None and meta.instance_uuid != out.instance_uuid:
                problem = f"{path}: instance {meta.instance_uuid}, not {out.instance_uuid}"
            elif name_signature(path) != signature(meta.vclock):
                problem = f"{path}: the name does not match its vclock {meta.vclock}"
            if problem is not None:
                if not force:
                    raise RecoveryError(problem)
                log.error("skipping %s", problem)
                continue
            out.instance_uuid = meta.instance_uuid
            out.last_vclock = dict(meta.vclock)
            out.files += 1
            rows_here = _replay(schema, reader, out, force)
            if rows_here == 0 and n == len(paths) - 1:
                # An empty last xlog (a start with no write): the next one takes
                # its name, and its place in the chain.
                out.empty_last = path
                out.last_vclock = meta.prev_vclock
            if reader.torn is not None:
                log.warning("%s: a block cut short at offset %d (a crash mid-write) is dropped", path,
                            reader.torn)
            elif not reader.eof:
                log.warning("%s was not closed (no EOF marker): recovered to its last block", path)
            if reader.skipped:
                log.error("%s: %d damaged bytes skipped (force recovery)", path, reader.skipped)
    if out.rows:
        log.info("recovered %d rows from %d xlog(s), vclock %s", out.rows, out.files, out.vclock)
    return out


def _load_snapshot(schema: Schema, memtx_dir: str, out: Recovered, force: bool) -> None:
    """The newest snapshot, if any: its rows are INSERTs, system spaces first."""
    for stale in files(memtx_dir, "snap.inprogress"):
        os.unlink(stale)  # a checkpoint a stop cut short
    snaps = files(memtx_dir, "snap")
    if not snaps:
        return
    path = snaps[-1]
    try:
        reader = XlogReader.open(path, force=force)
    except XlogError as e:
        raise RecoveryError(str(e)) from e
    with reader:
        meta = reader.meta
        if meta.filetype != "SNAP":
            raise RecoveryError(f"{path}: a {meta.filetype} file, not a snapshot")
        if out.instance_uuid is not None and meta.instance_uuid != out.instance_uuid:
            raise RecoveryError(f"{path}: instance {meta.instance_uuid}, not {out.instance_uuid}")
        out.instance_uuid = meta.instance_uuid
        n = 0
        try:
            for row in reader.rows():
                _apply(schema, row, f"{path}: snapshot row {n}", force)
                n += 1
                if n % PROGRESS_EVERY == 0:
                    log.info("recovery: %d snapshot rows so far", n)
        except XlogCorrupted as e:
            raise RecoveryError(f"{e}; start with --force-recovery to skip the damage") from e
        if not reader.eof:
            if not force:
                raise RecoveryError(f"{path}: the snapshot has no EOF marker (it is incomplete)")
            log.error("%s has no EOF marker: loaded what it holds (force recovery)", path)
    out.vclock = dict(meta.vclock)
    out.rows += n
    log.info("recovered snapshot %s: %d rows, vclock %s", os.path.basename(path), n, meta.vclock)


def _apply(schema: Schema, row: Row, where: str, force: bool) -> None:
    try:
        apply_row(schema, row.type, row.body if isinstance(row.body, dict) else {})
    except BoxError as e:
        what = f"{where} cannot be applied: {e}"
        if not force:
            raise RecoveryError(what) from e
        log.error("skipped %s", what)


def _replay(schema: Schema, reader: XlogReader, out: Recovered, force: bool) -> int:
    applied = 0
    vclock = out.vclock
    try:
        for row in reader.rows():
            rid = row.replica_id
            if row.lsn <= vclock.get(rid, 0):
                continue  # already in
            _apply(schema, row, f"{reader.path}: the row of LSN {row.lsn} (type {row.type})", force)
            vclock[rid] = row.lsn
            applied += 1
            out.rows += 1
            if out.rows % PROGRESS_EVERY == 0:
                log.info("recovery: %d rows so far (%s)", out.rows, reader.path)
    except XlogCorrupted as e:
        raise RecoveryError(f"{e}; start with --force-recovery to skip the damage") from e
    return applied
