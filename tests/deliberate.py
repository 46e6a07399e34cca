"""Where Styx answers differently from Tarantool 2.6 on purpose: the one list.

The differential tests (tests/test_box_differential.py, tests/test_box_issue7.py,
tests/test_box_generated.py, tests/test_ddl_over_call.py) compare Styx with
Debian's Tarantool 2.6 request by request; what they do not compare, or
accept as different, is here, each with its reason. Every other difference
is a Styx bug. README.md ("Where Styx differs") points here.
"""

from __future__ import annotations

from typing import NamedTuple


class Deliberate(NamedTuple):
    what: str
    why: str


DELIBERATE = {d.what.split(":")[0]: d for d in [
    # -- the protocol --------------------------------------------------------------
    Deliberate("version: the greeting says Tarantool 3.0.0",
               "the first release whose IPROTO_ID has every feature Styx advertises (protocol "
               "version 6: streams, transactions, error_extension, watchers, pagination, "
               "space_and_index_names, watch_once), so a connector that trusts the greeting "
               "agrees with ID (server.py, VERSION); box requests still answer as 2.6."),
    Deliberate("strings and binary: MP_STR and MP_BIN through a Python procedure",
               "each goes back as it came (str as MP_STR, bytes as MP_BIN), as in Tarantool "
               "3.0; 2.6's Lua has one string type and sends MP_BIN back as MP_STR. Return "
               "`data.decode('utf-8', 'surrogateescape')` to send bytes as MP_STR."),
    Deliberate("2.11 error semantics: auth failures, missing request fields, unknown header keys",
               "an unknown user and a wrong password both get 47 \"User not found or supplied "
               "credentials are invalid\"; ER_MISSING_REQUEST_FIELD (69) names the IPROTO key "
               "('SPACE_ID', 'FUNCTION_NAME'), where 2.6 says 'space id'; unknown header keys "
               "are skipped (gh-8745). Same codes, clearer messages."),
    Deliberate("newer request keys: FETCH_POSITION, AFTER_POSITION, AFTER_TUPLE, SPACE_NAME, "
               "INDEX_NAME",
               "2.11 pagination and 3.0 names are implemented and advertised in IPROTO_ID; 2.6 "
               "skips the keys. The differential tests do not send them."),
    Deliberate("schema_version: the header's SCHEMA_VERSION (0x05)",
               "each server counts its own DDL (Styx starts at 80); clients only compare it "
               "with what the same server sent before. Its encoding is Tarantool's (uint32, "
               "tests/test_reply_head.py)."),
    Deliberate("error location: MP_ERROR file (0x01) and line (0x02)",
               "the source location of the raise: a .c file in Tarantool, a .py file in Styx."),
    Deliberate("tuple bytes: the MessagePack encoding of stored values",
               "Tarantool stores and returns the bytes a client sent (5 as 0xcd 0x00 0x05), Styx "
               "re-encodes canonically; values are compared decoded, with their types."),
    Deliberate("decoded forms: a float32 (0xca) and an unsigned sent in signed form (0xd0 0x05)",
               "LIMITATION, not a choice: msgpack-python decodes them to a float and an int, so "
               "Styx takes a float32 for a 'double' field or key (2.6: 23/18), does float32 "
               "arithmetic in double precision, and takes 0xd0 0x05 as unsigned (2.6: 23)."),
    Deliberate("bad decimal: an MP_EXT decimal 2.6 cannot decode (0xd5 0x01 0x00 0xff)",
               "2.6 stores it unchecked in a number, decimal or scalar field and dies when an "
               "index compares it (the connection closes); Styx refuses it there (23). An "
               "'any' field keeps it in both; a CALL argument is 32 in both."),
    # -- data ----------------------------------------------------------------------
    Deliberate("hash order: the order of tuples from a HASH index (ALL, GT)",
               "an implementation detail in Tarantool too (it changes with the table's "
               "history): compared as multisets when nothing was cut by offset/limit, else by "
               "count; GT 'after the key' walks Styx's insertion order, so only the reply code "
               "is compared. A DDL that checks every stored tuple (a new or altered index, a "
               "format) meets them in primary-key order: with a HASH primary key, when several "
               "tuples fail, each server may name another one's fault (23 or 39), so two "
               "errors are the same answer."),
    Deliberate("double NaN: a NaN in a TREE index part of type 'double'",
               "2.6 compares doubles with a plain C `<` there, so NaN equals every value: the "
               "tree has no order (a unique index holding NaN refuses any other value; answers "
               "depend on insertion history). Styx sorts NaN below every number, as 2.6 does "
               "for 'number' and 'scalar' parts. The generated tests send no NaN to a double "
               "TREE part."),
    Deliberate("decimal vs special double: a decimal compared with NaN, +-inf or a double "
               "of 1e38 or more",
               "undefined behaviour in 2.6 (it compares an uninitialised decimal: a search for "
               "decimal 2 finds a NaN); Styx orders by the double (NaN below, the infinities by "
               "sign), as later Tarantool does. The generated tests do not mix the two."),
    Deliberate("update field_no: UPDATE/UPSERT with a field number outside int32",
               "2.6 names the field in its error 26 from uninitialised memory (\"on field "
               "7740641\" over IPROTO, \"field 2\" from Lua, whatever the number sent); Styx "
               "names the number sent. Same code and text otherwise."),
    # -- the Lua API over CALL -------------------------------------------------------
    Deliberate("space.create: box.schema.space.create over CALL",
               "2.6 creates the space, then fails to encode the space object (32 \"unsupported "
               "Lua type 'function'\"); Styx returns the space's description."),
    Deliberate("view map order: key order of maps in system view rows",
               "Tarantool writes a Lua table (a format field, a map index part) in hash order; "
               "Styx in the order given. View rows are compared as decoded values."),
    Deliberate("system spaces 2.10 added: _vspace_sequence (341)",
               "Styx has the system spaces of 2.10 and later: rows for ids 2.6 lacks are "
               "skipped."),
    Deliberate("not implemented: BITSET and RTREE indexes, sequences, SQL, ICU collations, vinyl, "
               "index:random(), index part options other than is_nullable",
               "refused with ER_UNSUPPORTED (5) \"Styx does not support ...\" (a vinyl space is "
               "created as memtx; the data lives in memory only)."),
    Deliberate("Lua: EVAL, Lua procedures and init scripts in an embedded LuaJIT",
               "its box is the Python box (tests/test_eval.py, test_lua_procs.py and "
               "test_lua_modules.py compare it with 2.6). Not there: net.box, the Lua console, "
               "before_replace triggers, SQL; require() of a missing module names it. A Lua "
               "fiber that runs 1 s without waiting ends with 'fiber slice is exceeded' (2.11's "
               "max_slice), so the JIT compiler is off. MP_BIN reaches Lua as a varbinary "
               "object and goes back as MP_BIN, as in 3.0 (2.6 makes it a string). Triggers "
               "run inline and cannot wait."),
    Deliberate("procedure writes: one WAL transaction per CALL",
               "what a Python procedure changes outside box.begin() is logged as one WAL "
               "transaction when it returns (and replied to once written); 2.6 logs each "
               "autocommit statement of a Lua procedure on its own. Replaying either gives the "
               "same data; after a crash Styx has all of a call's writes or none."),
    Deliberate("reply size: a CALL reply over net_reply_max (64 MB by default)",
               "error 32 \"Failed to encode the result: the reply would be N bytes, over "
               "net_reply_max (M)\"; 2.6 has no limit and sends it, holding its TX thread "
               "meanwhile. The generated tests' replies are far smaller."),
    Deliberate("datetime: MP_EXT 4 in requests and procedure results",
               "2.6 has no datetime (2.10 added it): Styx decodes and encodes 2.10's layout "
               "(styx/protocol/ext.py). The generated tests send no ext 4."),
    Deliberate("python procedures: an exception raised by a Python procedure, and its None",
               "error 32 (ER_PROC_LUA) sent as a CustomError whose type is the exception's "
               "class name; a procedure returning None returns no values (Python cannot tell "
               "`return None` from no return)."),
]}


def field_no_outside_int32(ops: object) -> bool:
    """An UPDATE/UPSERT operation list with a field number outside int32
    (DELIBERATE['update field_no'])."""
    return isinstance(ops, list) and any(
        isinstance(op, list) and len(op) > 1 and type(op[1]) is int
        and not -2**31 <= op[1] < 2**31 for op in ops)
