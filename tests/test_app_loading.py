"""Apps as people write them: a file app imports from its own folder,
`__all__` decides what is exported, the exports are logged at start, a
module name works as well as a path, a plain def that blocks the loop is
named in a warning, and box refuses another thread."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import tarantool

from styx.tx.app import AppError

APPS = Path(__file__).parent / "apps"


def test_a_file_app_imports_its_folder_and_exports_its_all(make_server: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="styx"):
        server = make_server(app=str(APPS / "pkgapp" / "service.py"))
    c = tarantool.Connection("127.0.0.1", server.port)
    try:
        assert c.call("twice", 21).data == [42]     # `from helpers import double`, from its folder
        assert c.call("double", 4).data == [8]      # imported, and exported because __all__ says so
        for name in ("not_exported", "init"):
            with pytest.raises(tarantool.error.DatabaseError) as e:
                c.call(name)
            assert e.value.args[0] == 33  # ER_NO_SUCH_PROC
    finally:
        c.close()
    assert "4 procedure(s): block, box_in_thread, double, twice" in caplog.text


def test_a_module_name_is_an_app(make_server: Any) -> None:
    server = make_server(app="tests.apps.box_extras_app")
    c = tarantool.Connection("127.0.0.1", server.port)
    try:
        assert c.call("constants").data == [[0, 1, 2, 3, 4, 5, 6], True]
    finally:
        c.close()


def test_no_such_app(make_server: Any) -> None:
    with pytest.raises(AppError, match="no_such.module: no such file, nor an importable module"):
        make_server(app="no_such.module")
    with pytest.raises(AppError, match="no such file"):
        make_server(app=str(APPS / "missing.py"))


def test_a_blocking_def_is_named_and_box_refuses_other_threads(make_server: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    server = make_server(app=str(APPS / "pkgapp" / "service.py"))
    c = tarantool.Connection("127.0.0.1", server.port)
    try:
        with caplog.at_level(logging.WARNING, logger="styx"):
            assert c.call("block", 0.6).data == ["done"]
            assert c.call("block", 0.6).data == ["done"]  # the same warning, not again within 10 s
        warnings = [r.getMessage() for r in caplog.records if "held the event loop" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith("procedure block held the event loop for 0.")
        assert c.call("box_in_thread").data == [
            "styx.box is used from another thread: box belongs to the server's TX thread; do the "
            "blocking work in the thread, and use box after the await, in the procedure"]
    finally:
        c.close()
