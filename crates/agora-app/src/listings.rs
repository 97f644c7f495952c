//! Marketplace listings: partners list products and services for free, everyone signed in
//! browses and searches them, and sellers open bookable slots for their services.
//!
//! Changes are authorized as `listing.manage` on the seller organisation (its owners and admins,
//! and the operator's); reads as `listing.read` on the instance.

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::Currency;
use agora_domain::listing::{
    Category, Description, KindName, Listing, ListingKind, ListingStatus, SearchQuery, Slot, Title,
    check_price, check_slot_times,
};
use agora_domain::{Error, ListingId, OrgId, Result, SlotId, Timestamp};
use agora_store::{ListingChanges, ListingFilter};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{App, Begun, Call, Done, Page, event};

/// How deep search results page: ranked results past this position are not served.
pub const SEARCH_DEPTH_MAX: u32 = 1000;
/// How many categories a browsing page is offered at most.
pub const CATEGORIES_MAX: u32 = 500;

/// A new listing. Fields are checked one by one, and a refusal names the field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewListing {
    /// The selling organisation; by default the one the caller acts for.
    #[serde(default)]
    pub seller: Option<OrgId>,
    pub kind: ListingKind,
    /// 1 to 200 characters.
    pub title: String,
    /// At most 5000 characters.
    #[serde(default)]
    pub description: String,
    /// A path of slugs such as `groceries/dairy`.
    pub category: String,
    /// Minor units of `currency` (cents for EUR), not negative.
    pub price: i64,
    /// An ISO 4217 code such as `EUR`.
    pub currency: String,
}

/// Changes to a listing; absent fields stay as they are. A product's `stock` set to `null`
/// becomes unlimited; `duration_minutes` is for services only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListingUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub price: Option<i64>,
    pub currency: Option<String>,
    /// Products only: units left; `null` for unlimited.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub stock: Option<Option<u32>>,
    /// Services only.
    pub duration_minutes: Option<u32>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(deserializer).map(Some)
}

/// What to browse or search. Every filter narrows; `q` searches, best match first, and
/// without it listings come newest first.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListingQuery {
    /// Words to search for: all must match; `"a phrase"`, `a OR b` and `-excluded` work too.
    pub q: Option<String>,
    /// A category and everything below it (`groceries` covers `groceries/dairy`).
    pub category: Option<String>,
    /// The selling organisation's id.
    pub seller: Option<String>,
    /// `product` or `service`.
    pub kind: Option<String>,
    /// Lowest price, in minor units, inclusive.
    pub min_price: Option<i64>,
    /// Highest price, in minor units, inclusive.
    pub max_price: Option<i64>,
    /// Only prices in this currency.
    pub currency: Option<String>,
    /// `active` (the default) or `archived`.
    pub status: Option<String>,
    /// Where to continue, as given by the previous page.
    pub cursor: Option<String>,
    /// Items per page: 1 to `page_size_max`.
    pub limit: Option<u32>,
}

/// A bookable time for a service listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewSlot {
    pub starts_at: Timestamp,
    /// By default the service's duration after `starts_at`.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
}

/// The parts of a request that identify it, for idempotency.
#[derive(Serialize)]
struct SlotKey<'a> {
    listing_id: ListingId,
    slot: &'a NewSlot,
}

