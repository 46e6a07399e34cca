"""TXN_ISOLATION with a write still on its way to the disk (Tarantool's
"prepared" change): read-committed sees it; read-confirmed does not; the
default, best-effort, does not while the transaction has only read (and may
not write on what it read past it), and does once it has written. With the
write on disk, every level sees it. Outside transactions a read sees it, as
in Tarantool 2.6."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import asynctnt
import pytest
from asynctnt.api import Isolation
from asynctnt.exceptions import TarantoolDatabaseError

from styx.xlog import XlogWriter
from tests.walkit import WAL_APP


def test_levels_and_a_write_not_yet_on_disk(make_server: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real = XlogWriter.write_block
    gate = threading.Event()
    gate.set()

    def slow_disk(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        gate.wait(10)
        return real(self, payload, compress)

    server = make_server(app=WAL_APP, wal_mode="write", work_dir=str(tmp_path))
    monkeypatch.setattr(XlogWriter, "write_block", slow_disk)

    async def val(stream: Any, k: int) -> Any:
        rows = (await stream.select("kv", [k])).body
        return rows[0][1] if rows else None

    async def go() -> None:
        writer = await asynctnt.connect(host="127.0.0.1", port=server.port)
        reader = await asynctnt.connect(host="127.0.0.1", port=server.port)
        await writer.replace("kv", [1, "old"])
        levels = {}
        for name, level in (("rc", Isolation.READ_COMMITTED), ("rconf", Isolation.READ_CONFIRMED),
                            ("be", Isolation.BEST_EFFORT), ("be_rw", Isolation.BEST_EFFORT)):
            levels[name] = reader.stream()
            await levels[name].begin(isolation=level)
        await levels["be_rw"].replace("kv", [50, "its own"])  # it has written
        gate.clear()
        write = asyncio.ensure_future(writer.replace("kv", [1, "new"]))
        insert = asyncio.ensure_future(writer.insert("kv", [2, "inserted"]))
        await asyncio.sleep(0.3)
        assert not write.done() and not insert.done()  # on its way to the disk
        assert (await reader.select("kv", [1])).body[0][1] == "new"  # outside a transaction: seen
        assert await val(levels["rc"], 1) == "new" and await val(levels["rc"], 2) == "inserted"
        assert await val(levels["rconf"], 1) == "old" and await val(levels["rconf"], 2) is None
        assert await val(levels["be"], 1) == "old" and await val(levels["be"], 2) is None
        assert await val(levels["be_rw"], 1) == "new"
        # What best-effort read past may not be written on: it is aborted.
        with pytest.raises(TarantoolDatabaseError) as e:
            await levels["be"].replace("kv", [3, "based on old"])
        assert e.value.code == 97
        await levels["be"].rollback()
        gate.set()
        assert (await write).body[0][1] == "new" and (await insert).body[0][1] == "inserted"
        # On disk now: confirmed. What read the old version keeps seeing it
        # (a read view: its reads stay repeatable); a new one sees the new.
        assert await val(levels["rconf"], 1) == "old"
        fresh = reader.stream()
        await fresh.begin(isolation=Isolation.READ_CONFIRMED)
        assert await val(fresh, 1) == "new" and await val(fresh, 2) == "inserted"
        await fresh.commit()
        for name in ("rc", "rconf", "be_rw"):
            await levels[name].commit()
        await writer.disconnect()
        await reader.disconnect()

    asyncio.run(go())
    assert server.tx is not None
    txns = server.tx.schema.txns
    assert not txns.unconfirmed and not txns.confirmed_readers  # nothing is kept once they end
