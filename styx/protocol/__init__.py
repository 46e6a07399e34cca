"""The wire format, sans I/O: constants, framing and codecs, the greeting,
chap-sha1, Tarantool's errors and the MessagePack extensions. Bytes in,
values out, and back; nothing here touches a socket or a thread."""
