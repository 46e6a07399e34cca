"""The pytest plugin (styx/pytest_plugin.py), used as a user would: inner
test files run by pytester, talking to their servers with tarantool-python."""

from __future__ import annotations

import sys
import time
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

APP = '''
from styx import box

def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    s = box.schema.space.create("kv", format=[("k", "string"), ("v", "any")], if_not_exists=True)
    s.create_index("pk", parts=["k"], if_not_exists=True)

def echo(*args):
    return args

def whoami():
    return "app"
'''

OTHER_APP = '''
from styx import box

def init():
    box.schema.user.grant("guest", "execute", "universe", if_not_exists=True)

def whoami():
    return "other"
'''


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the inner tests with the plugin: installed, its entry point loads
    it; else (this checkout not reinstalled) -p loads it. Both at once is
    pytest's 'Plugin already registered' error."""
    installed = any(ep.value == "styx.pytest_plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "styx.pytest_plugin"]
    return pytester.runpytest_inprocess(*plugin, "-p", "no:cacheprovider", *args)


@pytest.fixture
def apps(pytester: pytest.Pytester) -> None:
    pytester.makefile(".py", app=APP)
    pytester.mkdir("apps")
    (pytester.path / "apps" / "other.py").write_text(OTHER_APP)


def test_styx_server_with_a_marker(pytester: pytest.Pytester, apps: None) -> None:
    pytester.makepyfile(test_inner='''
        import socket
        import pytest
        import tarantool
        from styx import Server

        ports = []

        @pytest.mark.styx_app("app.py")
        def test_call(styx_server):
            assert isinstance(styx_server, Server)
            assert styx_server.host == "127.0.0.1" and styx_server.port > 0
            assert styx_server.address == (styx_server.host, styx_server.port)
            ports.append(styx_server.port)
            conn = tarantool.Connection(styx_server.host, styx_server.port)
            try:
                assert conn.call("echo", 1, "a").data == [1, "a"]
                conn.insert("kv", ("a", 1))
                assert conn.select("kv", "a").data == [["a", 1]]
            finally:
                conn.close()

        @pytest.mark.styx_app("app.py")
        def test_fresh_box_each_test(styx_server):
            assert styx_server.port != ports[0]
            conn = tarantool.Connection(styx_server.host, styx_server.port)
            try:
                assert conn.select("kv").data == []
            finally:
                conn.close()

        def test_stopped_at_teardown():
            for port in ports:
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=1)
    ''')
    t0 = time.monotonic()
    result = run(pytester)
    result.assert_outcomes(passed=3)
    assert time.monotonic() - t0 < 20


def test_module_server_and_module_marker(pytester: pytest.Pytester, apps: None) -> None:
    pytester.makepyfile(test_inner='''
        import pytest
        import tarantool

        pytestmark = pytest.mark.styx_app("app.py", net_msg_max=100)
        seen = []

        def test_write(styx_server_module):
            seen.append(styx_server_module.port)
            assert styx_server_module.config.net_msg_max == 100
            conn = tarantool.Connection(styx_server_module.host, styx_server_module.port)
            conn.insert("kv", ("k", "v"))
            conn.close()

        def test_same_server_sees_it(styx_server_module):
            assert styx_server_module.port == seen[0]
            conn = tarantool.Connection(styx_server_module.host, styx_server_module.port)
            assert conn.select("kv", "k").data == [["k", "v"]]
            conn.close()

        @pytest.mark.styx_app("apps/other.py")
        def test_marker_on_the_test_wins(styx_server):
            conn = tarantool.Connection(styx_server.host, styx_server.port)
            assert conn.call("whoami").data == ["other"]
            conn.close()
    ''')
    run(pytester).assert_outcomes(passed=3)


def test_ini_option_fixture_override_and_factory(pytester: pytest.Pytester, apps: None) -> None:
    pytester.makeini('''
        [pytest]
        styx_app = app.py
    ''')
    pytester.makepyfile(test_ini='''
        import tarantool

        def test_ini_app(styx_server):
            conn = tarantool.Connection(styx_server.host, styx_server.port)
            assert conn.call("whoami").data == ["app"]
            conn.close()
    ''', test_override='''
        import pytest
        import tarantool

        @pytest.fixture(scope="module")
        def styx_app():
            from styx import box

            def init():
                box.schema.user.grant("guest", "execute", "universe")

            async def whoami():
                return "mapping"
            return {"init": init, "whoami": whoami}

        def test_overridden(styx_server):
            conn = tarantool.Connection(styx_server.host, styx_server.port)
            assert conn.call("whoami").data == ["mapping"]
            conn.close()

        def test_factory(styx_server_factory, tmp_path):
            a = styx_server_factory("apps/other.py")
            b = styx_server_factory(iproto_threads=1)
            assert a.port != b.port and b.config.iproto_threads == 1
            conn = tarantool.Connection(a.host, a.port)
            assert conn.call("whoami").data == ["other"]
            conn.close()
    ''')
    run(pytester, "--rootdir", str(pytester.path)).assert_outcomes(passed=3)


def test_entry_point_declared() -> None:
    """pyproject.toml registers the plugin with pytest (pytest11); it takes
    effect when the package is (re)installed."""
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"styx": "styx.pytest_plugin"}
    assert "styx.pytest_plugin" in sys.modules or __import__("styx.pytest_plugin")


def test_repo_fixtures_do_not_clash() -> None:
    import styx.pytest_plugin as plugin
    from tests import conftest

    ours = {name for name in vars(plugin) if name.startswith("styx_")}
    assert ours == {"styx_app", "styx_server", "styx_server_factory", "styx_server_module"}
    assert not ours & set(vars(conftest))
