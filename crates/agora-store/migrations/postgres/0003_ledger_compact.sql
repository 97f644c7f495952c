-- The ledger in a compact layout: one row per batch holding its records and failures as one
-- fixed-width binary body (the bytes its hash covers), one narrow row per account and batch with
-- the account's balances after that batch, and one row per transfer id the ledger answered for.
-- A batch of 8,190 transfers now writes one body, about one row per account it touched and
-- 8,190 sixteen-byte ids, instead of 8,190 wide rows each entered in three indexes. Apart from
-- one small row per account (its current balances, where its chain of balances ends), every
-- table written per batch is ordered by batch or by time, so a batch's rows land at the end of
-- each b-tree: a commit writes few pages, not a page per account and index.
--
-- The ledger tables hold no production data yet, so they are dropped and created anew rather than
-- converted: a database that ran 0002 loses its ledger history here, and starts an empty chain.

DROP TABLE ledger_records;
DROP TABLE ledger_failures;
DROP TABLE ledger_batches;
DROP TABLE ledger_head;
DROP TABLE ledger_accounts;

-- Accounts, with their balances after the last committed batch.
CREATE TABLE ledger_accounts (
    id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    code BIGINT NOT NULL CHECK (code BETWEEN 0 AND 65535),
    balance_limit TEXT NOT NULL
        CHECK (balance_limit IN ('none', 'debits_must_not_exceed_credits', 'credits_must_not_exceed_debits')),
    debits_pending BIGINT NOT NULL,
    debits_posted BIGINT NOT NULL,
    credits_pending BIGINT NOT NULL,
    credits_posted BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL
);

-- One row per committed batch. `body` is `encode_batch_body(records, failures)` (agora-domain):
-- a record count, the records, 164 bytes each, a failure count, the failures, 26 bytes each,
-- and hash = batch_body_hash(prev_hash, batch, body), prev_hash = the previous batch's hash.
-- Its records are numbered `first_seq` to `last_seq` (an empty range, `first_seq = last_seq + 1`,
-- when it holds only failures); `first_timestamp_us` and `last_timestamp_us` are its first and
-- last record's (NULL without records).
CREATE TABLE ledger_batches (
    batch BIGINT PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    record_count BIGINT NOT NULL,
    failure_count BIGINT NOT NULL,
    first_timestamp_us BIGINT,
    last_timestamp_us BIGINT,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL,
    committed_at_us BIGINT NOT NULL,
    body BYTEA NOT NULL
);
-- A body is already dense binary: keep it out of line without trying to compress it.
ALTER TABLE ledger_batches ALTER COLUMN body SET STORAGE EXTERNAL;
-- Paging records by sequence number, to restore the engine.
CREATE INDEX ledger_batches_by_last_seq ON ledger_batches (last_seq);

-- Each account's balances after every batch that touched it (`account_id` is the id's 16 bytes),
-- with the times of the first and last record of the batch that touched it: the balance as of a
-- moment is this row's when the moment is at or after `last_timestamp_us`, else that of a record
-- of the batch's body. Rows are in batch order, so a batch appends its rows; an account's rows
-- are chained instead: `ordinal` counts them from 1 and `prev_batch` names the batch of the one
-- before (NULL for the first). Derived from the bodies, and checked against them by the
-- verification.
CREATE TABLE ledger_balances (
    batch BIGINT NOT NULL,
    account_id BYTEA NOT NULL,
    ordinal BIGINT NOT NULL,
    prev_batch BIGINT,
    first_timestamp_us BIGINT NOT NULL,
    last_timestamp_us BIGINT NOT NULL,
    debits_pending BIGINT NOT NULL,
    debits_posted BIGINT NOT NULL,
    credits_pending BIGINT NOT NULL,
    credits_posted BIGINT NOT NULL,
    PRIMARY KEY (batch, account_id)
);

-- Every 16th row of each account's chain (ordinal 16, 32, …), by time: the balance as of a moment
-- starts at the first mark after it (or at the account's latest row) and follows `prev_batch`
-- back at most 16 rows. An index per account entered on every batch would write a page per
-- account and batch; this one takes a sixteenth of that.
CREATE TABLE ledger_balance_marks (
    account_id BYTEA NOT NULL,
    first_timestamp_us BIGINT NOT NULL,
    batch BIGINT NOT NULL,
    PRIMARY KEY (account_id, first_timestamp_us)
);
CREATE INDEX ledger_balance_marks_by_batch ON ledger_balance_marks (batch);

-- Where each account's chain ends: the batch of its latest row and how many rows it has. An
-- account that never moved has none. Set from the rows each batch appends.
CREATE TABLE ledger_balance_ends (
    account_id BYTEA PRIMARY KEY,
    batch BIGINT NOT NULL,
    row_count BIGINT NOT NULL
);

-- Every transfer id the ledger answered for durably, with its batch: applied by a client's
-- transfer (not the expiry of a pending one) or failed. An id is one or the other, once.
-- Ids are UUIDv7 bytes, so new ones land at the end of the index.
CREATE TABLE ledger_transfer_ids (
    transfer_id BYTEA PRIMARY KEY,
    batch BIGINT NOT NULL
);
-- The verification reads a batch's ids; batches only grow, so this index is appended to.
CREATE INDEX ledger_transfer_ids_by_batch ON ledger_transfer_ids (batch);

-- The head of the ledger: one row, updated first by every batch append, which serializes
-- appends (a row lock on PostgreSQL; SQLite has one writer anyway) so that batch numbers and
-- sequence numbers are consecutive and each batch links to the one committed before it.
-- `timestamp_us` is the last record's (NULL before the first): records' times only increase.
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    batch BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    timestamp_us BIGINT
);
INSERT INTO ledger_head (id, batch, seq, hash, timestamp_us) VALUES (1, 0, 0, decode(repeat('00', 32), 'hex'), NULL);
