-- Marketplace listings, their bookable slots, and full-text search over them (tsvector + GIN).
-- Numbered 0004: 0003 belongs to another change; sqlx applies whatever versions exist, in order.
-- Prices are integer minor units of `currency`; times are microseconds since the epoch.

CREATE TABLE listings (
    seq BIGSERIAL NOT NULL UNIQUE,
    id TEXT PRIMARY KEY,
    seller_org_id TEXT NOT NULL REFERENCES organisations (id),
    kind TEXT NOT NULL CHECK (kind IN ('product', 'service')),
    -- Products: units left, NULL for unlimited. Services: always NULL.
    stock BIGINT CHECK (stock IS NULL OR stock >= 0),
    -- Services: how long one booking lasts. Products: always NULL.
    duration_minutes BIGINT,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    category TEXT NOT NULL,
    price BIGINT NOT NULL CHECK (price >= 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'archived')),
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    -- The searchable text, weighted: title (A) over category (B) over description (C). English
    -- stemming, as Porter stemming on SQLite; `/` in categories becomes a space so that
    -- `groceries/dairy` is two words, not one path.
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', replace(category, '/', ' ')), 'B')
        || setweight(to_tsvector('english', description), 'C')
    ) STORED,
    CHECK ((kind = 'product' AND duration_minutes IS NULL)
        OR (kind = 'service' AND stock IS NULL AND duration_minutes > 0))
);
-- Browsing: newest first within a status, by category, by seller.
CREATE INDEX listings_by_status ON listings (status, id);
CREATE INDEX listings_by_category ON listings (status, category text_pattern_ops, id);
CREATE INDEX listings_by_seller ON listings (seller_org_id, status, id);
CREATE INDEX listings_search_index ON listings USING GIN (search);

-- Bookable times of service listings. A slot is booked by at most one order: booking is an
-- UPDATE that only succeeds while `booked_by_order` is NULL.
CREATE TABLE listing_slots (
    id TEXT PRIMARY KEY,
    listing_id TEXT NOT NULL REFERENCES listings (id),
    starts_at_us BIGINT NOT NULL,
    ends_at_us BIGINT NOT NULL,
    booked_by_order TEXT,
    booked_at_us BIGINT,
    created_at_us BIGINT NOT NULL,
    CHECK (ends_at_us > starts_at_us),
    UNIQUE (listing_id, starts_at_us)
);
