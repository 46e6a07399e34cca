"""The app of tests/test_box_api.py: procedures that drive the Python `box`
API (spaces, indexes, data, users, roles, functions, errors, info, stats) and
return what they observed, so the test can CALL them and assert values.

Users made in init():

- `admin`/`pw`: only admin may grant on the universe and on admin's objects;
- `boss`/`pw`: the role `super` (what the test drives DDL as; admin has no
  password, as in Tarantool);
- `noread`/`pw`: execute on the universe only: may call procedures, may not
  read or write `secret`;
- `fexec`/`pw`: no execute on the universe; execute on the function object
  `only_this` alone.

`secret` [id unsigned, v any] holds [1, 'a'], [2, 'b'].

Every procedure that creates objects takes the names it uses as arguments,
so tests sharing one server never collide.
"""

import uuid
from decimal import Decimal

from styx import BoxError, box


def init():
    box.schema.user.passwd("admin", "pw")
    box.schema.user.create("boss", password="pw", if_not_exists=True)
    box.schema.user.grant("boss", "super", if_not_exists=True)
    box.schema.user.create("noread", password="pw", if_not_exists=True)
    box.schema.user.grant("noread", "execute", "universe", if_not_exists=True)
    box.schema.user.create("fexec", password="pw", if_not_exists=True)
    box.schema.func.create("only_this", if_not_exists=True)
    box.schema.user.grant("fexec", "execute", "function", "only_this", if_not_exists=True)
    secret = box.schema.space.create("secret", if_not_exists=True, format=[
        {"name": "id", "type": "unsigned"}, {"name": "v", "type": "any"}])
    secret.create_index("pk", if_not_exists=True)
    secret.replace([1, "a"])
    secret.replace([2, "b"])


def _err(fn, *args, **kwargs):
    """[code, message] of the BoxError fn raises; ['ok', result] if none."""
    try:
        return ["ok", fn(*args, **kwargs)]
    except BoxError as e:
        return [e.code, e.message]


def _idx(i):
    return {"id": i.id, "name": i.name, "type": i.type, "unique": i.unique, "parts": i.parts}


# -- spaces ---------------------------------------------------------------------------


def space_create(a, b, c):
    """a: format as dicts; b: format as (name, type) pairs and an explicit id;
    c: no format, field_count and temporary."""
    s1 = box.schema.space.create(a, format=[
        {"name": "id", "type": "unsigned"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "integer", "is_nullable": True},
    ])
    s2 = box.schema.space.create(b, format=[("id", "unsigned"), ("tag", "string")], id=600)
    s3 = box.schema.space.create(c, field_count=2, temporary=True)
    again = box.schema.space.create(a, if_not_exists=True)
    return {
        "ids": [s1.id, s2.id, s3.id],
        "names": [s1.name, s2.name, s3.name],
        "engine": s1.engine,
        "format_dicts": s1.format(),
        "format_pairs": s2.format(),
        "format_none": s3.format(),
        "field_count": [s1.field_count, s3.field_count],
        "info_c": s3.info(),
        "again_id": again.id,
        "again_format": again.format(),
        "by_id": box.space[600].name,
        "by_item": box.space[b].id,
        "by_attr": getattr(box.space, a).id,
        "in": [a in box.space, 600 in box.space, "no_such_space" in box.space],
        "dup_name": _err(box.schema.space.create, a),
        "dup_id": _err(box.schema.space.create, a + "_other", id=600),
        "bad_type": _err(box.schema.space.create, a + "_bad", format=[("x", "nosuchtype")]),
        "dup_field": _err(box.schema.space.create, a + "_dup",
                          format=[("x", "unsigned"), ("x", "string")]),
        "bad_engine": _err(box.schema.space.create, a + "_eng", engine="nope"),
        "schema_version": box.schema_version,
    }


# -- indexes ---------------------------------------------------------------------------


