"""TX's data: spaces and indexes over MessagePack tuples, field types and key
order, UPDATE/UPSERT operations, transactions, the schema with its system
spaces, users and privileges. Pure data structures: no I/O, no threads."""
