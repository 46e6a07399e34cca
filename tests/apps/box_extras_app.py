"""The app of tests/test_box_extras.py: box.cfg, box.index, box.NULL,
box.atomic and a missing member of box, as an app uses them."""

from styx import box


def init():
    box.schema.user.grant("guest", "super", if_not_exists=True)
    s = box.schema.space.create("kv", if_not_exists=True)
    s.create_index("pk", parts=[1, "unsigned"], if_not_exists=True)
    people = box.schema.space.create("people", format=[("id", "unsigned"), ("name", "string"),
                                                       {"name": "age", "type": "unsigned", "is_nullable": True}],
                                     if_not_exists=True)
    people.create_index("pk", parts=["id"], if_not_exists=True)


def cfg_read():
    return box.cfg.listen, box.cfg["net_msg_max"], box.cfg.wal_mode, sorted(box.cfg)[:3]


def cfg_set(n):
    box.cfg(net_msg_max=n)
    return box.cfg.net_msg_max


def cfg_missing():
    try:
        return box.cfg.no_such_option
    except AttributeError as e:
        return str(e)


def constants():
    return [box.index.EQ, box.index.REQ, box.index.ALL, box.index.LT, box.index.LE, box.index.GE,
            box.index.GT], box.NULL is None


def select_ge(k):
    return box.space.kv.select([k], iterator=box.index.GE)


def put_both(a, b):
    def both():
        box.space.kv.replace([a, "a"])
        box.space.kv.replace([b, "b"])
        return "done"
    return box.atomic(both)


def put_then_fail(a):
    def fail():
        box.space.kv.replace([a, "never"])
        raise ValueError("no")
    try:
        box.atomic(fail)
    except ValueError as e:
        return "rolled back: " + str(e)


def missing():
    try:
        return box.no_such_thing
    except AttributeError as e:
        return str(e)


def named(k):
    """A tuple by field name, as a map, and still a list."""
    box.space.people.replace([k, "ann", 30])
    t = box.space.people.get([k])
    short = box.space.people.replace([k + 1, "bob"])  # age left out
    try:
        short["age"]
    except KeyError as e:
        missing = "KeyError " + str(e)
    return (t["name"], t["age"], t[0], t[-1], t.tomap(names_only=True), t.tomap(),
            t == [k, "ann", 30], list(t), missing, box.space._space.get([512])["name"])


def memory():
    box.space.kv.replace([100, "x" * 1000])
    return box.slab.info(), box.info.memory(), box.cfg.memtx_memory


def missing_members():
    """Each miss names what is missing."""
    out = []
    for get in (lambda: box.space.kv.frob, lambda: box.space.kv.index.pk.frob, lambda: box.schema.frob,
                lambda: box.session.frob, lambda: box.info.frob, lambda: box.schema.user.frob):
        try:
            get()
        except AttributeError as e:
            out.append(str(e).split(":")[0])
    return out
