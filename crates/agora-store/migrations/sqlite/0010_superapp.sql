-- The superapp (issue 6): partners' mini-apps with their versions and bundle files, customers'
-- grants, the OpenID Connect provider's codes and tokens, payment requests confirmed in the
-- portal's cashier, launches (for "recently used" and active users) and the notifications inbox.
-- Secrets (client secrets, codes, access tokens) are stored only as SHA-256 hashes.
-- Times are microseconds since the epoch.

CREATE TABLE miniapps (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    slug TEXT NOT NULL UNIQUE,
    client_secret_hash BLOB NOT NULL,
    -- The version served; NULL until one is approved.
    live_version BIGINT,
    -- The latest version's manifest, for the directory and the console.
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX miniapps_by_org ON miniapps (org_id, id);

CREATE TABLE miniapp_versions (
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    version BIGINT NOT NULL,
    manifest_json TEXT NOT NULL,
    -- SHA-256 of the uploaded zip; '' for an external entry.
    bundle_sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    review_reason TEXT NOT NULL,
    reviewed_by TEXT,
    reviewed_at_us BIGINT,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (app_id, version)
);

CREATE TABLE miniapp_files (
    app_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    path TEXT NOT NULL,
    content_type TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (app_id, version, path),
    FOREIGN KEY (app_id, version) REFERENCES miniapp_versions (app_id, version)
);

-- One row per grant; a revoked grant stays, with its time, and a new grant is a new row.
CREATE TABLE miniapp_grants (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    scopes TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX miniapp_grants_by_user ON miniapp_grants (user_id, app_id);
CREATE INDEX miniapp_grants_by_app ON miniapp_grants (app_id, user_id);

CREATE TABLE oauth_codes (
    code_hash BLOB PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    grant_id TEXT NOT NULL REFERENCES miniapp_grants (id),
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    used_at_us BIGINT
);

CREATE TABLE oauth_tokens (
    token_hash BLOB PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    grant_id TEXT NOT NULL REFERENCES miniapp_grants (id),
    -- The code it was issued for: a second use of that code revokes it.
    code_hash BLOB NOT NULL,
    scopes TEXT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX oauth_tokens_by_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_by_code ON oauth_tokens (code_hash);

CREATE TABLE miniapp_launches (
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    first_at_us BIGINT NOT NULL,
    last_at_us BIGINT NOT NULL,
    launches BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX miniapp_launches_by_user ON miniapp_launches (user_id, last_at_us);

CREATE TABLE payment_requests (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    seller_org_id TEXT NOT NULL REFERENCES organisations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    -- The lines, amount and currency as the server computed them: the cashier shows these.
    doc_json TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    -- `paying` while one confirmation places the order, so a second one cannot pay twice.
    state TEXT NOT NULL CHECK (state IN ('pending', 'paying', 'paid', 'cancelled', 'expired')),
    order_id TEXT,
    -- The instance-signed notification of the outcome (a JWS), once decided.
    notification TEXT,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    decided_at_us BIGINT
);
CREATE INDEX payment_requests_by_app ON payment_requests (app_id, created_at_us);

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    read_at_us BIGINT
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at_us);
CREATE INDEX notifications_by_app ON notifications (app_id, user_id, created_at_us);

-- Which customer a mini-app's pairwise subject id stands for: written when the instance first
-- hands the mini-app that id, so a partner can address only customers who used its app.
CREATE TABLE miniapp_subjects (
    app_id TEXT NOT NULL REFERENCES miniapps (id),
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (app_id, subject)
);
