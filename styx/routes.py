"""Every route of a server, in one place: Tarantool's `iproto_thread_init_routes`.

A route is the list of stops a message makes (cbus.py): at each, a hop
function runs, then the message takes the hop's pipe to the next stop. A
request goes to TX and comes back: `{tx_process_x, to_net}, {net_send_msg,
None}`. The connection's own life (connect, disconnect, destroy) and the
Kharon's trip are routes too.

`wire` is the one step that joins the two worlds. For each iproto thread it
registers the thread's cbus endpoint, makes the pipes both ways, pairs TX's
handlers (tx/process.py) with the thread's (net/thread.py), and hands each
side its link: the thread a `TxLink` (its view of TX), TX a `NetLink` (its
view of that thread). Afterwards neither side needs anything from the other
that is not in its link, and net/ and tx/ still never import each other.

`wire_river` gives the river (styx/river/, the live page) its own lines to
TX and each iproto thread: a pipe each way per thread, apart from those it
shows.

`wire_wal` is one more link, TX to the WAL thread (Tarantool's `wal_init`
and its `tx_prio` pipe back): a batch's route is `{wal_write, to_tx},
{tx_complete_batch, None}`, and TX's end of it is a `Journal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from . import cbus
from .net.thread import NetThread, TxLink
from .river import RiverLink, Tap
from .tx import process
from .tx.kharon import end_push
from .tx.thread import NetLink, Tx
from .wal import Journal, WalThread

__all__ = ["wire", "wire_river", "wire_wal"]


def wire(tx: Tx, nets: Sequence[NetThread], bus: cbus.Bus, net_msg_max: int) -> None:
    """Link TX and every iproto thread (each thread's `loop` is set)."""
    assert tx.endpoint is not None and tx.feed is not None, "tx.bind() comes first"
    handlers = process.handlers(tx)
    error, connect, disconnect, destroy = (
        partial(f, tx) for f in (process.process_error, process.process_connect,
                                 process.process_disconnect, process.process_destroy))
    # A pipe flushes early once half of net_msg_max is staged in it.
    max_input = max(1, net_msg_max // 2)
    for net in nets:
        # One Feed per loop: with 0 threads the net role shares TX's.
        feed = tx.feed if net.loop is tx.loop else cbus.Feed(net.loop)
        endpoint = bus.register(cbus.Endpoint(net.name, net.loop, feed=feed))
        net.bind(endpoint)
        to_tx = cbus.Pipe(tx.endpoint, feed, max_input)
        to_net = cbus.Pipe(endpoint, tx.feed, max_input)

        send_msg = cbus.Hop(net.send_msg, None)  # every request's last stop
        net.tx = TxLink(
            pipe=to_tx,
            routes={t: (cbus.Hop(handler, to_net), send_msg) for t, handler in handlers.items()},
            error=(cbus.Hop(error, to_net), send_msg),
            connect=(cbus.Hop(net.attach, to_tx),
                     cbus.Hop(connect, to_net),
                     cbus.Hop(net.send_greeting, None)),
            disconnect=(cbus.Hop(disconnect, to_net),
                        cbus.Hop(net.finish_disconnect, None)),
            destroy=(cbus.Hop(destroy, to_net),
                     cbus.Hop(net.finish_destroy, None)),
            schema_version=lambda: tx.schema.version,
        )
        tx.nets.append(NetLink(
            index=net.index,
            pipe=to_net,
            back=to_tx,
            kharon_route=(cbus.Hop(net.process_push, to_tx),
                          cbus.Hop(end_push, None)),
            discard_route=(cbus.Hop(net.discard_input, None),),
            stats=net.stats,
            latency_stats=net.latency_stats,
            set_msg_max=net.set_msg_max,
            set_readahead=net.set_readahead,
            busy=net.busy,
            close_all=net.close_all,
        ))


def wire_wal(tx_endpoint: cbus.Endpoint, tx_feed: cbus.Feed, wal: WalThread, bus: cbus.Bus) -> Journal:
    """Link TX and the WAL: its endpoint lives in `wal.loop` (its own
    thread, or TX's loop with nothing to write). Returns TX's journal."""
    assert wal.loop is not None, "the WAL's loop comes first"
    feed = tx_feed if wal.loop is tx_endpoint.loop else cbus.Feed(wal.loop)
    wal.endpoint = bus.register(cbus.Endpoint(wal.name, wal.loop, feed=feed))
    to_wal = cbus.Pipe(wal.endpoint, tx_feed)
    to_tx = cbus.Pipe(tx_endpoint, feed)
    journal = Journal(to_wal, (), to_tx)
    journal.route = (cbus.Hop(wal.write, to_tx), cbus.Hop(journal.complete, None))
    journal.end_rollback = wal.end_rollback
    return journal


def wire_river(tx: Tx, nets: Sequence[NetThread], loop: Any, iproto_threads: int) -> RiverLink:
    """The river's lines to TX and every iproto thread (styx/river/): its own
    endpoint in `loop` and a pipe each way per thread, so its sampling calls
    never ride (nor count in) the pipes it shows."""
    assert tx.endpoint is not None and tx.feed is not None
    feed = cbus.Feed(loop)
    endpoint = cbus.Endpoint("river", loop, feed=feed)
    return RiverLink(
        endpoint=endpoint,
        tx=Tap(cbus.Pipe(tx.endpoint, feed), cbus.Pipe(endpoint, tx.feed), tx.river_sample),
        nets=[Tap(cbus.Pipe(net.endpoint, feed), cbus.Pipe(endpoint, net.feed), net.river_sample) for net in nets],
        iproto_threads=iproto_threads,
    )