impl App {
    /// Lists a product or service for sale, free of charge.
    pub async fn create_listing(&self, call: &Call<'_>, input: NewListing) -> Result<Listing> {
        let action = Action::ListingManage;
        let seller = match input.seller {
            Some(seller) => seller,
            None => call.actor.org_id().ok_or_else(|| {
                Error::invalid(
                    "seller",
                    "name the selling organisation: this credential acts for none",
                )
            })?,
        };
        let now = Timestamp::now();
        let currency = Currency::parse(&input.currency)?;
        input.kind.validate()?;
        check_price(input.price, currency)?;
        let listing = Listing {
            id: ListingId::new(),
            seller,
            kind: input.kind,
            title: Title::parse(&input.title)?,
            description: Description::parse(&input.description)?,
            category: Category::parse(&input.category)?,
            price: input.price,
            currency,
            status: ListingStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let resource = Resource::Organisation(seller);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let (mut tx, idempotency) = match self.begin(call, action, &input).await? {
                Begun::Replay(listing) => return Ok(listing),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            tx.insert_listing(&listing).await?;
            let data = listing_event_data(&listing);
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("listing.created", listing.id, Some(seller), data)],
            };
            self.commit(tx, idempotency, call, done, &listing).await?;
            Ok(listing)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Changes a listing's text, category, price or stock (its seller's owners and admins).
    pub async fn update_listing(
        &self,
        call: &Call<'_>,
        listing_id: ListingId,
        input: ListingUpdate,
    ) -> Result<Listing> {
        let action = Action::ListingManage;
        let current = self.existing_listing(listing_id).await?;
        let resource = Resource::Organisation(current.seller);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let mut tx = self.store().write().await?;
            // Judged against the listing as the transaction sees it, not as it was before
            // authorizing: it may have been archived meanwhile.
            let current = tx
                .listing(listing_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("listing {listing_id}")))?;
            let changes = listing_changes(&current, &input)?;
            tx.update_listing(listing_id, &changes, Timestamp::now())
                .await?;
            let listing = tx
                .listing(listing_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("listing {listing_id}")))?;
            let mut data = serde_json::to_value(&input)
                .map_err(|e| Error::Internal(format!("listing changes: {e}")))?;
            if let Some(fields) = data.as_object_mut() {
                fields.retain(|_, value| !value.is_null());
                if let Some(stock) = input.stock {
                    fields.insert("stock".into(), serde_json::json!(stock));
                }
                fields.insert("listing_id".into(), serde_json::json!(listing_id));
            }
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event(
                    "listing.updated",
                    listing_id,
                    Some(listing.seller),
                    data,
                )],
            };
            self.commit(tx, None, call, done, &()).await?;
            Ok(listing)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Withdraws a listing from sale. It stays readable by id, for the orders that refer to it;
    /// archiving an archived listing changes nothing.
    pub async fn archive_listing(&self, call: &Call<'_>, listing_id: ListingId) -> Result<Listing> {
        let action = Action::ListingManage;
        let current = self.existing_listing(listing_id).await?;
        let resource = Resource::Organisation(current.seller);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        if current.status == ListingStatus::Archived {
            return Ok(current);
        }
        let result = async {
            let mut tx = self.store().write().await?;
            let changes = ListingChanges {
                status: Some(ListingStatus::Archived),
                ..ListingChanges::default()
            };
            tx.update_listing(listing_id, &changes, Timestamp::now())
                .await?;
            let listing = tx
                .listing(listing_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("listing {listing_id}")))?;
            let data = serde_json::json!({ "listing_id": listing_id });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event(
                    "listing.archived",
                    listing_id,
                    Some(listing.seller),
                    data,
                )],
            };
            self.commit(tx, None, call, done, &()).await?;
            Ok(listing)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Reads one listing, active or archived.
    pub async fn listing(&self, call: &Call<'_>, listing_id: ListingId) -> Result<Listing> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        self.existing_listing(listing_id).await
    }

    /// Browses (newest first) or, with `q`, searches (best match first) the listings.
    pub async fn listings(&self, call: &Call<'_>, query: &ListingQuery) -> Result<Page<Listing>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(query.limit)?;
        let filter = listing_filter(query)?;
        let search = query
            .q
            .as_deref()
            .filter(|text| !text.trim().is_empty())
            .map(SearchQuery::parse)
            .transpose()?;
        match search {
            None => {
                let before = query
                    .cursor
                    .as_deref()
                    .map(str::parse::<ListingId>)
                    .transpose()
                    .map_err(|_| crate::orgs::invalid_cursor())?;
                let listings = self
                    .store()
                    .browse_listings(&filter, before, limit + 1)
                    .await?;
                Ok(Page::from_overfetch(listings, limit, |listing| {
                    listing.id.to_string()
                }))
            }
            Some(search) => {
                // Ranked results page by position: the cursor is how many came before.
                let offset = match query.cursor.as_deref() {
                    None => 0,
                    Some(cursor) => cursor
                        .parse::<u32>()
                        .map_err(|_| crate::orgs::invalid_cursor())?,
                };
                if offset >= SEARCH_DEPTH_MAX {
                    return Err(Error::limit(
                        "search_depth_max",
                        format!(
                            "search results are served to position {SEARCH_DEPTH_MAX}; narrow the search with more words or filters"
                        ),
                    ));
                }
                let limit = limit.min(SEARCH_DEPTH_MAX - offset);
                let listings = self
                    .store()
                    .search_listings(&search, &filter, offset, limit + 1)
                    .await?;
                let mut page = Page::from_overfetch(listings, limit, |_| String::new());
                if page.next_cursor.is_some() {
                    page.next_cursor = Some((offset + limit).to_string());
                }
                Ok(page)
            }
        }
    }

    /// The categories that hold active listings, with how many each holds, in name order.
    pub async fn listing_categories(&self, call: &Call<'_>) -> Result<Vec<(Category, i64)>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        self.store().listing_categories(CATEGORIES_MAX).await
    }

    /// Opens a bookable slot of an active service listing (its seller's owners and admins).
    pub async fn add_slot(
        &self,
        call: &Call<'_>,
        listing_id: ListingId,
        input: NewSlot,
    ) -> Result<Slot> {
        let action = Action::ListingManage;
        let listing = self.existing_listing(listing_id).await?;
        let resource = Resource::Organisation(listing.seller);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let ListingKind::Service { duration_minutes } = listing.kind else {
                return Err(Error::invalid(
                    "listing_id",
                    "only services have slots; a product has stock",
                ));
            };
            if listing.status == ListingStatus::Archived {
                return Err(Error::Conflict(format!(
                    "listing {listing_id} is archived: it takes no new slots"
                )));
            }
            if input.starts_at <= Timestamp::now() {
                return Err(Error::invalid("starts_at", "must be in the future"));
            }
            let ends_at = input.ends_at.unwrap_or_else(|| {
                input
                    .starts_at
                    .plus_seconds(i64::from(duration_minutes) * 60)
            });
            check_slot_times(input.starts_at, ends_at)?;
            let key = SlotKey {
                listing_id,
                slot: &input,
            };
            let (mut tx, idempotency) = match self.begin_as(call, "listing.slot.add", &key).await? {
                Begun::Replay(slot) => return Ok(slot),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let slot = Slot {
                id: SlotId::new(),
                listing_id,
                starts_at: input.starts_at,
                ends_at,
                booked_by_order: None,
            };
            tx.insert_slot(&slot, Timestamp::now()).await?;
            let data = serde_json::json!({
                "listing_id": listing_id,
                "slot_id": slot.id,
                "starts_at": slot.starts_at,
                "ends_at": slot.ends_at,
            });
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event(
                    "listing.slot_added",
                    listing_id,
                    Some(listing.seller),
                    data,
                )],
            };
            self.commit(tx, idempotency, call, done, &slot).await?;
            Ok(slot)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// A service listing's free slots from now on, by start time.
    pub async fn free_slots(
        &self,
        call: &Call<'_>,
        listing_id: ListingId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Slot>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        self.existing_listing(listing_id).await?;
        let after = cursor.map(parse_slot_cursor).transpose()?;
        let slots = self
            .store()
            .free_slots(listing_id, Timestamp::now(), after, limit + 1)
            .await?;
        Ok(Page::from_overfetch(slots, limit, |slot| {
            format!("{}.{}", slot.starts_at.as_micros(), slot.id)
        }))
    }

    async fn existing_listing(&self, listing_id: ListingId) -> Result<Listing> {
        self.store()
            .listing(listing_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("listing {listing_id}")))
    }
}

