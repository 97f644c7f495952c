//! The market pages: browse and search listings (`/market`), one listing with its free slots
//! (`/market/listings/{id}`), and the acting organisation's shop with its create form (`/shop`).

use agora_app::{Call, ListingQuery, NewListing};
use agora_domain::ledger::Currency;
use agora_domain::listing::{Listing, ListingKind, ListingStatus, display_price, parse_price};
use agora_domain::{Error, ListingId, RequestId};
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{
    CsrfForm, Nav, PortalForm, error_page, incomplete, page, request_id, session, signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// A listing as a card shows it: everything already in words.
pub struct Card {
    pub id: String,
    pub title: String,
    pub price: String,
    /// "In stock: 12", "Unlimited stock", "45 minutes".
    pub offer: String,
    pub kind: &'static str,
    pub category: String,
    pub excerpt: String,
    pub archived: bool,
}

/// How much of a description a card shows.
const EXCERPT_CHARS_MAX: usize = 160;

impl From<&Listing> for Card {
    fn from(listing: &Listing) -> Self {
        let (kind, offer) = match listing.kind {
            ListingKind::Product { stock: Some(0) } => ("product", "Sold out".to_owned()),
            ListingKind::Product { stock: Some(stock) } => {
                ("product", format!("In stock: {stock}"))
            }
            ListingKind::Product { stock: None } => ("product", "In stock".to_owned()),
            ListingKind::Service { duration_minutes } => (
                "service",
                format!("{duration_minutes} minutes, by appointment"),
            ),
        };
        let description = listing.description.as_str();
        let excerpt = if description.chars().count() > EXCERPT_CHARS_MAX {
            let cut: String = description.chars().take(EXCERPT_CHARS_MAX).collect();
            format!("{}…", cut.trim_end())
        } else {
            description.to_owned()
        };
        Self {
            id: listing.id.to_string(),
            title: listing.title.to_string(),
            price: display_price(listing.price, listing.currency),
            offer,
            kind,
            category: listing.category.to_string(),
            excerpt,
            archived: listing.status == ListingStatus::Archived,
        }
    }
}

#[derive(Template)]
#[template(path = "market.html")]
struct MarketPage {
    nav: Nav,
    q: String,
    category: String,
    categories: Vec<(String, i64)>,
    cards: Vec<Card>,
    /// The link to the next page, query string and all.
    next_page: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct MarketParams {
    q: Option<String>,
    category: Option<String>,
    cursor: Option<String>,
}

/// A query string built from parameters, percent-encoded; empty values are left out.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(byte).to_string()
                }
                _ => format!("%{byte:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn market_page(
    State(state): State<ServerState>,
    Query(params): Query<MarketParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let q = params.q.unwrap_or_default().trim().to_owned();
    let category = params.category.unwrap_or_default().trim().to_owned();
    let mut view = MarketPage {
        nav: Nav::new(&session, "market"),
        q: q.clone(),
        category: category.clone(),
        categories: vec![],
        cards: vec![],
        next_page: None,
        error: None,
    };
    let query = ListingQuery {
        q: Some(q.clone()),
        category: Some(category.clone()),
        cursor: params.cursor,
        limit: Some(24),
        ..ListingQuery::default()
    };
    let loaded = async {
        let categories = state.app.listing_categories(&call).await?;
        let page = state.app.listings(&call, &query).await?;
        Ok::<_, Error>((categories, page))
    }
    .await;
    match loaded {
        Ok((categories, page)) => {
            view.categories = categories
                .into_iter()
                .map(|(category, count)| (category.to_string(), count))
                .collect();
            view.cards = page.items.iter().map(Card::from).collect();
            view.next_page = page.next_cursor.map(|cursor| {
                query_string(&[("q", &q), ("category", &category), ("cursor", &cursor)])
            });
        }
        // A search or filter a person typed wrong is said on the page, not as a problem document.
        Err(Error::Invalid { field, message }) => {
            view.error = Some(match field.as_str() {
                "q" => "Type at least one word to look for.".to_owned(),
                _ => format!("The {field} {message}."),
            });
        }
        Err(error) => return error_page(error, request_id),
    }
    let status = if view.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, &view)
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    nav: Nav,
    card: Card,
    description: String,
    seller_name: String,
    /// Free slots as (id, starts, ends).
    slots: Vec<(String, String, String)>,
    is_service: bool,
    /// Whether the buy form is offered: the listing is for sale and not sold out.
    for_sale: bool,
    error: Option<String>,
}

pub async fn listing_page(
    State(state): State<ServerState>,
    Path(listing_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    listing(&state, &session, request_id, &listing_id, None).await
}

/// Renders one listing with its buy form, and `error` in the form's alert.
pub(super) async fn listing(
    state: &ServerState,
    session: &agora_app::PortalSession,
    request_id: RequestId,
    listing_id: &str,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let listing_id: ListingId = listing_id.parse()?;
        let listing = state.app.listing(&call, listing_id).await?;
        let seller_name = match state.app.org(&call, listing.seller).await {
            Ok(org) => org.name.to_string(),
            Err(_) => listing.seller.to_string(),
        };
        let slots = match listing.kind {
            ListingKind::Service { .. } => {
                state
                    .app
                    .free_slots(&call, listing_id, None, Some(50))
                    .await?
                    .items
            }
            ListingKind::Product { .. } => vec![],
        };
        Ok::<_, Error>((listing, seller_name, slots))
    }
    .await;
    match loaded {
        Ok((listing, seller_name, slots)) => {
            let for_sale = listing.status == ListingStatus::Active
                && match listing.kind {
                    ListingKind::Product { stock } => stock != Some(0),
                    ListingKind::Service { .. } => !slots.is_empty(),
                };
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let view = ListingPage {
                nav: Nav::new(session, "market"),
                description: listing.description.to_string(),
                is_service: matches!(listing.kind, ListingKind::Service { .. }),
                card: Card::from(&listing),
                seller_name,
                slots: slots
                    .iter()
                    .map(|slot| {
                        (
                            slot.id.to_string(),
                            slot.starts_at.to_rfc3339(),
                            slot.ends_at.to_rfc3339(),
                        )
                    })
                    .collect(),
                for_sale,
                error,
            };
            page(status, &view)
        }
        Err(error) => error_page(error, request_id),
    }
}

