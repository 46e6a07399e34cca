"""The iproto threads (the world of the dead): accepting, connections, ibufs,
framing and decoding, streams, backpressure, vectored writes. Never imports
tx/: it meets TX only through cbus messages (see styx/iproto_msg.py)."""