def index_create(name):
    s = box.schema.space.create(name, format=[
        {"name": "id", "type": "unsigned"},
        {"name": "name", "type": "string"},
        {"name": "cat", "type": "string"},
        {"name": "n", "type": "integer", "is_nullable": True},
        {"name": "bag", "type": "any", "is_nullable": True},
    ])
    out = {}
    out["nullable_pk"] = _err(s.create_index, "pk",
                              parts=[{"field": 4, "type": "integer", "is_nullable": True}])
    out["pk_not_unique"] = _err(s.create_index, "pk", unique=False)
    out["secondary_first"] = _err(s.create_index, "sec", parts=["name"], id=1)
    pk = s.create_index("pk", parts=["id"])                             # by field name
    by_name = s.create_index("by_name", type="HASH", parts=[2])         # by 1-based number
    by_cat = s.create_index("by_cat", parts=[("cat", "string")], unique=False)  # (field, type)
    by_cat_id = s.create_index("by_cat_id", type="TREE",
                               parts=[[3, "string"], [1, "unsigned"]])
    by_n = s.create_index("by_n", parts=[{"field": 4, "type": "integer", "is_nullable": True}],
                          unique=False)
    by_n_fmt = s.create_index("by_n_fmt", parts=["n"], unique=True)  # nullable by the format
    out["indexes"] = [_idx(i) for i in (pk, by_name, by_cat, by_cat_id, by_n, by_n_fmt)]
    out["listed"] = [i.name for i in s.index]
    out["count"] = len(s.index)
    out["by_number"] = s.index[3].name
    out["in"] = ["by_cat" in s.index, 1 in s.index, "nope" in s.index]
    out["again"] = _idx(s.create_index("by_cat", if_not_exists=True))
    out["dup"] = _err(s.create_index, "by_cat", parts=["cat"])
    out["hash_not_unique"] = _err(s.create_index, "h2", type="HASH", parts=["cat"], unique=False)
    out["bad_field"] = _err(s.create_index, "bad", parts=["nosuchfield"])
    out["bad_type"] = _err(s.create_index, "bad", type="NOPE")
    out["type_mismatch"] = _err(s.create_index, "bad", parts=[[2, "unsigned"]])

    s.insert([1, "one", "x", 10])
    s.insert([2, "two", "y"])
    s.insert([3, "three", "x", None])
    s.insert([4, "four", "y", -5, {"k": "v"}])
    out["dup_hash"] = _err(s.insert, [5, "one", "z"])
    out["dup_multi"] = _err(s.insert, [1, "uno", "x"])
    out["dup_nullable_unique"] = _err(s.insert, [6, "six", "z", 10])
    s.insert([7, "seven", "z", None])   # a second null in the unique nullable index: fine
    out["hash_get"] = s.index.by_name.get("three")
    out["hash_get_missing"] = s.index.by_name.get("none")
    out["cat_x"] = s.index.by_cat.select("x")
    out["cat_y_desc"] = s.index.by_cat.select(["y"], iterator="REQ")
    out["cat_id"] = s.index.by_cat_id.select(["y", 3], iterator="GE")
    out["cat_id_get"] = s.index.by_cat_id.get(["x", 3])
    out["n_null"] = s.index.by_n.select([None])
    out["n_all"] = s.index.by_n.select()
    out["n_gt_null"] = s.index.by_n.select([None], iterator="GT")
    out["n_fmt_null"] = s.index.by_n_fmt.select([None])
    out["non_unique_get"] = _err(s.index.by_cat.get, "x")
    return out


# -- data --------------------------------------------------------------------------------


