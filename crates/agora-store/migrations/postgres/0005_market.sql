-- The marketplace's own state (decision 0005). Money lives in the ledger; these tables hold what
-- the marketplace decided: orders, refunds, payouts, rules, settings, points lots, settlement
-- windows and obligations, and the sandbox provider's payments. Each is a JSON document
-- (the `agora-market` type, serialized) under a kind and an id, with the few columns queries
-- select on: its owner (a customer or an organisation), a status, and a sort key (an expiry
-- for points lots).

CREATE TABLE market_documents (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT,
    status TEXT,
    sort_key BIGINT,
    body TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX market_documents_by_owner ON market_documents (kind, owner, id);
CREATE INDEX market_documents_by_sort_key ON market_documents (kind, sort_key);

-- The organisations selling on each order, so that a seller finds its orders.
CREATE TABLE market_order_sellers (
    order_id TEXT NOT NULL,
    seller_org_id TEXT NOT NULL,
    PRIMARY KEY (seller_org_id, order_id)
);

-- Every marketplace step and its posting plan: written `planned` before the plan goes to the
-- ledger, finished `done` (with the new state, in one transaction) or `refused` after. A step
-- still `planned` at start-up is resumed by submitting its plan again: its transfer ids are
-- derived from the step's key, so the ledger applies it at most once.
CREATE TABLE market_steps (
    step_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    plan TEXT NOT NULL,
    -- The step's input, enough to carry it out again after a crash.
    input TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('planned', 'done', 'refused')),
    reason TEXT,
    created_at_us BIGINT NOT NULL,
    finished_at_us BIGINT
);
CREATE INDEX market_steps_by_status ON market_steps (status, created_at_us);

-- Notifications from payment providers already received: a second delivery is recognised.
CREATE TABLE market_provider_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    received_at_us BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);
