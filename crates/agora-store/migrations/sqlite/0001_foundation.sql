-- Foundation: identity, the audit chain, the event outbox, idempotency keys.
-- Released migrations are never edited; change the schema with a new file.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('operator', 'partner')),
    status TEXT NOT NULL CHECK (status IN ('active', 'pending')),
    created_at_us BIGINT NOT NULL
);

-- At most one operator organisation.
CREATE UNIQUE INDEX organisations_one_operator ON organisations (kind) WHERE kind = 'operator';

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE memberships (
    org_id TEXT NOT NULL REFERENCES organisations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    name TEXT NOT NULL,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT
);
CREATE INDEX api_tokens_by_org ON api_tokens (org_id, id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id),
    org_id TEXT REFERENCES organisations (id),
    csrf_token TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);

-- One-time sign-in links: the first owner's, and new members' who have no password yet.
CREATE TABLE signin_links (
    secret_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    expires_at_us BIGINT NOT NULL,
    used_at_us BIGINT
);

CREATE TABLE signin_failures (
    email TEXT NOT NULL,
    failed_at_us BIGINT NOT NULL
);
CREATE INDEX signin_failures_by_email ON signin_failures (email, failed_at_us);

-- The head of the audit chain: one row, locked by every append so that entries
-- get consecutive numbers and events get their outbox positions in commit order.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    entry_hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_entries (
    seq BIGINT PRIMARY KEY,
    at_us BIGINT NOT NULL,
    request_id TEXT,
    actor_user_id TEXT,
    actor_org_id TEXT,
    credential TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    subject_org_id TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    entry_hash BLOB NOT NULL
);
CREATE INDEX audit_entries_by_actor_org ON audit_entries (actor_org_id, seq);
CREATE INDEX audit_entries_by_subject_org ON audit_entries (subject_org_id, seq);

CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    head_hash BLOB NOT NULL,
    at_us BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature BLOB NOT NULL
);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    org_id TEXT,
    time_us BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_by_org ON events (org_id, seq);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    response TEXT,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE TABLE instance_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