def dml(name):
    s = box.schema.space.create(name, format=[
        ("id", "unsigned"), ("name", "string"), ("cnt", "integer")])
    s.create_index("pk")
    s.create_index("by_name", parts=["name"], unique=False)
    out = {}
    out["insert"] = [s.insert([i, f"n{i % 3}", i * 10]) for i in range(1, 7)]
    out["insert_tuple"] = s.insert((7, "n1", 70))
    out["dup"] = _err(s.insert, [1, "x", 0])
    out["bad_type"] = _err(s.insert, ["1", "x", 0])
    out["missing_field"] = _err(s.insert, [8, "x"])
    out["not_array"] = _err(s.insert, 8)
    out["replace_new"] = s.replace([8, "n2", 80])
    out["replace_old"] = s.replace([8, "n2", 81])
    out["put"] = s.put([9, "n0", 90])
    out["all"] = [t[0] for t in s.select()]
    out["eq_scalar_key"] = s.select(3)
    out["eq_list_key"] = s.select([3])
    out["ge_name"] = [t[0] for t in s.select([5], iterator="GE")]
    out["ge_lower"] = [t[0] for t in s.select([5], iterator="ge")]
    out["ge_number"] = [t[0] for t in s.select([5], iterator=5)]
    out["gt"] = [t[0] for t in s.select([5], iterator="GT")]
    out["lt"] = [t[0] for t in s.select([5], iterator="LT")]
    out["le_number"] = [t[0] for t in s.select([5], iterator=4)]
    out["lt_number"] = [t[0] for t in s.select([5], iterator=3)]
    out["req"] = [t[0] for t in s.select([], iterator="REQ")]
    out["all_it"] = [t[0] for t in s.select(None, iterator="ALL")]
    out["limit"] = [t[0] for t in s.select([], limit=3)]
    out["offset"] = [t[0] for t in s.select([], offset=7)]
    out["limit_offset"] = [t[0] for t in s.select([2], iterator="GT", limit=2, offset=1)]
    out["bad_iterator"] = _err(s.select, [1], iterator="SIDEWAYS")
    out["by_name_eq"] = [t[0] for t in s.index.by_name.select("n1")]
    out["by_name_lt"] = [t[0] for t in s.index.by_name.select(["n1"], iterator="LT")]
    out["by_name_limit"] = [t[0] for t in s.index.by_name.select("n2", limit=1)]
    out["get"] = s.get(4)
    out["get_list"] = s.get([4])
    out["get_missing"] = s.get(100)
    out["min"] = s.index.pk.min()
    out["max"] = s.index.pk.max()
    out["min_key"] = s.index.pk.min(5)
    out["max_key"] = s.index.pk.max(5)
    out["min_name"] = s.index.by_name.min()
    out["max_name"] = s.index.by_name.max()
    out["count"] = s.count()
    out["count_key"] = s.count(5, iterator="GE")
    out["count_idx"] = s.index.by_name.count("n0")
    out["count_idx_lt"] = s.index.by_name.count("n1", iterator="LT")
    out["len"] = [s.len(), len(s), s.index.by_name.len()]
    out["update_name"] = s.update(1, [("=", "name", "renamed"), ("+", "cnt", 5)])
    out["update_number"] = s.update([2], [["=", 2, "numbered"], ["-", 3, 1]])
    out["update_index_base0"] = s.update([3], [["=", 1, "base0"]], index_base=0)
    out["update_missing"] = s.update(100, [("=", 2, "x")])
    out["update_pk"] = _err(s.update, 1, [("=", 1, 50)])
    out["update_bad_field"] = _err(s.update, 1, [("=", "nosuch", 1)])
    out["update_via_index"] = _err(s.index.by_name.update, "n1", [("=", 3, 0)])
    out["upsert_insert"] = s.upsert([20, "ups", 1], [("+", "cnt", 1)])
    out["after_upsert_insert"] = s.get(20)
    out["upsert_update"] = s.upsert([20, "ups", 1], [("+", 3, 10)])
    out["after_upsert_update"] = s.get(20)
    out["delete"] = s.delete(4)
    out["delete_missing"] = s.delete(4)
    out["delete_via_unique_missing"] = s.index.pk.delete([100])
    out["after"] = s.select()
    out["truncate"] = s.truncate()
    out["after_truncate"] = [s.len(), s.select(), s.index.by_name.select()]
    out["insert_after_truncate"] = s.insert([1, "again", 1])
    return out


