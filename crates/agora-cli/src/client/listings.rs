//! `agora listing`: list products and services for sale, browse and search the marketplace,
//! and open bookable slots for services.

use agora_domain::ledger::Currency;
use agora_domain::listing::{Listing, ListingKind, Slot, parse_price};
use agora_domain::{ListingId, Timestamp};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::http::Api;
use super::orgs::{print_list, print_one};
use super::output::{self, Table};
use super::{ClientArgs, IdempotencyArgs, ListArgs, connect, resolve_org, typed, with_retry_hint};
use crate::{Failure, exit};

/// Listings: create, list, search, show, update, archive, and service slots.
#[derive(Debug, Subcommand)]
pub enum ListingCommand {
    /// List a product or a service for sale; listing is free.
    ///
    /// A product has stock (unlimited unless --stock says how many); a service has a duration
    /// (--service --duration-minutes) and is booked by slots (`agora listing add-slot`).
    /// Prices are in major units of the currency (12.50 EUR), as the currency allows.
    #[command(after_help = "Examples:\n  \
        agora listing create --title \"Organic whole milk\" --category groceries/dairy --price 1.29 --currency EUR --stock 40\n  \
        agora listing create --title \"Dental check-up\" --category health/dental --price 40 --currency EUR --service --duration-minutes 30")]
    Create {
        /// 1 to 200 characters.
        #[arg(long)]
        title: String,
        /// At most 5000 characters.
        #[arg(long, default_value = "")]
        description: String,
        /// A path of lower-case slugs such as groceries/dairy.
        #[arg(long)]
        category: String,
        /// The price in major units, such as 12.50.
        #[arg(long)]
        price: String,
        /// An ISO 4217 code such as EUR.
        #[arg(long)]
        currency: String,
        /// Units in stock (products; default: unlimited).
        #[arg(long, value_name = "N", conflicts_with_all = ["service", "duration_minutes"])]
        stock: Option<u32>,
        /// List a service instead of a product.
        #[arg(long, requires = "duration_minutes")]
        service: bool,
        /// How long one booking of the service lasts.
        #[arg(long, value_name = "MINUTES", requires = "service")]
        duration_minutes: Option<u32>,
        /// The selling organisation, by id or name (default: the one the token acts for).
        #[arg(long, value_name = "ORG")]
        seller: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Browse active listings, newest first.
    #[command(
        after_help = "Examples:\n  agora listing list --category groceries\n  \
                            agora listing list --seller FreshMart --max-price 5 --currency EUR --format json"
    )]
    List {
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        filters: FilterArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Search listings by words in their titles, categories and descriptions, best match first.
    ///
    /// Every word must match; "a phrase" must match as written, `a OR b` matches either, and
    /// -word excludes. Words match their other forms (bread, breads).
    #[command(after_help = "Examples:\n  agora listing search milk\n  \
                            agora listing search '\"whole milk\" -goat' --category groceries")]
    Search {
        /// What to look for.
        query: String,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        filters: FilterArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one listing, active or archived.
    Show {
        /// The listing's id (lst_…).
        #[arg(value_name = "LISTING_ID")]
        listing_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change a listing; options left out stay as they are.
    #[command(
        after_help = "Examples:\n  agora listing update lst_… --price 1.39 --stock 25\n  \
                            agora listing update lst_… --unlimited-stock"
    )]
    Update {
        /// The listing's id (lst_…).
        #[arg(value_name = "LISTING_ID")]
        listing_id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// The new price in major units (of --currency, or of the listing's currency).
        #[arg(long)]
        price: Option<String>,
        #[arg(long)]
        currency: Option<String>,
        /// Units in stock (products).
        #[arg(long, value_name = "N", conflicts_with = "unlimited_stock")]
        stock: Option<u32>,
        /// Make a product's stock unlimited.
        #[arg(long)]
        unlimited_stock: bool,
        /// How long one booking lasts (services).
        #[arg(long, value_name = "MINUTES")]
        duration_minutes: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Withdraw a listing from sale; it stays readable by id.
    Archive {
        /// The listing's id (lst_…).
        #[arg(value_name = "LISTING_ID")]
        listing_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a service's free slots from now on, by start time.
    Slots {
        /// The listing's id (lst_…).
        #[arg(value_name = "LISTING_ID")]
        listing_id: String,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Open a bookable slot of a service; it lasts the service's duration unless --ends-at says otherwise.
    #[command(
        after_help = "Example:\n  agora listing add-slot lst_… --starts-at 2026-12-01T09:00:00Z"
    )]
    AddSlot {
        /// The listing's id (lst_…).
        #[arg(value_name = "LISTING_ID")]
        listing_id: String,
        /// When the slot starts, RFC 3339 (2026-12-01T09:00:00Z).
        #[arg(long, value_name = "TIME")]
        starts_at: String,
        /// When it ends, RFC 3339.
        #[arg(long, value_name = "TIME")]
        ends_at: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `product` or `service`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Product,
    Service,
}

/// What to narrow a listing or search to.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// A category and everything below it (groceries covers groceries/dairy).
    #[arg(long)]
    category: Option<String>,
    /// The selling organisation, by id or name.
    #[arg(long, value_name = "ORG")]
    seller: Option<String>,
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
    /// Lowest price in major units; needs --currency.
    #[arg(long, requires = "currency")]
    min_price: Option<String>,
    /// Highest price in major units; needs --currency.
    #[arg(long, requires = "currency")]
    max_price: Option<String>,
    /// Only prices in this currency.
    #[arg(long)]
    currency: Option<String>,
    /// Archived listings instead of active ones.
    #[arg(long)]
    archived: bool,
}

impl FilterArgs {
    /// The filters as query parameters.
    async fn query(&self, api: &Api) -> Result<Vec<(&'static str, String)>, Failure> {
        let mut query = Vec::new();
        if let Some(category) = &self.category {
            query.push(("category", category.clone()));
        }
        if let Some(seller) = &self.seller {
            query.push(("seller", resolve_org(api, seller).await?.to_string()));
        }
        if let Some(kind) = self.kind {
            let kind = match kind {
                KindArg::Product => "product",
                KindArg::Service => "service",
            };
            query.push(("kind", kind.to_owned()));
        }
        if let Some(currency) = &self.currency {
            let parsed = Currency::parse(currency)?;
            query.push(("currency", currency.clone()));
            for (name, price) in [
                ("min_price", &self.min_price),
                ("max_price", &self.max_price),
            ] {
                if let Some(price) = price {
                    query.push((name, parse_price(price, parsed)?.to_string()));
                }
            }
        }
        if self.archived {
            query.push(("status", "archived".to_owned()));
        }
        Ok(query)
    }
}

/// `/api/v1/listings` with its query string, encoded.
fn listings_path(query: &[(&'static str, String)]) -> String {
    let mut url =
        reqwest::Url::parse("http://agora.invalid/api/v1/listings").expect("a constant URL");
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    match url.query() {
        Some(text) => format!("{}?{text}", url.path()),
        None => url.path().to_owned(),
    }
}

fn listing_id(text: &str) -> Result<ListingId, Failure> {
    Ok(text.parse()?)
}

fn timestamp(text: &str) -> Result<Timestamp, Failure> {
    Ok(Timestamp::parse_rfc3339(text)?)
}

pub async fn listing(command: ListingCommand) -> Result<(), Failure> {
    match command {
        ListingCommand::Create {
            title,
            description,
            category,
            price,
            currency,
            stock,
            service,
            duration_minutes,
            seller,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let parsed_currency = Currency::parse(&currency)?;
            let price = parse_price(&price, parsed_currency)?;
            let kind = match (service, duration_minutes) {
                (true, Some(duration_minutes)) => {
                    json!({ "type": "service", "duration_minutes": duration_minutes })
                }
                _ => json!({ "type": "product", "stock": stock }),
            };
            let seller = match seller {
                Some(seller) => Some(resolve_org(&api, &seller).await?),
                None => None,
            };
            let body = json!({
                "seller": seller,
                "kind": kind,
                "title": title,
                "description": description,
                "category": category,
                "price": price,
                "currency": currency,
            });
            let key = idempotency.key();
            let answer = api
                .post("/api/v1/listings", Some(&body), Some(&key))
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            print_one(client.format, &answer, listings_table)
        }
        ListingCommand::List {
            filters,
            list,
            client,
        } => {
            let api = connect(&client.connect)?;
            let query = filters.query(&api).await?;
            print_list(
                &api,
                &listings_path(&query),
                &list,
                client.format,
                listings_table,
            )
            .await
        }
        ListingCommand::Search {
            query: text,
            filters,
            list,
            client,
        } => {
            let api = connect(&client.connect)?;
            let mut query = vec![("q", text)];
            query.extend(filters.query(&api).await?);
            print_list(
                &api,
                &listings_path(&query),
                &list,
                client.format,
                listings_table,
            )
            .await
        }
        ListingCommand::Show { listing_id, client } => {
            let api = connect(&client.connect)?;
            let listing_id = self::listing_id(&listing_id)?;
            let answer: Value = api
                .get(&format!("/api/v1/listings/{listing_id}"), &[])
                .await?;
            print_one(client.format, &answer, listings_table)
        }
        ListingCommand::Update {
            listing_id,
            title,
            description,
            category,
            price,
            currency,
            stock,
            unlimited_stock,
            duration_minutes,
            client,
        } => {
            let api = connect(&client.connect)?;
            let listing_id = self::listing_id(&listing_id)?;
            let mut body = Map::new();
            let mut set = |name: &str, value: Value| {
                body.insert(name.to_owned(), value);
            };
            if let Some(title) = title {
                set("title", json!(title));
            }
            if let Some(description) = description {
                set("description", json!(description));
            }
            if let Some(category) = category {
                set("category", json!(category));
            }
            if let Some(currency) = &currency {
                Currency::parse(currency)?;
                set("currency", json!(currency));
            }
            if let Some(price) = price {
                // The price is in major units of the currency it will be in.
                let currency = match &currency {
                    Some(currency) => Currency::parse(currency)?,
                    None => {
                        let current: Listing = api
                            .get(&format!("/api/v1/listings/{listing_id}"), &[])
                            .await?;
                        current.currency
                    }
                };
                set("price", json!(parse_price(&price, currency)?));
            }
            if let Some(stock) = stock {
                set("stock", json!(stock));
            }
            if unlimited_stock {
                set("stock", Value::Null);
            }
            if let Some(minutes) = duration_minutes {
                set("duration_minutes", json!(minutes));
            }
            if body.is_empty() {
                return Err(Failure {
                    code: exit::USAGE,
                    error: anyhow::anyhow!(
                        "nothing to change: name at least one of --title, --description, --category, --price, --currency, --stock, --unlimited-stock, --duration-minutes"
                    ),
                });
            }
            let answer = api
                .patch(
                    &format!("/api/v1/listings/{listing_id}"),
                    &Value::Object(body),
                )
                .await?;
            print_one(client.format, &answer, listings_table)
        }
        ListingCommand::Archive { listing_id, client } => {
            let api = connect(&client.connect)?;
            let listing_id = self::listing_id(&listing_id)?;
            let answer = api
                .post(
                    &format!("/api/v1/listings/{listing_id}/archive"),
                    None,
                    None,
                )
                .await?;
            print_one(client.format, &answer, listings_table)
        }
        ListingCommand::Slots {
            listing_id,
            list,
            client,
        } => {
            let api = connect(&client.connect)?;
            let listing_id = self::listing_id(&listing_id)?;
            print_list(
                &api,
                &format!("/api/v1/listings/{listing_id}/slots"),
                &list,
                client.format,
                slots_table,
            )
            .await
        }
        ListingCommand::AddSlot {
            listing_id,
            starts_at,
            ends_at,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let listing_id = self::listing_id(&listing_id)?;
            let body = json!({
                "starts_at": timestamp(&starts_at)?,
                "ends_at": ends_at.as_deref().map(timestamp).transpose()?,
            });
            let key = idempotency.key();
            let answer = api
                .post(
                    &format!("/api/v1/listings/{listing_id}/slots"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            let _: Slot = typed(&answer)?;
            print_one(client.format, &answer, slots_table)
        }
    }
}

fn listings_table(listings: &[Listing]) -> String {
    let mut table = Table::new(&[
        "id",
        "title",
        "kind",
        "category",
        "price",
        "stock/duration",
        "seller",
        "status",
    ]);
    for listing in listings {
        let (kind, stock) = match listing.kind {
            ListingKind::Product { stock } => (
                "product",
                stock.map_or_else(|| "unlimited".to_owned(), |stock| stock.to_string()),
            ),
            ListingKind::Service { duration_minutes } => {
                ("service", format!("{duration_minutes} min"))
            }
        };
        table.row(vec![
            listing.id.to_string(),
            listing.title.to_string(),
            kind.to_owned(),
            listing.category.to_string(),
            listing.currency.format(listing.price),
            stock,
            listing.seller.to_string(),
            listing.status.to_string(),
        ]);
    }
    table.render("No listings.")
}

fn slots_table(slots: &[Slot]) -> String {
    let mut table = Table::new(&["id", "starts", "ends", "booked by"]);
    for slot in slots {
        table.row(vec![
            slot.id.to_string(),
            output::time(slot.starts_at),
            output::time(slot.ends_at),
            slot.booked_by_order
                .map_or_else(|| "-".to_owned(), |order| order.to_string()),
        ]);
    }
    table.render("No free slots.")
}
