"""Why a peer-suite test fails when the cause is not Styx: (suite, test id,
message) -> a cause, or None (unclassified: treat as a Styx bug until shown
otherwise). Rules match the failure message first, then test ids, in order."""

from __future__ import annotations

import re

EVAL = "needs Lua EVAL"
CONSOLE = "needs Tarantool's Lua admin console"
SQL = "needs SQL (EXECUTE/PREPARE)"
REPLICATION = "needs replication (box.cfg replication / loading state)"
DOCKER = "test restarts tarantool in docker"
DATETIME = "needs datetime/interval (MP_EXT 4, 6)"
TUPLE_EXT = "needs tuple extensions (IPROTO features 7-9 of Tarantool 3.0)"
AUTH_MSG = "expects the pre-2.11 auth error text (Styx answers as 2.11+/3.0)"
NETWORK = "network environment (expects ETIMEDOUT connecting to 192.0.0.0)"
STARTS_TARANTOOL = "test starts its own tarantool binary or helper process"
SSL = "needs SSL/TLS transport (Tarantool EE)"
CRUD = "needs the crud module (Lua, vshard)"
LUA_TRIGGER = "needs Lua space triggers (on_replace)"
READ_ONLY = "needs box.cfg{read_only} (Styx has no read-only mode; pool RO/RW routing)"
FOREIGN_KEY = "needs tuple foreign keys (3.0 constraints: Styx keeps the format option, does not enforce it)"
SOCKET = "needs Lua sockets and box.session.new(fd) (the test builds the connection in Lua)"
PERSISTENCE = "test restarts the server and expects its users/data back (Styx keeps nothing across restarts)"
FLAKY_WARNINGS = ("flaky: counts every warning raised during one ping (1 expected); passes alone "
                  "and in most full runs")
PACKAGE = "environment: the installed tarantool package is a release, the test wants a source checkout"

# --lua (the suites' own Lua on Styx): causes of what Tarantool 2.6 passes and Styx fails.
VARBINARY = ("Styx greets as 3.0.0 but its Lua hands MP_BIN to Lua as a string, as 2.6 does (3.0 keeps "
             "varbinary): the test expects bytes back")
SHUTDOWN = "Styx's SIGTERM lets a running request end (graceful shutdown): its pushes go on"
PUSH_IN_TRIGGER = ("Styx bug: box.session.push in an on_replace trigger fired by an IPROTO DML finds no "
                   "request fiber (\"styx.box is only available inside a Styx server\")")
CALL_ORDER = ("CALL of box.info finds Styx's builtin before a Lua global that replaced it "
              "(the test assigns box.info in Lua)")

# (suite or "*", regex on the message, regex on the test id, cause)
RULES: list[tuple[str, str | None, str | None, str]] = [
    # Since Styx has Lua (these come first: the EVAL rules below predate it)
    ("asynctnt", None, r"complex_param|test__read_buffer_reallocate_ok", VARBINARY),
    ("asynctnt", None, r"test__push_read_all_error", SHUTDOWN),
    ("tarantool-python", r"styx\.box is only available inside", r"test_push\.", PUSH_IN_TRIGGER),
    ("tarantool-python", None, r"test_pool\.TestSuitePool::test_17_instance_bootstrap_error", CALL_ORDER),
    ("*", r"does not support SQL", None, SQL),
    ("*", r"does not support EVAL", None, EVAL),
    ("*", r"read_only|Can't find healthy r[ow] instance", None, READ_ONLY),
    ("*", r"on_replace", None, LUA_TRIGGER),
    ("tarantool-python", r"cannot send a LuaFunc", r"test_socket_fd\.", SOCKET),
    ("tarantool-python", r"credentials are invalid", r"test_mesh\.TestSuiteMesh::test_00_basic", PERSISTENCE),
    ("*", r"Styx has no Lua console|LuaConsoleUnsupported", None, CONSOLE),
    ("*", r"Unknown request type 1[13]\b", None, SQL),
    ("*", r"docker", None, DOCKER),
    ("asynctnt", None, r"test__connect_(err_loading|waiting_for_spaces)", REPLICATION),
    ("asynctnt", None, r"test__features_3_0", TUPLE_EXT),
    ("asynctnt", r"tester_ext_datetime", None, DATETIME),
    ("asynctnt", None, r"MpExt(Datetime|Interval)TestCase", DATETIME),
    ("asynctnt", None, r"test__ext_error_custom$", EVAL),  # the error it checks comes from eval
    ("tarantool-python", None, r"test_dml\.TestSuiteRequest::test_1[456]_extra_error_info|"
                               r"test_encoding\.TestSuiteEncoding::test_0[12]_05_error_extra_info", EVAL),
    ("tarantool-python", None, r"test_(datetime|interval)\.", DATETIME),
    ("tarantool-python", None, r"foreign_key", FOREIGN_KEY),
    ("tarantool-python", r"^AssertionError: \d+ != 1$",
     r"test_mesh\.TestSuiteMesh::test_03_discovery_bad_good_addresses",
     FLAKY_WARNINGS),
    ("tarantool-python", None, r"test_package\.TestSuitePackage::test_version", PACKAGE),
    ("node-tarantool-driver", r"is not found/", r"reject when auth failed", AUTH_MSG),
    ("node-tarantool-driver", r"ETIMEDOUT", None, NETWORK),
    ("node-tarantool-driver", None, r"evalutate box select delete 2", EVAL),
    ("node-tarantool-driver", None, r"reconnect and then connect eventially", DOCKER),
]

# Tests left out of --lua's ratio: SQL and replication (by id, or by a failure
# that says SQL on either server).
EXCLUDED_IDS: dict[str, str] = {
    "asynctnt": r"test_op_sql_|_through_sql$|test__connect_err_loading|test__connect_waiting_for_spaces",
    "tarantool-python": r"test_execute\.|::test_\d+_execute$|schema_fetch_disable_via",
    "node-tarantool-driver": r"(?!)",
}
EXCLUDED_MSG = r"does not support SQL|Unknown request type 1[13]\b|SQL"


def excluded(suite: str, test_id: str, message: str) -> bool:
    return bool(re.search(EXCLUDED_IDS.get(suite, r"(?!)"), test_id) or re.search(EXCLUDED_MSG, message or ""))


def classify(suite: str, test_id: str, message: str) -> str | None:
    for s, msg_re, id_re, cause in RULES:
        if s not in ("*", suite):
            continue
        if msg_re is not None and not re.search(msg_re, message or ""):
            continue
        if id_re is not None and not re.search(id_re, test_id):
            continue
        return cause
    return None