def min_max(name):
    """index.min(key)/max(key): the first/last tuple EQUAL to the (partial)
    key, as 2.6 (generic_index_min/max iterate EQ/REQ), None if none is."""
    s = box.schema.space.create(name)
    s.create_index("pk", parts=[[1, "unsigned"], [2, "unsigned"]])
    for t in ([1, 1], [1, 5], [3, 2]):
        s.insert(t)
    pk = s.index.pk
    return {"min": pk.min(), "max": pk.max(), "min_1": pk.min(1), "max_1": pk.max([1]),
            "min_3": pk.min([3]), "min_2": pk.min(2), "max_2": pk.max(2), "max_0": pk.max(0),
            "min_9": pk.min(9), "count_2": pk.count(2), "count_1": pk.count(1)}


def alter_drop(name):
    s = box.schema.space.create(name, format=[("id", "unsigned"), ("a", "string"),
                                              ("b", "unsigned")])
    s.create_index("pk")
    s.create_index("sec", parts=["a"])
    s.insert([1, "x", 2])
    s.insert([2, "y", 1])
    out = {}
    out["dup_while_unique"] = _err(s.insert, [3, "x", 3])
    s.index.sec.alter(name="sec2")
    out["renamed"] = ["sec" in s.index, s.index.sec2.id, s.index.sec2.name]
    s.index.sec2.alter(unique=False)
    out["non_unique"] = s.index.sec2.unique
    out["dup_now_ok"] = s.insert([3, "x", 3])
    out["by_a"] = s.index.sec2.select("x")
    s.index.sec2.alter(parts=[("b", "unsigned")])
    out["new_parts"] = s.index.sec2.parts
    out["by_b"] = s.index.sec2.select([], iterator="GE")
    out["make_unique_fails"] = _err(s.index.sec2.alter, parts=["a"], unique=True)
    out["after_failed_alter"] = _idx(s.index.sec2)
    out["drop_pk"] = _err(s.index.pk.drop)
    out["pk_still"] = s.get(1)
    s.index.sec2.drop()
    out["sec_gone"] = [len(s.index), "sec2" in s.index]
    s.index.pk.drop()
    out["no_pk"] = [len(s.index), _err(s.select), _err(s.insert, [9, "z", 9])]
    s.create_index("pk2", parts=["a"])
    out["pk2"] = s.index[0].name
    return out


def rename_format_drop(name, new_name):
    s = box.schema.space.create(name, format=[("id", "unsigned"), ("v", "any")])
    s.create_index("pk")
    s.insert([1, "str"])
    s.insert([2, 42])
    out = {}
    s.rename(new_name)
    out["renamed"] = [name in box.space, new_name in box.space, box.space[new_name].id == s.id,
                      box.space[new_name].get(1)]
    out["rename_taken"] = _err(box.space[new_name].rename, "secret")
    t = box.space[new_name]
    out["narrow"] = _err(t.format, [("id", "unsigned"), ("v", "unsigned")])
    out["required"] = _err(t.format, [("id", "unsigned"), ("v", "any"), ("w", "string")])
    out["kept"] = t.format()
    out["insert_after_failed"] = t.insert([3, "anything"])
    t.format([{"name": "id", "type": "unsigned"}, {"name": "v", "type": "scalar"},
              {"name": "w", "type": "string", "is_nullable": True}])
    out["widened"] = t.format()
    out["enforced"] = _err(t.insert, [4, "x", 5])
    out["update_by_new_name"] = t.update(1, [("=", "w", "ok")])
    sid = t.id
    t.drop()
    out["dropped"] = [new_name in box.space, sid in box.space]
    try:
        box.space[new_name]
        out["item"] = "found"
    except KeyError:
        out["item"] = "KeyError"
    try:
        getattr(box.space, new_name)
        out["attr"] = "found"
    except AttributeError:
        out["attr"] = "AttributeError"
    out["reuse"] = box.schema.space.create(new_name).id
    return out


