-- Marketplace listings, their bookable slots, and full-text search over them (FTS5).
-- Numbered 0004: 0003 belongs to another change; sqlx applies whatever versions exist, in order.
-- Prices are integer minor units of `currency`; times are microseconds since the epoch.

-- `seq` is the rowid the search index refers to: an INTEGER PRIMARY KEY never changes, where an
-- implicit rowid may be renumbered by VACUUM.
CREATE TABLE listings (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
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
    CHECK ((kind = 'product' AND duration_minutes IS NULL)
        OR (kind = 'service' AND stock IS NULL AND duration_minutes > 0))
);
-- Browsing: newest first within a status, by category, by seller.
CREATE INDEX listings_by_status ON listings (status, id);
CREATE INDEX listings_by_category ON listings (status, category, id);
CREATE INDEX listings_by_seller ON listings (seller_org_id, status, id);

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

-- The search index holds copies of the searchable text (external content: it reads the rows of
-- `listings` back by `seq`); the triggers below keep it in step in the same transaction.
-- Porter stemming over unicode61 with diacritics folded: `apples` finds `apple`, `creme` finds `crème`.
CREATE VIRTUAL TABLE listings_search USING fts5 (
    title,
    description,
    category,
    content = 'listings',
    content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER listings_search_insert AFTER INSERT ON listings BEGIN
    INSERT INTO listings_search (rowid, title, description, category)
    VALUES (new.seq, new.title, new.description, new.category);
END;

CREATE TRIGGER listings_search_delete AFTER DELETE ON listings BEGIN
    INSERT INTO listings_search (listings_search, rowid, title, description, category)
    VALUES ('delete', old.seq, old.title, old.description, old.category);
END;

CREATE TRIGGER listings_search_update AFTER UPDATE OF title, description, category ON listings BEGIN
    INSERT INTO listings_search (listings_search, rowid, title, description, category)
    VALUES ('delete', old.seq, old.title, old.description, old.category);
    INSERT INTO listings_search (rowid, title, description, category)
    VALUES (new.seq, new.title, new.description, new.category);
END;