fn parse_slot_cursor(cursor: &str) -> Result<(Timestamp, SlotId)> {
    let (micros, slot_id) = cursor
        .split_once('.')
        .ok_or_else(crate::orgs::invalid_cursor)?;
    let micros: i64 = micros.parse().map_err(|_| crate::orgs::invalid_cursor())?;
    let slot_id: SlotId = slot_id.parse().map_err(|_| crate::orgs::invalid_cursor())?;
    Ok((Timestamp::from_micros(micros), slot_id))
}

fn listing_filter(query: &ListingQuery) -> Result<ListingFilter> {
    let non_empty = |text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    };
    if let (Some(min), Some(max)) = (query.min_price, query.max_price)
        && min > max
    {
        return Err(Error::invalid(
            "min_price",
            format!("must not be above max_price ({min} > {max})"),
        ));
    }
    for (field, price) in [
        ("min_price", query.min_price),
        ("max_price", query.max_price),
    ] {
        if price.is_some_and(|price| price < 0) {
            return Err(Error::invalid(field, "must not be negative"));
        }
    }
    Ok(ListingFilter {
        category: non_empty(&query.category)
            .map(|text| Category::parse(&text))
            .transpose()?,
        seller: non_empty(&query.seller)
            .map(|text| text.parse::<OrgId>())
            .transpose()
            .map_err(|e| match e {
                Error::Invalid { message, .. } => Error::invalid("seller", message),
                other => other,
            })?,
        kind: non_empty(&query.kind)
            .map(|text| text.parse::<KindName>())
            .transpose()?,
        price_min: query.min_price,
        price_max: query.max_price,
        currency: non_empty(&query.currency)
            .map(|text| Currency::parse(&text))
            .transpose()?,
        status: non_empty(&query.status)
            .map(|text| text.parse::<ListingStatus>())
            .transpose()?
            .unwrap_or(ListingStatus::Active),
    })
}

