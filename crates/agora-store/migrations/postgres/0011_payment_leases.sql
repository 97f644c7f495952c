-- A payment request being paid holds a lease: the order it is paying with, chosen before the
-- order is placed, and since when. A confirmation a crash interrupted is found by its old lease
-- and settled from whether that order exists (paid) or not (back to pending).
ALTER TABLE payment_requests ADD COLUMN paying_since_us BIGINT;
CREATE INDEX payment_requests_by_state ON payment_requests (state, paying_since_us);
