-- Coalitions (issue 5). A coalition is an organisation (so it can own pooled datasets, be a
-- party to protocols and hold a treasury account) with a charter and member organisations.
-- The rules live in `agora-coalition`; most records are kept as JSON documents that crate's
-- types read back, beside the columns that lookups need. Times are microseconds since the epoch.

CREATE TABLE coalitions (
    org_id TEXT PRIMARY KEY REFERENCES organisations (id),
    founded_by TEXT NOT NULL REFERENCES organisations (id),
    -- Purpose, query purposes, and the charter in force with its version.
    doc_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);

CREATE TABLE coalition_members (
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    org_id TEXT NOT NULL REFERENCES organisations (id),
    role TEXT NOT NULL CHECK (role IN ('steward', 'member')),
    stake BIGINT NOT NULL,
    joined_at_us BIGINT NOT NULL,
    PRIMARY KEY (coalition_id, org_id)
);
CREATE INDEX coalition_members_by_org ON coalition_members (org_id, coalition_id);

CREATE TABLE coalition_goals (
    id TEXT PRIMARY KEY,
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    doc_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX coalition_goals_by_coalition ON coalition_goals (coalition_id, id);

CREATE TABLE coalition_pledges (
    id TEXT PRIMARY KEY,
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    member_org_id TEXT NOT NULL REFERENCES organisations (id),
    doc_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX coalition_pledges_by_coalition ON coalition_pledges (coalition_id, id);

-- Every fulfilment report, for progress over time.
CREATE TABLE coalition_fulfilments (
    pledge_id TEXT NOT NULL REFERENCES coalition_pledges (id),
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    quantity BIGINT NOT NULL,
    note TEXT NOT NULL,
    reported_at_us BIGINT NOT NULL
);
CREATE INDEX coalition_fulfilments_by_coalition ON coalition_fulfilments (coalition_id, reported_at_us);

-- A member's delegation of its vote; topic '' is every topic.
CREATE TABLE coalition_delegations (
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    from_org_id TEXT NOT NULL REFERENCES organisations (id),
    topic TEXT NOT NULL,
    to_org_id TEXT NOT NULL REFERENCES organisations (id),
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (coalition_id, from_org_id, topic)
);

-- A proposal: its frozen electorate and charter, actions, tally and executions are in doc_json;
-- `revision` is bumped by every change, which locks the row for the rest of the transaction.
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    number BIGINT NOT NULL,
    status TEXT NOT NULL,
    closes_at_us BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    doc_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX proposals_by_number ON proposals (coalition_id, number);
CREATE INDEX proposals_by_status ON proposals (status, closes_at_us);

-- Every ballot ever cast, in order; a member's latest one counts.
CREATE TABLE proposal_ballots (
    proposal_id TEXT NOT NULL REFERENCES proposals (id),
    seq BIGINT NOT NULL,
    voter_org_id TEXT NOT NULL REFERENCES organisations (id),
    doc_json TEXT NOT NULL,
    cast_at_us BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, seq)
);

-- Pooled statistics a passed proposal published.
CREATE TABLE coalition_publications (
    id TEXT PRIMARY KEY,
    coalition_id TEXT NOT NULL REFERENCES coalitions (org_id),
    proposal_id TEXT NOT NULL REFERENCES proposals (id),
    doc_json TEXT NOT NULL,
    published_at_us BIGINT NOT NULL
);
CREATE INDEX coalition_publications_by_coalition ON coalition_publications (coalition_id, published_at_us);
