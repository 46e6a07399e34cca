"""What the WAL tests share: the app that writes in every way
(tests/apps/wal_app.py), and a server with its WAL on in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styx import Config, Server

WAL_APP = str(Path(__file__).parent / "apps" / "wal_app.py")

__all__ = ["WAL_APP", "start_wal_server"]


def start_wal_server(work_dir: Path, **options: Any) -> Server:
    """A started server with `wal_mode write` in `work_dir` (the WAL app unless `app` says)."""
    options.setdefault("app", WAL_APP)
    return Server(Config(listen="127.0.0.1:0", wal_mode="write", work_dir=str(work_dir), **options)).start()