/// Checks an update against the listing it changes and turns it into the store's changes.
fn listing_changes(current: &Listing, input: &ListingUpdate) -> Result<ListingChanges> {
    if current.status == ListingStatus::Archived {
        return Err(Error::Conflict(format!(
            "listing {} is archived; list it anew instead",
            current.id
        )));
    }
    let currency = input.currency.as_deref().map(Currency::parse).transpose()?;
    let price = input.price.unwrap_or(current.price);
    check_price(price, currency.unwrap_or(current.currency))?;
    match (&current.kind, input.stock, input.duration_minutes) {
        (ListingKind::Product { .. }, _, Some(_)) => {
            return Err(Error::invalid(
                "duration_minutes",
                "only services have a duration; this listing is a product",
            ));
        }
        (ListingKind::Service { .. }, Some(_), _) => {
            return Err(Error::invalid(
                "stock",
                "only products have stock; this listing is a service",
            ));
        }
        (ListingKind::Service { .. }, None, Some(duration_minutes)) => {
            ListingKind::Service { duration_minutes }.validate()?
        }
        _ => {}
    }
    Ok(ListingChanges {
        title: input.title.as_deref().map(Title::parse).transpose()?,
        description: input
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()?,
        category: input.category.as_deref().map(Category::parse).transpose()?,
        price: input.price,
        currency,
        stock: input.stock,
        duration_minutes: input.duration_minutes,
        status: None,
    })
}

fn listing_event_data(listing: &Listing) -> serde_json::Value {
    serde_json::json!({
        "listing_id": listing.id,
        "kind": listing.kind,
        "title": listing.title,
        "category": listing.category,
        "price": listing.price,
        "currency": listing.currency,
    })
}
