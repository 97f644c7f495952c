-- Data-sharing protocols and governed queries (issue 3). A protocol's documents are kept as the
-- canonical JSON its content hash covers; approvals bind to that hash. Times are microseconds
-- since the epoch.

CREATE TABLE protocols (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    provider_org_id TEXT NOT NULL REFERENCES organisations (id),
    -- The newest version, and the one queries run under (none until a version is active).
    latest_version BIGINT NOT NULL CHECK (latest_version >= 1),
    active_version BIGINT,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX protocols_by_name ON protocols (provider_org_id, name);

CREATE TABLE protocol_versions (
    protocol_id TEXT NOT NULL REFERENCES protocols (id),
    version BIGINT NOT NULL CHECK (version >= 1),
    document_json TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('draft', 'proposed', 'active', 'paused', 'revoked', 'expired', 'superseded')),
    -- JSON arrays of organisation ids.
    approvals_json TEXT NOT NULL,
    paused_by_json TEXT NOT NULL,
    -- Why the engine paused it (a dataset it uses was deleted); null when a party paused it.
    suspended_reason TEXT,
    not_after_us BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (protocol_id, version)
);
CREATE INDEX protocol_versions_expiring ON protocol_versions (state, not_after_us);

-- Every organisation that is or was a party to some version, to list a party's protocols.
CREATE TABLE protocol_parties (
    protocol_id TEXT NOT NULL REFERENCES protocols (id),
    org_id TEXT NOT NULL REFERENCES organisations (id),
    PRIMARY KEY (protocol_id, org_id)
);
CREATE INDEX protocol_parties_by_org ON protocol_parties (org_id, protocol_id);

-- Every governed query, answered or refused.
CREATE TABLE queries (
    id TEXT PRIMARY KEY,
    consumer_org_id TEXT NOT NULL REFERENCES organisations (id),
    actor_user_id TEXT,
    purpose TEXT NOT NULL,
    sql_text TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('answered', 'refused', 'failed')),
    -- For a refusal or failure: the rule or limit, and the message the analyst got.
    rule TEXT,
    message TEXT,
    rows_returned BIGINT NOT NULL,
    rows_suppressed BIGINT NOT NULL,
    -- The engine's report: protocol versions, datasets, rules applied, suppression by reason.
    report_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX queries_by_consumer ON queries (consumer_org_id, created_at_us);

-- Which protocol versions (and so which providers' data) each query used.
CREATE TABLE query_protocols (
    query_id TEXT NOT NULL REFERENCES queries (id),
    protocol_id TEXT NOT NULL REFERENCES protocols (id),
    version BIGINT NOT NULL,
    provider_org_id TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (query_id, protocol_id)
);
CREATE INDEX query_protocols_by_provider ON query_protocols (provider_org_id, created_at_us);
CREATE INDEX query_protocols_by_protocol ON query_protocols (protocol_id, created_at_us);

-- Released groups, for the differencing defence: a new result's groups are compared with the
-- same consumer's recent ones.
CREATE TABLE query_released_groups (
    consumer_org_id TEXT NOT NULL,
    group_key TEXT NOT NULL,
    counts_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX query_released_groups_by_consumer ON query_released_groups (consumer_org_id, created_at_us);