def space_after_drop(name):
    """A SpaceApi object kept across its space's drop (2.6: the Lua space
    object then fails: insert 36, select 35)."""
    s = box.schema.space.create(name)
    s.create_index("pk")
    s.insert([1])
    sid = s.id
    s.drop()
    out = {"id": sid, "insert": _err(s.insert, [2]), "select": _err(s.select)}
    again = box.schema.space.create(name, id=sid)
    again.create_index("pk")
    out["recreated"] = [again.id, again.select()]
    return out


def index_after_alter(name):
    """An IndexApi object kept across an alter of its index, then its drop
    (2.6: the Lua index object follows the index by id)."""
    s = box.schema.space.create(name)
    s.create_index("pk")
    s.create_index("sec", parts=[[2, "string"]], unique=False)
    i = s.index.sec
    s.index.sec.alter(name="sec2")
    s.insert([1, "a"])
    out = {"after_alter": _err(i.select, "a"), "count": _err(i.count, "a"),
           "fresh": s.index.sec2.select("a")}
    s.index.sec2.drop()
    out["after_drop"] = _err(i.select, "a")
    return out


def format_vs_index(name):
    """A format whose type for an indexed field contradicts the index's part
    type is refused (27), and the old format stays."""
    s = box.schema.space.create(name, format=[("id", "unsigned"), ("v", "any")])
    s.create_index("pk")
    s.insert([1, "x"])
    return {"conflict": _err(s.format, [("id", "string"), ("v", "any")]),
            "kept": s.format(),
            "insert_string_id": _err(s.insert, ["2", "y"])}


# -- decimal and uuid ----------------------------------------------------------------------


def ext_values(name, dec_from_client=None, uuid_from_client=None):
    s = box.schema.space.create(name, format=[
        {"name": "d", "type": "decimal"}, {"name": "u", "type": "uuid"},
        {"name": "any", "type": "any", "is_nullable": True}])
    s.create_index("pk", parts=[[1, "decimal"]])
    s.create_index("u", parts=[("u", "uuid")])
    u1 = uuid.UUID("6f2dc6a1-8c3b-4b1a-9b0e-2f5c2a1e0d01")
    u2 = uuid.UUID("00000000-0000-0000-0000-000000000001")
    s.insert([Decimal("1.10"), u1, Decimal("-0.000001")])
    s.insert([Decimal("-3.5"), u2])
    s.insert([Decimal("12345678901234567890.123456789"), uuid.UUID(int=2**128 - 1)])
    if dec_from_client is not None:
        s.insert([dec_from_client, uuid_from_client])
    out = {}
    out["get"] = s.get(Decimal("1.1"))           # 1.10 == 1.1: the key matches by value
    out["get_by_uuid"] = s.index.u.get(u2)
    out["ordered"] = s.select()
    out["ge_zero"] = [t[0] for t in s.select(Decimal(0), iterator="GE")]
    out["uuid_order"] = [t[1] for t in s.index.u.select()]
    out["dup"] = _err(s.insert, [Decimal("1.1000"), uuid.uuid4()])
    out["bad_decimal"] = _err(s.insert, [1.5, uuid.uuid4()])
    out["bad_uuid"] = _err(s.insert, [Decimal(7), str(u1)])
    out["types"] = [type(v).__name__ for v in s.get(Decimal("1.10"))]
    out["str"] = str(s.get(Decimal("1.10"))[0])
    out["update_decimal"] = s.update(Decimal("1.10"), [("+", 3, Decimal("0.25"))])
    return out


# -- users, roles, functions ---------------------------------------------------------------


