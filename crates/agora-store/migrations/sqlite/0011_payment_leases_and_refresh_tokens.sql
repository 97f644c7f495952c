-- A payment request being paid holds a lease: the order it is paying with, chosen before the
-- order is placed, and since when. A confirmation a crash interrupted is found by its old lease
-- and settled from whether that order exists (paid) or not (back to pending).
ALTER TABLE payment_requests ADD COLUMN paying_since_us BIGINT;
CREATE INDEX payment_requests_by_state ON payment_requests (state, paying_since_us);

-- Refresh tokens live beside access tokens, told apart by `kind`; a refresh token is spent when
-- used (rotation), and the whole sign-in it belongs to (`code_hash`) is revoked if it comes back.
ALTER TABLE oauth_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'access';