/// What the create form last held, to show again with its error.
#[derive(Default)]
pub struct ShopForm {
    pub title: String,
    pub description: String,
    pub category: String,
    pub price: String,
    pub currency: String,
    pub kind: String,
    pub stock: String,
    pub duration_minutes: String,
}

#[derive(Template)]
#[template(path = "shop.html")]
struct ShopPage {
    nav: Nav,
    org_name: Option<String>,
    may_manage: bool,
    cards: Vec<Card>,
    form: ShopForm,
    error: Option<String>,
}

/// Renders the shop of the organisation the user acts for, with `form` and `error` in its form.
async fn shop(
    state: &ServerState,
    session: &agora_app::PortalSession,
    request_id: RequestId,
    form: ShopForm,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let mut view = ShopPage {
        nav: Nav::new(session, "shop"),
        org_name: None,
        may_manage: false,
        cards: vec![],
        form: ShopForm {
            currency: if form.currency.is_empty() {
                "EUR".to_owned()
            } else {
                form.currency.clone()
            },
            kind: if form.kind.is_empty() {
                "product".to_owned()
            } else {
                form.kind.clone()
            },
            ..form
        },
        error: error.clone(),
    };
    if let Some(acting) = session.actor.acting {
        let loaded = async {
            let org = state.app.org(&call, acting.org_id).await?;
            let mut listings = Vec::new();
            for status in ["active", "archived"] {
                let query = ListingQuery {
                    seller: Some(acting.org_id.to_string()),
                    status: Some(status.to_owned()),
                    limit: Some(100),
                    ..ListingQuery::default()
                };
                listings.extend(state.app.listings(&call, &query).await?.items);
            }
            Ok::<_, Error>((org, listings))
        }
        .await;
        match loaded {
            Ok((org, listings)) => {
                view.org_name = Some(org.name.to_string());
                view.may_manage = matches!(
                    acting.role,
                    agora_domain::Role::Owner | agora_domain::Role::Admin
                );
                view.cards = listings.iter().map(Card::from).collect();
            }
            Err(error) => return error_page(error, request_id),
        }
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, &view)
}

pub async fn shop_page(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    shop(&state, &session, request_id, ShopForm::default(), None).await
}

#[derive(Deserialize)]
pub struct ListingForm {
    csrf_token: String,
    title: String,
    #[serde(default)]
    description: String,
    category: String,
    price: String,
    currency: String,
    kind: String,
    #[serde(default)]
    stock: String,
    #[serde(default)]
    duration_minutes: String,
}

impl PortalForm for ListingForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    fn incomplete() -> Response {
        incomplete("listing form")
    }
}

impl ListingForm {
    fn to_new_listing(&self) -> Result<NewListing, Error> {
        let currency = Currency::parse(self.currency.trim())?;
        let whole_number = |field: &str, text: &str| {
            text.trim()
                .parse::<u32>()
                .map_err(|_| Error::invalid(field, "must be a whole number"))
        };
        let kind = match self.kind.as_str() {
            "service" => ListingKind::Service {
                duration_minutes: whole_number("duration_minutes", &self.duration_minutes)?,
            },
            "product" => ListingKind::Product {
                stock: match self.stock.trim() {
                    "" => None,
                    stock => Some(whole_number("stock", stock)?),
                },
            },
            _ => return Err(Error::invalid("kind", "must be product or service")),
        };
        Ok(NewListing {
            seller: None,
            kind,
            title: self.title.clone(),
            description: self.description.clone(),
            category: self.category.trim().to_owned(),
            price: parse_price(&self.price, currency)?,
            currency: currency.code().to_owned(),
        })
    }

    fn into_shop_form(self) -> ShopForm {
        ShopForm {
            title: self.title,
            description: self.description,
            category: self.category,
            price: self.price,
            currency: self.currency,
            kind: self.kind,
            stock: self.stock,
            duration_minutes: self.duration_minutes,
        }
    }
}

/// Lists a product or service for the organisation the user acts for, then shows the shop.
pub async fn create_listing(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, ListingForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let created = match form.to_new_listing() {
        Ok(input) => state.app.create_listing(&call, input).await,
        Err(error) => Err(error),
    };
    match created {
        Ok(_) => Redirect::to("/shop").into_response(),
        Err(Error::Invalid { field, message }) => {
            let message = format!("The {} {message}.", field.replace('_', " "));
            shop(
                &state,
                &session,
                request_id,
                form.into_shop_form(),
                Some(message),
            )
            .await
        }
        Err(error) => error_page(error, request_id),
    }
}

/// Withdraws one of the shop's listings from sale, then shows the shop.
pub async fn archive_listing(
    State(state): State<ServerState>,
    Path(listing_id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let archived = match listing_id.parse() {
        Ok(listing_id) => state.app.archive_listing(&call, listing_id).await,
        Err(error) => Err(error),
    };
    match archived {
        Ok(_) => Redirect::to("/shop").into_response(),
        Err(error) => error_page(error, request_id),
    }
}
