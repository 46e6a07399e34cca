from tests.iproto import Raw


def test_ping_and_call(server):
    with Raw(server.port) as c:
        c.request(0x40, 5)
        h, b = c.reply()
        assert h == {0: 0, 1: 5, 5: server.tx.schema.version} and b == {}
        h, b = c.call("echo", 1, "a", sync=6)
        assert h[1] == 6 and b == {0x30: [1, "a"]}
