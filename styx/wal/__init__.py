"""The write-ahead log: TX's journal (journal.py: entries, the group
commit), the WAL thread (thread.py) and its writer (writer.py), over the
file format of styx/xlog. It knows cbus and the files, not box nor TX."""

from .journal import CascadeRollback, Journal, JournalEntry, RedoRow, WalBatch
from .thread import WalThread
from .writer import WAL_MODES, WalWriter

__all__ = ["CascadeRollback", "Journal", "JournalEntry", "RedoRow", "WalBatch", "WalThread", "WAL_MODES", "WalWriter"]
