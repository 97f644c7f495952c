//! Marketplace listings and their bookable slots: storage, browsing, full-text search, and the
//! two atomic steps an order takes inside its transaction (taking stock, booking a slot).
//!
//! Search runs on each backend's own engine: FTS5 on SQLite (an external-content index kept in
//! step by triggers), a weighted `tsvector` with a GIN index on PostgreSQL. Both receive only a
//! query rebuilt from [`SearchQuery`]'s parsed words, always as a bound parameter.

use agora_domain::ledger::Currency;
use agora_domain::listing::{
    Category, Description, KindName, Listing, ListingKind, ListingStatus, SearchQuery, Slot, Title,
};
use agora_domain::{Error, ListingId, OrderId, OrgId, Result, SlotId, Timestamp};
use sqlx::any::AnyRow;

use crate::{Backend, Store, WriteTx, column, db_error, get, optional_column};

const LISTING_COLUMNS: &str = "l.id, l.seller_org_id, l.kind, l.stock, l.duration_minutes, l.title, l.description, \
     l.category, l.price, l.currency, l.status, l.created_at_us, l.updated_at_us";
const SLOT_COLUMNS: &str = "id, listing_id, starts_at_us, ends_at_us, booked_by_order";

/// Which listings to browse or search; every field narrows the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingFilter {
    /// The category and everything below it.
    pub category: Option<Category>,
    pub seller: Option<OrgId>,
    pub kind: Option<KindName>,
    /// Lowest price, in minor units, inclusive.
    pub price_min: Option<i64>,
    /// Highest price, in minor units, inclusive.
    pub price_max: Option<i64>,
    pub currency: Option<Currency>,
    pub status: ListingStatus,
}

impl Default for ListingFilter {
    fn default() -> Self {
        Self {
            category: None,
            seller: None,
            kind: None,
            price_min: None,
            price_max: None,
            currency: None,
            status: ListingStatus::Active,
        }
    }
}

/// What to change in a listing; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListingChanges {
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub category: Option<Category>,
    pub price: Option<i64>,
    pub currency: Option<Currency>,
    /// Products only: `Some(None)` makes the stock unlimited.
    pub stock: Option<Option<u32>>,
    /// Services only.
    pub duration_minutes: Option<u32>,
    pub status: Option<ListingStatus>,
}

/// A value to bind to a statement built from optional parts.
enum Bind {
    Text(String),
    Int(i64),
}

/// A statement's conditions and their parameters, numbered as they are added.
struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    fn new() -> Self {
        Self {
            clauses: Vec::new(),
            binds: Vec::new(),
        }
    }

    /// The number the next bound parameter gets.
    fn next(&self) -> usize {
        self.binds.len() + 1
    }

    fn text(&mut self, clause: impl FnOnce(usize) -> String, value: String) {
        self.clauses.push(clause(self.next()));
        self.binds.push(Bind::Text(value));
    }

    fn int(&mut self, clause: impl FnOnce(usize) -> String, value: i64) {
        self.clauses.push(clause(self.next()));
        self.binds.push(Bind::Int(value));
    }

    fn filter(&mut self, filter: &ListingFilter) {
        self.text(
            |n| format!("l.status = ${n}"),
            filter.status.as_str().to_owned(),
        );
        if let Some(category) = &filter.category {
            // Invariant (Category): no `%`, `_` or `\` in a category, so the pattern matches
            // exactly the category and what lies below it.
            let n = self.next();
            self.clauses
                .push(format!("(l.category = ${n} OR l.category LIKE ${})", n + 1));
            self.binds.push(Bind::Text(category.as_str().to_owned()));
            self.binds.push(Bind::Text(format!("{category}/%")));
        }
        if let Some(seller) = filter.seller {
            self.text(|n| format!("l.seller_org_id = ${n}"), seller.to_string());
        }
        if let Some(kind) = filter.kind {
            self.text(|n| format!("l.kind = ${n}"), kind.as_str().to_owned());
        }
        if let Some(price_min) = filter.price_min {
            self.int(|n| format!("l.price >= ${n}"), price_min);
        }
        if let Some(price_max) = filter.price_max {
            self.int(|n| format!("l.price <= ${n}"), price_max);
        }
        if let Some(currency) = filter.currency {
            self.text(|n| format!("l.currency = ${n}"), currency.code().to_owned());
        }
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }

    fn bind_all<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(value) => query.bind(*value),
            };
        }
        query
    }
}