def users(name, role):
    u, r = box.schema.user, box.schema.role
    out = {}
    u.create(name, password="first")
    sp = box.schema.space.create(name + "_space")
    sp.create_index("pk")
    box.schema.func.create(name + "_func")
    out["exists"] = [u.exists(name), u.exists("nobody"), r.exists(name)]
    out["dup"] = _err(u.create, name)
    out["dup_ok"] = u.create(name, if_not_exists=True)
    out["info_new"] = u.info(name)
    r.create(role)
    out["role_exists"] = [r.exists(role), u.exists(role)]
    out["role_dup"] = _err(r.create, role)
    u.grant(name, "read,write", "space", name + "_space")
    u.grant(name, "execute", "universe")
    u.grant(name, "execute", "function", name + "_func")
    u.grant(name, role)                         # a role, two-argument form
    r.grant(role, "read", "space", sp.id)       # a space by id
    out["info_granted"] = u.info(name)
    out["role_info"] = r.info(role)
    out["regrant"] = _err(u.grant, name, "read", "space", name + "_space")
    out["regrant_ok"] = u.grant(name, "read", "space", name + "_space", if_not_exists=True)
    out["role_regrant"] = _err(u.grant, name, role)
    out["grant_nobody"] = _err(u.grant, "nobody", "read", "universe")
    out["grant_no_space"] = _err(u.grant, name, "read", "space", "no_such_space")
    out["grant_no_function"] = _err(u.grant, name, "execute", "function", "no_such_function")
    out["grant_no_role"] = _err(u.grant, name, "no_such_role")
    out["grant_bad_priv"] = _err(u.grant, name, "frob", "universe")
    u.revoke(name, "write", "space", name + "_space")
    u.revoke(name, "execute", "function", name + "_func")
    u.revoke(name, "execute", "universe")
    u.revoke(name, role)
    out["info_revoked"] = u.info(name)
    out["revoke_again"] = _err(u.revoke, name, "write", "space", name + "_space")
    out["revoke_again_ok"] = u.revoke(name, "write", "space", name + "_space", if_exists=True)
    u.grant(name, "execute", "universe")  # so that it may call passwd_self
    u.passwd(name, "second")
    out["info_missing"] = _err(u.info, "nobody")
    return out


def passwd_self(password):
    box.schema.user.passwd(password)


def boss_grants(user):
    """What a user with the role super may not grant: only admin and an
    object's owner may (Tarantool 2.6)."""
    return {
        "universe": _err(box.schema.user.grant, user, "read", "universe"),
        "admin_space": _err(box.schema.user.grant, user, "read", "space", "secret"),
        "admin_func": _err(box.schema.user.grant, user, "execute", "function", "only_this"),
    }


def drop_user(name):
    box.schema.user.drop(name)
    return [box.schema.user.exists(name), _err(box.schema.user.drop, name),
            box.schema.user.drop(name, if_exists=True)]


def drop_role(role):
    box.schema.role.drop(role)
    return [box.schema.role.exists(role), _err(box.schema.role.drop, role)]


def funcs(name):
    f = box.schema.func
    out = {"before": f.exists(name)}
    f.create(name)
    out["after"] = f.exists(name)
    out["dup"] = _err(f.create, name)
    out["dup_ok"] = f.create(name, if_not_exists=True)
    return out


def grant_execute(user, func):
    box.schema.user.grant(user, "execute", "function", func)
    return box.schema.user.info(user)


def revoke_execute(user, func):
    box.schema.user.revoke(user, "execute", "function", func)


def drop_func(name):
    box.schema.func.drop(name)
    return [box.schema.func.exists(name), _err(box.schema.func.drop, name),
            box.schema.func.drop(name, if_exists=True)]


def only_this(*args):
    return ("only_this", box.session.user(), *args)


def not_this(*args):
    return ("not_this", *args)


def grant(user, privileges, object_type="universe", object_name=None):
    box.schema.user.grant(user, privileges, object_type, object_name)


def revoke(user, privileges, object_type="universe", object_name=None):
    box.schema.user.revoke(user, privileges, object_type, object_name)


# -- access from inside procedures ------------------------------------------------------------


def read_space(name):
    return box.space[name].select()


def get_from(name, key):
    return box.space[name].get(key)


def write_space(name, tup):
    return box.space[name].replace(tup)


def create_space_as_caller(name):
    return box.schema.space.create(name).id


# -- errors, info, stats -----------------------------------------------------------------------


def raise_error(code, *args):
    raise box.error(code, *args)


def raise_named(name, *args):
    raise box.error(getattr(box.error, name), *args)


