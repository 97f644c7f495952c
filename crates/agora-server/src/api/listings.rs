//! Marketplace listings: create, browse and search, read, change, archive, and service slots.

use agora_app::{ListingQuery, ListingUpdate, NewListing, NewSlot, Page};
use agora_domain::ListingId;
use agora_domain::listing::{Listing, Slot};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::PageParams;
use crate::ServerState;
use crate::error::{ApiError, Problem};
use crate::extract::{Caller, Json, Query};

type ApiResult<T> = Result<T, ApiError>;

fn listing_id(caller: &Caller, text: &str) -> ApiResult<ListingId> {
    text.parse().map_err(|error| caller.fail(error))
}

/// Lists a product (with stock) or a service (with a duration, booked by slots) for sale, free of charge.
/// The seller is the organisation the caller acts for unless `seller` names another it may manage.
#[utoipa::path(post, path = "/api/v1/listings", tag = "marketplace",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first response instead of listing again")),
    request_body = NewListing,
    responses(
        (status = 201, body = Listing),
        (status = 400, description = "A field breaks its rule; `field` names it", body = Problem),
        (status = 403, description = "Not an owner or admin of the seller; `rule` names the policy", body = Problem),
        (status = 422, description = "Wrong shape, or the Idempotency-Key was used with another body", body = Problem),
    ))]
pub async fn create_listing(
    State(state): State<ServerState>,
    caller: Caller,
    Json(input): Json<NewListing>,
) -> ApiResult<(StatusCode, Json<Listing>)> {
    let listing = state
        .app
        .create_listing(&caller.call(), input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(listing)))
}

/// Browses active listings, newest first, or with `q` searches them, best match first.
/// Search words must all match; `"a phrase"`, `a OR b` and `-excluded` work too.
#[utoipa::path(get, path = "/api/v1/listings", tag = "marketplace", params(ListingQuery), responses(
    (status = 200, body = Page<Listing>),
    (status = 400, description = "A filter breaks its rule; `field` names it", body = Problem),
    (status = 429, description = "Paged past search_depth_max", body = Problem),
))]
pub async fn list_listings(
    State(state): State<ServerState>,
    caller: Caller,
    Query(query): Query<ListingQuery>,
) -> ApiResult<Json<Page<Listing>>> {
    let page = state
        .app
        .listings(&caller.call(), &query)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(page))
}

/// Reads one listing, active or archived.
#[utoipa::path(get, path = "/api/v1/listings/{listing_id}", tag = "marketplace", params(("listing_id" = String, Path)), responses(
    (status = 200, body = Listing),
    (status = 404, body = Problem),
))]
pub async fn get_listing(
    State(state): State<ServerState>,
    caller: Caller,
    Path(listing_id): Path<String>,
) -> ApiResult<Json<Listing>> {
    let listing_id = self::listing_id(&caller, &listing_id)?;
    let listing = state
        .app
        .listing(&caller.call(), listing_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(listing))
}

/// Changes a listing's title, description, category, price, currency, stock (products) or duration (services).
#[utoipa::path(patch, path = "/api/v1/listings/{listing_id}", tag = "marketplace", params(("listing_id" = String, Path)), request_body = ListingUpdate, responses(
    (status = 200, body = Listing),
    (status = 400, body = Problem),
    (status = 403, body = Problem),
    (status = 404, body = Problem),
    (status = 409, description = "The listing is archived", body = Problem),
))]
pub async fn update_listing(
    State(state): State<ServerState>,
    caller: Caller,
    Path(listing_id): Path<String>,
    Json(input): Json<ListingUpdate>,
) -> ApiResult<Json<Listing>> {
    let listing_id = self::listing_id(&caller, &listing_id)?;
    let listing = state
        .app
        .update_listing(&caller.call(), listing_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(listing))
}

/// Withdraws a listing from sale; it stays readable by id. Archiving twice changes nothing.
#[utoipa::path(post, path = "/api/v1/listings/{listing_id}/archive", tag = "marketplace", params(("listing_id" = String, Path)), responses(
    (status = 200, body = Listing),
    (status = 403, body = Problem),
    (status = 404, body = Problem),
))]
pub async fn archive_listing(
    State(state): State<ServerState>,
    caller: Caller,
    Path(listing_id): Path<String>,
) -> ApiResult<Json<Listing>> {
    let listing_id = self::listing_id(&caller, &listing_id)?;
    let listing = state
        .app
        .archive_listing(&caller.call(), listing_id)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(listing))
}

/// Opens a bookable slot of a service listing; it ends after the service's duration unless `ends_at` says otherwise.
#[utoipa::path(post, path = "/api/v1/listings/{listing_id}/slots", tag = "marketplace",
    params(("listing_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = NewSlot,
    responses(
        (status = 201, body = Slot),
        (status = 400, description = "Not a service, or times out of order", body = Problem),
        (status = 403, body = Problem),
        (status = 409, description = "A slot starts at that time already, or the listing is archived", body = Problem),
    ))]
pub async fn add_slot(
    State(state): State<ServerState>,
    caller: Caller,
    Path(listing_id): Path<String>,
    Json(input): Json<NewSlot>,
) -> ApiResult<(StatusCode, Json<Slot>)> {
    let listing_id = self::listing_id(&caller, &listing_id)?;
    let slot = state
        .app
        .add_slot(&caller.call(), listing_id, input)
        .await
        .map_err(|e| caller.fail(e))?;
    Ok((StatusCode::CREATED, Json(slot)))
}

/// Lists a service listing's free slots from now on, by start time.
#[utoipa::path(get, path = "/api/v1/listings/{listing_id}/slots", tag = "marketplace", params(("listing_id" = String, Path), PageParams), responses(
    (status = 200, body = Page<Slot>),
    (status = 404, body = Problem),
))]
pub async fn list_slots(
    State(state): State<ServerState>,
    caller: Caller,
    Path(listing_id): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<Json<Page<Slot>>> {
    let listing_id = self::listing_id(&caller, &listing_id)?;
    let slots = state
        .app
        .free_slots(
            &caller.call(),
            listing_id,
            page.cursor.as_deref(),
            page.limit,
        )
        .await
        .map_err(|e| caller.fail(e))?;
    Ok(Json(slots))
}
