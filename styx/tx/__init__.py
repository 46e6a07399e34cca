"""The TX thread (the world of the living): sessions, one handler per request
type, fibers, replies written into obufs, the Kharon, watchers, the app's
procedures and the `box` API. Only TX touches box/. Never imports net/."""
