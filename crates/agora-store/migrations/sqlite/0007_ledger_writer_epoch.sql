-- Fencing for the ledger's single writer. A writer claims the ledger at start-up by raising
-- `writer_epoch` and remembers the value; every batch it appends first checks, under the head
-- row's lock, that the epoch is still its own. A second writer (another server on the same
-- PostgreSQL database, or a second process on the same SQLite file) therefore fences out the
-- first: the older one's next append is refused instead of writing from a stale ledger.
ALTER TABLE ledger_head ADD COLUMN writer_epoch BIGINT NOT NULL DEFAULT 0;