def raise_custom(code, reason, type_name="ClientError"):
    raise box.error(code=code, reason=reason, type=type_name)


def error_codes():
    e = box.error
    return [e.NO_SUCH_USER, e.ACCESS_DENIED, e.NO_SUCH_SPACE, e.TUPLE_FOUND, e.PROC_LUA]


def info():
    i = box.info()
    return {"info": i, "status": box.info.status, "ro": box.info.ro, "uuid": box.info.uuid}


def stat():
    return box.stat()


async def net_stat():
    return await box.stat.net()


def api_select(name, n):
    """n box API selects: Tarantool counts them in box.stat().SELECT."""
    for _ in range(n):
        box.space[name].select()
    return box.stat()["SELECT"]["total"]


def api_insert(name, first, n):
    for i in range(first, first + n):
        box.space[name].insert([i, "v"])
    return box.stat()["INSERT"]["total"]


# -- DDL for the schema_version tests -----------------------------------------------------------


def make_space(name, index=True):
    s = box.schema.space.create(name, format=[("id", "unsigned"), ("v", "scalar")])
    if index:
        s.create_index("pk")
    return s.id, box.schema_version


def make_index(space, name, field):
    box.space[space].create_index(name, parts=[field], unique=False)
    return box.schema_version


def drop_space(name):
    box.space[name].drop()
    return box.schema_version


def schema_version():
    return box.schema_version


def whoami():
    return box.session.user()


# -- one error case at a time (tests/test_box_api.py compares each with 2.6) ---------------------


def _fresh(p, fmt=(("id", "unsigned"), ("name", "string"), ("v", "any")), rows=()):
    s = box.schema.space.create(p, format=[list(f) for f in fmt])
    s.create_index("pk")
    for r in rows:
        s.insert(r)
    return s


def _case_space_dup_id(p):
    box.schema.space.create(p, id=700)
    box.schema.space.create(p + "_2", id=700)


def _case_index_secondary_first(p):
    box.schema.space.create(p).create_index("sec", id=1)


def _case_index_nullable_pk(p):
    box.schema.space.create(p).create_index(
        "pk", parts=[{"field": 1, "type": "unsigned", "is_nullable": True}])


def _case_index_type_mismatch(p):
    _fresh(p).create_index("bad", parts=[[2, "unsigned"]])


def _case_format_vs_index(p):
    _fresh(p).format([("id", "string")])


def _case_format_vs_data(p):
    _fresh(p, rows=[[1, "a", "str"]]).format([("id", "unsigned"), ("name", "string"),
                                              ("v", "unsigned")])


def _case_drop_pk_with_secondary(p):
    s = _fresh(p)
    s.create_index("sec", parts=["name"])
    s.index.pk.drop()


def _case_bad_iterator(p):
    _fresh(p).select([1], iterator="SIDEWAYS")


def _case_grant_bad_universe_priv(p):
    box.schema.user.create(p)
    box.schema.user.grant(p, "frob", "universe")


def _case_grant_bad_space_priv(p):
    _fresh(p)
    box.schema.user.create(p)
    box.schema.user.grant(p, "frob", "space", p)


def _case_grant_unknown_object_type(p):
    box.schema.user.create(p)
    box.schema.user.grant(p, "read", "planet", "x")


