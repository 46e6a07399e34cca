"""styx.memory: the slab cache, ibuf and obuf. Pure data, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx.memory import Ibuf, Obuf, SlabCache

# -- SlabCache ------------------------------------------------------------------------


def test_slab_size_classes() -> None:
    c = SlabCache(min_size=512)
    assert [c.size_class(n) for n in (0, 1, 511, 512)] == [512] * 4
    assert c.size_class(513) == 1024
    assert c.size_class(1024) == 1024
    assert c.size_class(1025) == 2048
    assert c.size_class(16320) == 16384
    assert c.size_class((1 << 20) + 1) == 1 << 21
    for size in (1, 700, 5000, 16320, 70000):
        slab = c.get(size)
        assert type(slab) is bytearray
        assert len(slab) == c.size_class(size) >= size
        assert len(slab) & (len(slab) - 1) == 0


@given(size=st.integers(0, 1 << 24), shift=st.integers(0, 12))
def test_size_class_property(size: int, shift: int) -> None:
    c = SlabCache(min_size=1 << shift)
    cls = c.size_class(size)
    assert cls >= size and cls >= c.min_size
    assert cls & (cls - 1) == 0
    assert cls == c.min_size or cls // 2 < size  # the smallest such power of two


@pytest.mark.parametrize("bad", [0, -512, 3, 500, 513])
def test_slab_min_size_must_be_power_of_two(bad: int) -> None:
    with pytest.raises(ValueError):
        SlabCache(min_size=bad)


def test_slab_reuse_and_accounting() -> None:
    c = SlabCache(min_size=512)
    a = c.get(600)
    b = c.get(100)
    assert (len(a), len(b)) == (1024, 512)
    assert c.used == 1536 and c.cached == 0
    c.put(a)
    assert c.used == 512 and c.cached == 1024
    assert c.get(512) is not a  # another class: not reused
    assert c.get(1000) is a  # same class: the very same slab comes back
    assert c.cached == 0 and c.used == 1024 + 512 + 512
    c.put(b)
    c.put(a)
    assert c.cached == 1536
    # LIFO reuse within a class
    x, y = c.get(2000), c.get(2000)
    c.put(x)
    c.put(y)
    assert c.get(2000) is y and c.get(2000) is x


def test_slab_quota() -> None:
    c = SlabCache(min_size=512, quota=2048)
    slabs = [c.get(1024) for _ in range(4)]
    assert c.used == 4096
    for s in slabs:
        c.put(s)
    # Only two fit under the quota; the others are dropped (not cached).
    assert c.cached == 2048
    assert c.used == 0
    got = [c.get(1024) for _ in range(4)]
    assert sum(any(g is s for s in slabs) for g in got) == 2
    assert c.cached == 0 and c.used == 4096


def test_slab_quota_zero_caches_nothing() -> None:
    c = SlabCache(min_size=512, quota=0)
    s = c.get(1)
    c.put(s)
    assert c.cached == 0 and c.used == 0
    assert c.get(1) is not s


# -- Ibuf ------------------------------------------------------------------------------


def fill(ibuf: Ibuf, data: bytes) -> None:
    """What recv_into does: write into the free tail and advance wpos."""
    ibuf.reserve(len(data))
    assert ibuf.unused() >= len(data)
    ibuf.mv[ibuf.wpos:ibuf.wpos + len(data)] = data  # type: ignore[index]  # reserved: mv is set
    ibuf.wpos += len(data)


def content(ibuf: Ibuf) -> bytes:
    return bytes(ibuf.buf[ibuf.rpos:ibuf.wpos]) if ibuf.buf is not None else b""  # type: ignore[index]  # buf is checked in the same expression


def test_ibuf_lazy_slab_and_release() -> None:
    c = SlabCache(min_size=512)
    ib = Ibuf(c, 1000)
    assert ib.buf is None and ib.mv is None and ib.capacity == 0
    assert ib.used() == 0 and ib.unused() == 0
    assert c.used == 0
    ib.reserve(10)
    assert ib.capacity == 1024 and c.used == 1024  # start_capacity's class
    assert ib.mv.obj is ib.buf  # type: ignore[union-attr]  # reserved: mv is set
    fill(ib, b"hello")
    assert (ib.rpos, ib.wpos, ib.used(), ib.unused()) == (0, 5, 5, 1019)
    ib.consume(2)
    assert content(ib) == b"llo" and ib.used() == 3
    slab = ib.buf
    ib.release()
    assert ib.buf is None and ib.mv is None and (ib.rpos, ib.wpos) == (0, 0)
    assert c.used == 0 and c.cached == 1024
    ib.reserve(1)
    assert ib.buf is slab  # the slab came back from the cache


def test_ibuf_reserve_that_fits_moves_nothing() -> None:
    ib = Ibuf(SlabCache(), 512)
    fill(ib, b"a" * 100)
    ib.consume(40)
    buf = ib.buf
    ib.reserve(412)
    assert ib.buf is buf and (ib.rpos, ib.wpos) == (40, 100)


def test_ibuf_defragment_in_place() -> None:
    c = SlabCache(min_size=512)
    ib = Ibuf(c, 512)
    fill(ib, bytes(range(256)) * 2)  # 512: full
    ib.consume(500)
    buf = ib.buf
    ib.reserve(400)  # 12 used + 400 fits in 512 after moving the data to the start
    assert ib.buf is buf
    assert (ib.rpos, ib.wpos) == (0, 12)
    assert content(ib) == (bytes(range(256)) * 2)[500:]
    assert ib.unused() == 500
    assert c.used == 512


def test_ibuf_grow_preserves_data() -> None:
    c = SlabCache(min_size=512)
    ib = Ibuf(c, 512)
    data = bytes(i % 251 for i in range(500))
    fill(ib, data)
    ib.consume(100)
    old = ib.buf
    ib.reserve(1000)  # 400 used + 1000 > 512: a bigger slab
    assert ib.buf is not old
    assert ib.capacity == 2048  # 512 doubled until >= 1400
    assert (ib.rpos, ib.wpos) == (0, 400)
    assert content(ib) == data[100:]
    assert ib.unused() >= 1000
    assert ib.mv.obj is ib.buf  # type: ignore[union-attr]  # reserved: mv is set
    assert c.used == 2048 and c.cached == 512  # the old slab went back


def test_ibuf_reset() -> None:
    ib = Ibuf(SlabCache(), 512)
    fill(ib, b"xyz")
    buf = ib.buf
    ib.reset()
    assert (ib.rpos, ib.wpos) == (0, 0) and ib.buf is buf


@settings(max_examples=100, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 3000)), max_size=30),
       start=st.sampled_from([1, 100, 512, 1000, 4096]))
def test_ibuf_model(ops: list[tuple[bool, int]], start: int) -> None:
    """Random writes and consumes: the data between rpos and wpos is always
    what was written and not consumed, whatever moved."""
    c = SlabCache(min_size=512)
    ib = Ibuf(c, start)
    model = b""
    counter = 0
    for write, n in ops:
        if write:
            data = bytes((counter + i) % 256 for i in range(n))
            counter += n
            fill(ib, data)
            model += data
        else:
            k = min(n, len(model))
            ib.consume(k)
            model = model[k:]
        assert content(ib) == model
        assert ib.used() == len(model)
        assert 0 <= ib.rpos <= ib.wpos <= ib.capacity
        assert c.used == ib.capacity
    ib.release()
    assert c.used == 0


# -- Obuf ------------------------------------------------------------------------------


def joined(views: list[memoryview]) -> bytes:
    return b"".join(bytes(v) for v in views)


def all_of(ob: Obuf) -> bytes:
    return joined(ob.iov_range(0, ob.used))


def test_obuf_alloc_across_slabs_and_geometric_growth() -> None:
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    assert ob.used == 0 and ob.capacity() == 0 and ob.iov == []
    written = b""
    for k in range(6):
        chunk = bytes([k]) * (512 << k)
        buf, off = ob.alloc(len(chunk))
        buf[off:off + len(chunk)] = chunk
        written += chunk
    # Each slab twice the one before, each exactly filled.
    assert [len(s) for s in ob.iov] == [512 << k for k in range(6)]
    assert ob.iov_len == [512 << k for k in range(6)]
    assert ob.used == len(written) == ob.capacity()
    assert c.used == ob.capacity()
    assert all_of(ob) == written


def test_obuf_alloc_never_splits() -> None:
    ob = Obuf(SlabCache(min_size=512), 512)
    ob.alloc(500)
    buf, off = ob.alloc(100)  # 12 bytes left: a new slab, the old one ends at 500
    assert (ob.pos, off, len(buf)) == (1, 0, 1024)
    assert ob.iov_len == [500, 100] and ob.used == 600


def test_obuf_dup_splits_across_slabs() -> None:
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    data = bytes(i % 256 for i in range(3000))
    ob.dup(data[:100])
    ob.dup(data[100:])  # fills slab 0 to the brim, the rest goes on
    assert ob.iov_len[0] == 512
    assert sum(ob.iov_len) == 3000 == ob.used
    assert all_of(ob) == data
    ob.dup(memoryview(b"tail"))
    ob.dup(bytearray(b"!"))
    ob.dup(b"")
    assert all_of(ob) == data + b"tail!"


def test_obuf_reservation_bigger_than_a_slab() -> None:
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    ob.dup(b"ab")
    buf, off = ob.reserve(5000)
    assert len(buf) - off >= 5000  # contiguous
    assert ob.used == 2  # a reservation commits nothing
    assert len(buf) == 8192 and off == 0 and ob.pos == 1  # 1024 doubled until >= 5000
    buf[off:off + 5000] = b"x" * 5000
    buf2, off2 = ob.alloc(5000)  # commits the same place
    assert (buf2, off2) == (buf, off)
    assert ob.used == 5002 and all_of(ob) == b"ab" + b"x" * 5000
    # A first reservation bigger than the start capacity, on an empty obuf.
    ob2 = Obuf(c, 512)
    buf, off = ob2.reserve(100_000)
    assert (off, len(buf)) == (0, 131072) and ob2.used == 0


def test_obuf_reserve_then_patch_header() -> None:
    """The reply pattern: alloc a fixed header, write the body, patch the header."""
    ob = Obuf(SlabCache(min_size=512), 512)
    ob.dup(b"x" * 500)
    start = ob.used
    hbuf, hoff = ob.alloc(5)
    ob.dup(b"B" * 2000)  # spills into later slabs
    length = ob.used - start - 5
    hbuf[hoff:hoff + 5] = b"\xce" + length.to_bytes(4, "big")
    out = all_of(ob)
    assert out[500:505] == b"\xce" + (2000).to_bytes(4, "big")
    assert out == b"x" * 500 + out[500:505] + b"B" * 2000


def test_obuf_reset_keeps_slabs_release_returns_them() -> None:
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    ob.dup(b"q" * 2000)
    cap = ob.capacity()
    used_slabs = c.used
    assert used_slabs == cap > 0
    iov = list(ob.iov)
    ob.reset()
    assert ob.used == 0 and ob.pos == 0 and all(n == 0 for n in ob.iov_len)
    assert ob.capacity() == cap and c.used == used_slabs
    ob.dup(b"r" * 2000)
    assert len(ob.iov) == len(iov) and all(a is b for a, b in zip(ob.iov, iov, strict=True))
    assert all_of(ob) == b"r" * 2000
    ob.release()
    assert ob.used == 0 and ob.iov == [] and ob.iov_len == [] and ob.capacity() == 0
    assert c.used == 0 and c.cached == used_slabs
    ob.dup(b"again")
    assert all_of(ob) == b"again"


def test_obuf_skips_kept_slab_too_small() -> None:
    """After a reset, a reservation larger than the first kept slab skips it
    (left empty); reading still yields exactly what was written."""
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    ob.dup(b"a" * 300)
    ob.dup(b"a" * 600)
    assert [len(s) for s in ob.iov] == [512, 1024]
    ob.reset()
    buf, off = ob.alloc(800)  # does not fit in slab 0 (512): goes to slab 1
    assert ob.pos == 1 and ob.iov_len[0] == 0
    buf[off:off + 800] = b"b" * 800
    ob.dup(b"c" * 10)
    assert all_of(ob) == b"b" * 800 + b"c" * 10
    views = ob.iov_range(0, ob.used)
    assert all(len(v) for v in views)


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("dup"), st.integers(0, 2500)),
        st.tuples(st.just("alloc"), st.integers(0, 2500)),
        st.tuples(st.just("recycle"), st.just(0)),
        st.tuples(st.just("reset"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops=ops_strategy, start=st.sampled_from([512, 1024, 4096]))
def test_obuf_model(ops: list[tuple[str, int]], start: int) -> None:
    """Random dup/alloc/recycle/reset against a bytes model."""
    c = SlabCache(min_size=512)
    ob = Obuf(c, start)
    model = b""
    counter = 0
    for op, n in ops:
        if op in ("dup", "alloc"):
            data = bytes((counter + i) % 256 for i in range(n))
            counter += n
            if op == "dup":
                ob.dup(data)
            else:
                buf, off = ob.alloc(n)
                assert len(buf) - off >= n
                buf[off:off + n] = data
            model += data
        elif op == "recycle":
            ob.recycle()
            model = b""
        elif op == "reset":
            ob.reset()
            model = b""
        assert ob.used == len(model)
        assert sum(ob.iov_len) == len(model)
        assert all(0 <= n <= len(s) for n, s in zip(ob.iov_len, ob.iov, strict=True))
        assert all_of(ob) == model
    assert c.used == ob.capacity()
    ob.release()
    assert c.used == 0


@st.composite
def written_obuf(draw: Any) -> tuple[Obuf, bytes]:
    c = SlabCache(min_size=512)
    ob = Obuf(c, draw(st.sampled_from([512, 1024])))
    written = b""
    for n in draw(st.lists(st.integers(0, 1500), max_size=10)):
        data = bytes((len(written) + i) % 253 for i in range(n))
        if draw(st.booleans()):
            ob.dup(data)
        else:
            buf, off = ob.alloc(n)
            buf[off:off + n] = data
        written += data
    return ob, written


@settings(max_examples=60, deadline=None)
@given(ow=written_obuf())
def test_obuf_partial_write_every_n(ow: tuple[Obuf, bytes]) -> None:
    """After a partial write of n bytes, what is left to write from position n
    to the end is exactly written[n:], for every n."""
    ob, written = ow
    end = ob.used
    assert end == len(written)
    for n in range(0, end + 1, max(1, end // 200)):
        views = ob.iov_range(n, end)
        assert joined(views) == written[n:]
        assert all(len(v) > 0 for v in views)
    assert ob.iov_range(end, end) == []


@settings(max_examples=60, deadline=None)
@given(ow=written_obuf(), data=st.data())
def test_obuf_iov_range_any_window(ow: tuple[Obuf, bytes], data: Any) -> None:
    ob, written = ow
    a = data.draw(st.integers(0, len(written)))
    b = data.draw(st.integers(a, len(written)))
    assert joined(ob.iov_range(a, b)) == written[a:b]
    # Views are zero-copy: they look into the slabs themselves.
    for v in ob.iov_range(a, b):
        assert any(v.obj is s for s in ob.iov)


def test_obuf_iov_range_ignores_bytes_past_end() -> None:
    """The writer may append past the announced end: the reader sees only up to it."""
    ob = Obuf(SlabCache(min_size=512), 512)
    ob.dup(b"a" * 300)
    announced = ob.used
    ob.dup(b"b" * 1000)  # appended after the announcement
    assert joined(ob.iov_range(0, announced)) == b"a" * 300
    assert joined(ob.iov_range(100, announced + 50)) == b"a" * 200 + b"b" * 50
