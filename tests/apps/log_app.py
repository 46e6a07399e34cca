"""The app of tests/test_logs.py: a user with a password, and a procedure
that raises."""

from styx import box


def init():
    box.schema.user.create("test", password="secret", if_not_exists=True)
    box.schema.user.grant("test", "execute", "universe", if_not_exists=True)


def fail(text):
    raise ValueError(text)
