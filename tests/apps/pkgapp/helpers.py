"""A module an app imports from its own folder."""


def double(x):
    return 2 * x