DDL_CASES = {
    "space_dup_name": lambda p: (box.schema.space.create(p), box.schema.space.create(p)),
    "space_dup_id": _case_space_dup_id,
    "space_empty_name": lambda p: box.schema.space.create(""),
    "space_unknown_field_type": lambda p: box.schema.space.create(p, format=[("x", "nosuchtype")]),
    "space_dup_field": lambda p: box.schema.space.create(p, format=[("x", "unsigned"),
                                                                    ("x", "string")]),
    "space_unknown_engine": lambda p: box.schema.space.create(p, engine="nope"),
    "space_rename_taken": lambda p: _fresh(p).rename("secret"),
    "space_drop_twice": lambda p: _case_space_drop_twice(p),
    "index_nullable_pk": _case_index_nullable_pk,
    "index_pk_not_unique": lambda p: box.schema.space.create(p).create_index("pk", unique=False),
    "index_secondary_first": _case_index_secondary_first,
    "index_dup_name": lambda p: _fresh(p).create_index("pk", parts=["name"]),
    "index_hash_not_unique": lambda p: _fresh(p).create_index("h", type="HASH", parts=["name"],
                                                              unique=False),
    "index_unknown_field": lambda p: _fresh(p).create_index("bad", parts=["nosuchfield"]),
    "index_unknown_type": lambda p: _fresh(p).create_index("bad", type="NOPE"),
    "index_empty_name": lambda p: _fresh(p).create_index(""),
    "index_type_mismatch": _case_index_type_mismatch,
    "format_vs_index": _case_format_vs_index,
    "format_vs_data": _case_format_vs_data,
    "drop_pk_with_secondary": _case_drop_pk_with_secondary,
    "bad_iterator": _case_bad_iterator,
    "get_non_unique": lambda p: _nonunique(p).index.sec.get("a"),
    "update_non_unique": lambda p: _nonunique(p).index.sec.update("a", [("=", 3, 1)]),
    "delete_non_unique": lambda p: _nonunique(p).index.sec.delete("a"),
    "update_unknown_op": lambda p: _fresh(p, rows=[[1, "a", 0]]).update(1, [("?", 2, 1)]),
    "insert_not_array": lambda p: _fresh(p).insert(8),
    "user_dup": lambda p: box.schema.user.create("admin"),
    "role_dup_user_name": lambda p: box.schema.role.create("admin"),
    "user_drop_role": lambda p: box.schema.user.drop("public"),
    "role_drop_user": lambda p: box.schema.role.drop("guest"),
    "grant_bad_universe_priv": _case_grant_bad_universe_priv,
    "grant_bad_space_priv": _case_grant_bad_space_priv,
    "grant_unknown_object_type": _case_grant_unknown_object_type,
    "count_without_index": lambda p: box.schema.space.create(p).count(),
}


def _nonunique(p):
    s = _fresh(p, rows=[[1, "a", 0], [2, "a", 0]])
    s.create_index("sec", parts=["name"], unique=False)
    return s


def _case_space_drop_twice(p):
    s = _fresh(p)
    s.drop()
    s.drop()


def ddl_error(case, prefix):
    """Run one case of DDL_CASES; [code, message] of its error, or ['ok']."""
    try:
        DDL_CASES[case](prefix)
    except BoxError as e:
        return [e.code, e.message]
    return ["ok"]


def ddl_versions(name):
    """How much each operation moves schema_version (2.6: one per space or
    index change, none for data, truncate, users, grants, functions)."""
    out = {}

    def step(label, fn):
        v = box.schema_version
        fn()
        out[label] = box.schema_version - v

    step("space_create", lambda: box.schema.space.create(name, format=[("id", "unsigned"),
                                                                        ("v", "string")]))
    s = box.space[name]
    step("index_create", lambda: s.create_index("pk"))
    step("index2_create", lambda: s.create_index("s", parts=["v"]))
    step("insert", lambda: s.insert([1, "a"]))
    step("index_alter", lambda: s.index.s.alter(name="s2"))
    step("rename", lambda: s.rename(name + "_b"))
    t = box.space[name + "_b"]
    step("format", lambda: t.format([("id", "unsigned"), ("v", "string"),
                                            {"name": "w", "type": "any", "is_nullable": True}]))
    step("index_drop", lambda: t.index.s2.drop())
    step("truncate", lambda: t.truncate())
    step("user_create", lambda: box.schema.user.create(name + "_u"))
    step("grant", lambda: box.schema.user.grant(name + "_u", "read", "space", name + "_b"))
    step("func_create", lambda: box.schema.func.create(name + "_f"))
    step("space_drop", lambda: t.drop())
    box.schema.user.drop(name + "_u")
    box.schema.func.drop(name + "_f")
    return out
