-- The ledger: accounts with their current balances, every applied change in order,
-- the transfer ids that failed, and a hash chain over the batches the single writer commits.
-- Amounts and balances are integer minor units; ids are their text form (acc_…, trf_…);
-- flags are 0 or 1. The writer checks the ledger's rules in memory before it writes, so the
-- hot tables carry no foreign keys: each would cost a lookup per row of every batch.

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

-- Every applied change, in the order the ledger applied it (`seq`, consecutive from 1), with
-- the transfer as the client asked for it, what actually moved (`amount`), and both accounts'
-- balances right after, so that a balance can be read as of any moment without replaying.
-- `pending_id` is set for post_pending and void_pending, `timeout_seconds` for pending.
-- `cause` is 'transfer' for a client's transfer and 'expiry' for a pending one the ledger released.
-- `debit_account_key` and `credit_account_key` are 64-bit keys derived from the account ids for
-- the per-account indexes: eight bytes index far faster than a 36-character id. Two accounts may
-- share a key, so a query by key also compares the id.
CREATE TABLE ledger_records (
    -- INTEGER PRIMARY KEY makes `seq` the rowid: no separate index to maintain.
    seq INTEGER PRIMARY KEY,
    batch BIGINT NOT NULL,
    transfer_id TEXT NOT NULL,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    debit_account_key BIGINT NOT NULL,
    credit_account_key BIGINT NOT NULL,
    requested_amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    code BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('single', 'pending', 'post_pending', 'void_pending')),
    pending_id TEXT,
    timeout_seconds BIGINT,
    linked BIGINT NOT NULL CHECK (linked IN (0, 1)),
    cause TEXT NOT NULL CHECK (cause IN ('transfer', 'expiry')),
    amount BIGINT NOT NULL,
    timestamp_us BIGINT NOT NULL UNIQUE,
    debit_debits_pending BIGINT NOT NULL,
    debit_debits_posted BIGINT NOT NULL,
    debit_credits_pending BIGINT NOT NULL,
    debit_credits_posted BIGINT NOT NULL,
    credit_debits_pending BIGINT NOT NULL,
    credit_debits_posted BIGINT NOT NULL,
    credit_credits_pending BIGINT NOT NULL,
    credit_credits_posted BIGINT NOT NULL
);
-- A transfer id is applied once, and a pending one expires at most once.
CREATE UNIQUE INDEX ledger_records_by_transfer ON ledger_records (transfer_id, cause);
-- An account's history and its balance as of a moment, on either side of a transfer.
CREATE INDEX ledger_records_by_debit_account ON ledger_records (debit_account_key, timestamp_us);
CREATE INDEX ledger_records_by_credit_account ON ledger_records (credit_account_key, timestamp_us);

-- Transfer ids that failed, and why; a failed id stays failed. `result_field` names the
-- differing field when `result` is 'exists_with_different_field'. `batch_index` keeps the
-- order within the batch, which the batch's hash covers.
CREATE TABLE ledger_failures (
    transfer_id TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    result_field TEXT,
    timestamp_us BIGINT NOT NULL,
    batch BIGINT NOT NULL,
    batch_index BIGINT NOT NULL,
    UNIQUE (batch, batch_index)
);

-- One row per committed batch: which records it holds (`first_seq` to `last_seq`; an empty range,
-- `first_seq = last_seq + 1`, when it holds only failures), and the hash chain:
-- hash = batch_hash(prev_hash, batch, its records, its failures), prev_hash = the previous batch's hash.
CREATE TABLE ledger_batches (
    batch INTEGER PRIMARY KEY,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    record_count BIGINT NOT NULL,
    failure_count BIGINT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    committed_at_us BIGINT NOT NULL
);

-- The head of the ledger: one row, updated first by every batch append, which serializes
-- appends (a row lock on PostgreSQL; SQLite has one writer anyway) so that batch numbers and
-- sequence numbers are consecutive and each batch links to the one committed before it.
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    batch BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO ledger_head (id, batch, seq, hash) VALUES (1, 0, 0, zeroblob(32));