fn listing_from_row(row: &AnyRow) -> Result<Listing> {
    let kind: KindName = column(row, "kind")?;
    let kind = match kind {
        KindName::Product => ListingKind::Product {
            stock: get::<Option<i64>>(row, "stock")?
                .map(|stock| {
                    u32::try_from(stock)
                        .map_err(|_| Error::Internal(format!("column stock holds {stock}")))
                })
                .transpose()?,
        },
        KindName::Service => {
            let minutes: Option<i64> = get(row, "duration_minutes")?;
            ListingKind::Service {
                duration_minutes: minutes.and_then(|m| u32::try_from(m).ok()).ok_or_else(|| {
                    Error::Internal(format!("column duration_minutes holds {minutes:?}"))
                })?,
            }
        }
    };
    Ok(Listing {
        id: column(row, "id")?,
        seller: column(row, "seller_org_id")?,
        kind,
        title: column(row, "title")?,
        description: column(row, "description")?,
        category: column(row, "category")?,
        price: get(row, "price")?,
        currency: column(row, "currency")?,
        status: column(row, "status")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn slot_from_row(row: &AnyRow) -> Result<Slot> {
    Ok(Slot {
        id: column(row, "id")?,
        listing_id: column(row, "listing_id")?,
        starts_at: Timestamp::from_micros(get(row, "starts_at_us")?),
        ends_at: Timestamp::from_micros(get(row, "ends_at_us")?),
        booked_by_order: optional_column(row, "booked_by_order")?,
    })
}

fn stock_column(kind: &ListingKind) -> (Option<i64>, Option<i64>) {
    match kind {
        ListingKind::Product { stock } => (stock.map(i64::from), None),
        ListingKind::Service { duration_minutes } => (None, Some(i64::from(*duration_minutes))),
    }
}

impl Store {
    pub async fn listing(&self, listing_id: ListingId) -> Result<Option<Listing>> {
        let sql = format!("SELECT {LISTING_COLUMNS} FROM listings l WHERE l.id = $1");
        let row = sqlx::query(&sql)
            .bind(listing_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(listing_from_row).transpose()
    }

    /// Listings that pass `filter`, newest first, those older than `before` when given, at most `limit`.
    pub async fn browse_listings(
        &self,
        filter: &ListingFilter,
        before: Option<ListingId>,
        limit: u32,
    ) -> Result<Vec<Listing>> {
        let mut conditions = Conditions::new();
        conditions.filter(filter);
        if let Some(before) = before {
            conditions.text(|n| format!("l.id < ${n}"), before.to_string());
        }
        let sql = format!(
            "SELECT {LISTING_COLUMNS} FROM listings l WHERE {} ORDER BY l.id DESC LIMIT ${}",
            conditions.sql(),
            conditions.next()
        );
        let rows = conditions
            .bind_all(sqlx::query(&sql))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(listing_from_row).collect()
    }

    /// Listings that match `query` and pass `filter`, best match first (then newest), skipping
    /// `offset`, at most `limit`.
    ///
    /// Titles weigh most, then categories, then descriptions.
    pub async fn search_listings(
        &self,
        query: &SearchQuery,
        filter: &ListingFilter,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Listing>> {
        let mut conditions = Conditions::new();
        let sql = match self.backend {
            Backend::Sqlite => {
                conditions.text(|n| format!("listings_search MATCH ${n}"), query.to_fts5());
                conditions.filter(filter);
                // bm25 is lower for better matches; the weights follow the index's columns
                // (title, description, category).
                format!(
                    "SELECT {LISTING_COLUMNS} FROM listings_search JOIN listings l ON l.seq = listings_search.rowid \
                     WHERE {} ORDER BY bm25(listings_search, 10.0, 1.0, 4.0), l.id DESC LIMIT ${} OFFSET ${}",
                    conditions.sql(),
                    conditions.next(),
                    conditions.next() + 1
                )
            }
            Backend::Postgres => {
                let n = conditions.next();
                conditions.text(
                    |n| format!("l.search @@ websearch_to_tsquery('english', ${n})"),
                    query.to_websearch(),
                );
                conditions.filter(filter);
                format!(
                    "SELECT {LISTING_COLUMNS} FROM listings l WHERE {} \
                     ORDER BY ts_rank(l.search, websearch_to_tsquery('english', ${n})) DESC, l.id DESC LIMIT ${} OFFSET ${}",
                    conditions.sql(),
                    conditions.next(),
                    conditions.next() + 1
                )
            }
        };
        let rows = conditions
            .bind_all(sqlx::query(&sql))
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(listing_from_row).collect()
    }

    /// The categories of active listings with how many each holds, in name order, at most `limit`.
    pub async fn listing_categories(&self, limit: u32) -> Result<Vec<(Category, i64)>> {
        let rows = sqlx::query(
            "SELECT category, COUNT(*) AS listings FROM listings WHERE status = 'active' \
             GROUP BY category ORDER BY category LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((column(row, "category")?, get(row, "listings")?)))
            .collect()
    }

    pub async fn slot(&self, slot_id: SlotId) -> Result<Option<Slot>> {
        let sql = format!("SELECT {SLOT_COLUMNS} FROM listing_slots WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(slot_id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(slot_from_row).transpose()
    }

    /// A listing's free slots that start at or after `from`, by start time, those after `after`
    /// (a start time and slot id) when given, at most `limit`.
    pub async fn free_slots(
        &self,
        listing_id: ListingId,
        from: Timestamp,
        after: Option<(Timestamp, SlotId)>,
        limit: u32,
    ) -> Result<Vec<Slot>> {
        let (after_start, after_id) = match after {
            Some((start, id)) => (start.as_micros(), id.to_string()),
            None => (i64::MIN, String::new()),
        };
        let sql = format!(
            "SELECT {SLOT_COLUMNS} FROM listing_slots \
             WHERE listing_id = $1 AND booked_by_order IS NULL AND starts_at_us >= $2 \
             AND (starts_at_us > $3 OR (starts_at_us = $4 AND id > $5)) \
             ORDER BY starts_at_us, id LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(listing_id.to_string())
            .bind(from.as_micros())
            .bind(after_start)
            .bind(after_start)
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(slot_from_row).collect()
    }
}

impl WriteTx {
    pub async fn insert_listing(&mut self, listing: &Listing) -> Result<()> {
        let (stock, duration) = stock_column(&listing.kind);
        sqlx::query(
            "INSERT INTO listings (id, seller_org_id, kind, stock, duration_minutes, title, description, category, \
             price, currency, status, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(listing.id.to_string())
        .bind(listing.seller.to_string())
        .bind(listing.kind.name().as_str())
        .bind(stock)
        .bind(duration)
        .bind(listing.title.as_str())
        .bind(listing.description.as_str())
        .bind(listing.category.as_str())
        .bind(listing.price)
        .bind(listing.currency.code())
        .bind(listing.status.as_str())
        .bind(listing.created_at.as_micros())
        .bind(listing.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Reads a listing inside the transaction (an order reads the price it charges here).
    pub async fn listing(&mut self, listing_id: ListingId) -> Result<Option<Listing>> {
        let sql = format!("SELECT {LISTING_COLUMNS} FROM listings l WHERE l.id = $1");
        let row = sqlx::query(&sql)
            .bind(listing_id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(listing_from_row).transpose()
    }

    /// Changes the fields `changes` names, and only those, so that a change of title never
    /// writes back a stock that an order took meanwhile. The caller checks that the fields fit
    /// the listing's kind; the database's checks refuse what does not.
    pub async fn update_listing(
        &mut self,
        listing_id: ListingId,
        changes: &ListingChanges,
        at: Timestamp,
    ) -> Result<()> {
        let mut sets = Conditions::new();
        if let Some(title) = &changes.title {
            sets.text(|n| format!("title = ${n}"), title.as_str().to_owned());
        }
        if let Some(description) = &changes.description {
            sets.text(
                |n| format!("description = ${n}"),
                description.as_str().to_owned(),
            );
        }
        if let Some(category) = &changes.category {
            sets.text(|n| format!("category = ${n}"), category.as_str().to_owned());
        }
        if let Some(price) = changes.price {
            sets.int(|n| format!("price = ${n}"), price);
        }
        if let Some(currency) = changes.currency {
            sets.text(|n| format!("currency = ${n}"), currency.code().to_owned());
        }
        match changes.stock {
            Some(Some(stock)) => sets.int(|n| format!("stock = ${n}"), i64::from(stock)),
            Some(None) => sets.clauses.push("stock = NULL".to_owned()),
            None => {}
        }
        if let Some(minutes) = changes.duration_minutes {
            sets.int(|n| format!("duration_minutes = ${n}"), i64::from(minutes));
        }
        if let Some(status) = changes.status {
            sets.text(|n| format!("status = ${n}"), status.as_str().to_owned());
        }
        sets.int(|n| format!("updated_at_us = ${n}"), at.as_micros());
        let sql = format!(
            "UPDATE listings SET {} WHERE id = ${}",
            sets.clauses.join(", "),
            sets.next()
        );
        let done = sets
            .bind_all(sqlx::query(&sql))
            .bind(listing_id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!("listing {listing_id}")));
        }
        Ok(())
    }

    /// Takes `quantity` units of an active product's stock, atomically: never below zero, however
    /// many orders take at once. Returns the units left (`None` for unlimited stock).
    ///
    /// Refuses with `Conflict` when fewer than `quantity` are left, `NotFound` for no such
    /// listing, and `Invalid` for a service or an archived listing. Call it inside the order's
    /// transaction, so that a failed order gives the stock back by rolling back.
    pub async fn take_stock(
        &mut self,
        listing_id: ListingId,
        quantity: u32,
        at: Timestamp,
    ) -> Result<Option<u32>> {
        if quantity == 0 {
            return Err(Error::invalid("quantity", "must be at least 1"));
        }
        // Invariant: stock never goes below zero. The condition is checked on the row as it is
        // when the update runs (PostgreSQL re-checks it after waiting for a concurrent writer;
        // SQLite has one writer), so two orders cannot both take the last unit.
        let row = sqlx::query(
            "UPDATE listings SET stock = stock - $1, updated_at_us = $2 \
             WHERE id = $3 AND kind = 'product' AND status = 'active' AND (stock IS NULL OR stock >= $4) \
             RETURNING stock",
        )
        .bind(i64::from(quantity))
        .bind(at.as_micros())
        .bind(listing_id.to_string())
        .bind(i64::from(quantity))
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        match row {
            Some(row) => Ok(get::<Option<i64>>(&row, "stock")?.map(|left| {
                u32::try_from(left).expect("stock is checked to stay within 0..=u32::MAX")
            })),
            None => Err(self.why_not_for_sale(listing_id, quantity).await?),
        }
    }

    /// Gives back stock an order took (a cancelled or refunded line). Unlimited stock stays unlimited.
    pub async fn return_stock(
        &mut self,
        listing_id: ListingId,
        quantity: u32,
        at: Timestamp,
    ) -> Result<Option<u32>> {
        let row = sqlx::query(
            "UPDATE listings SET stock = stock + $1, updated_at_us = $2 WHERE id = $3 AND kind = 'product' RETURNING stock",
        )
        .bind(i64::from(quantity))
        .bind(at.as_micros())
        .bind(listing_id.to_string())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        let row = row.ok_or_else(|| Error::not_found(format!("product listing {listing_id}")))?;
        get::<Option<i64>>(&row, "stock")?
            .map(|left| {
                u32::try_from(left).map_err(|_| {
                    Error::Conflict(format!("listing {listing_id} cannot hold more stock"))
                })
            })
            .transpose()
    }

    /// The reason `take_stock` took nothing.
    async fn why_not_for_sale(&mut self, listing_id: ListingId, quantity: u32) -> Result<Error> {
        let Some(listing) = self.listing(listing_id).await? else {
            return Ok(Error::not_found(format!("listing {listing_id}")));
        };
        Ok(match (listing.status, listing.kind) {
            (ListingStatus::Archived, _) => Error::Conflict(format!(
                "listing {listing_id} is archived and no longer for sale"
            )),
            (_, ListingKind::Service { .. }) => Error::invalid(
                "listing_id",
                format!("listing {listing_id} is a service: book a slot instead of taking stock"),
            ),
            (_, ListingKind::Product { stock }) => Error::Conflict(format!(
                "only {} left of listing {listing_id}, {quantity} wanted",
                stock.unwrap_or(0)
            )),
        })
    }

    pub async fn insert_slot(&mut self, slot: &Slot, at: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO listing_slots (id, listing_id, starts_at_us, ends_at_us, booked_by_order, booked_at_us, created_at_us) \
             VALUES ($1, $2, $3, $4, NULL, NULL, $5)",
        )
        .bind(slot.id.to_string())
        .bind(slot.listing_id.to_string())
        .bind(slot.starts_at.as_micros())
        .bind(slot.ends_at.as_micros())
        .bind(at.as_micros())
        .execute(self.conn())
        .await
        .map_err(|e| match db_error(e) {
            Error::Conflict(_) => Error::Conflict(format!(
                "listing {} already has a slot starting at {}",
                slot.listing_id, slot.starts_at
            )),
            other => other,
        })?;
        Ok(())
    }

    /// Books a free slot of an active listing for an order, atomically: of two orders booking the
    /// same slot at once, exactly one succeeds and the other gets `Conflict`.
    pub async fn book_slot(
        &mut self,
        slot_id: SlotId,
        order_id: OrderId,
        at: Timestamp,
    ) -> Result<Slot> {
        // Invariant: a slot is booked by at most one order; the update only matches a free slot.
        let sql = format!(
            "UPDATE listing_slots SET booked_by_order = $1, booked_at_us = $2 \
             WHERE id = $3 AND booked_by_order IS NULL \
             AND listing_id IN (SELECT id FROM listings WHERE status = 'active') \
             RETURNING {SLOT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(order_id.to_string())
            .bind(at.as_micros())
            .bind(slot_id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        if let Some(row) = row {
            return slot_from_row(&row);
        }
        let sql = format!("SELECT {SLOT_COLUMNS} FROM listing_slots WHERE id = $1");
        let existing = sqlx::query(&sql)
            .bind(slot_id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        Err(match existing.as_ref().map(slot_from_row).transpose()? {
            None => Error::not_found(format!("slot {slot_id}")),
            Some(slot) if slot.booked_by_order.is_some() => {
                Error::Conflict(format!("slot {slot_id} is already booked"))
            }
            Some(slot) => Error::Conflict(format!(
                "listing {} of slot {slot_id} is archived and no longer bookable",
                slot.listing_id
            )),
        })
    }

    /// Frees a slot booked by `order_id` (a cancelled order); a slot booked by another order stays.
    pub async fn release_slot(&mut self, slot_id: SlotId, order_id: OrderId) -> Result<()> {
        let done = sqlx::query(
            "UPDATE listing_slots SET booked_by_order = NULL, booked_at_us = NULL WHERE id = $1 AND booked_by_order = $2",
        )
        .bind(slot_id.to_string())
        .bind(order_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found(format!(
                "slot {slot_id} booked by order {order_id}"
            )));
        }
        Ok(())
    }
}
