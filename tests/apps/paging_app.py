"""A space to page through, by name and by id."""

from styx import box


def init():
    box.schema.user.grant("guest", "read,write", "universe", if_not_exists=True)
    s = box.schema.space.create("pages", id=600, format=[("id", "unsigned"), ("g", "string")])
    s.create_index("pk", parts=["id"])
    s.create_index("by_g", parts=["g"], unique=False)
    h = box.schema.space.create("hashed", id=601)
    h.create_index("pk", type="HASH", parts=[1, "unsigned"])
    for i in range(1, 21):
        s.insert([i, "even" if i % 2 == 0 else "odd"])
        h.insert([i])
