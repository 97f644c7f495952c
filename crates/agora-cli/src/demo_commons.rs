//! The demo's data commons: FreshMart shares a year of store sales with three brands under an
//! aggregate-only protocol, and five carriers pool their shipments under contributor rules.
//! Every party approves each protocol's exact version, and the story runs one governed query
//! and one the engine refuses, so the query logs and audit logs have something to show.

use std::fmt::Write as _;

use agora_app::{App, Call, CreateOrg, NewMember, QueryInput, parse_document};
use agora_domain::actor::Acting;
use agora_domain::dataset::{ColumnClass, ColumnClassing, UploadFormat};
use agora_domain::{
    Actor, Credential, Email, OrgId, OrgName, Password, PersonName, RequestId, Role, Timestamp,
};

use crate::Failure;
use crate::demo::DEMO_PASSWORD;

/// Organisations the commons adds, each with its owner.
pub const COMMONS_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("Sunny Farms", "sam@sunnyfarms.example", "Sam Reyes"),
    ("Nordic Snacks", "nora@nordicsnacks.example", "Nora Lind"),
    ("Carrier Data Pool", "pia@carrierpool.example", "Pia Novak"),
    ("Rapid Couriers", "rui@rapidcouriers.example", "Rui Duarte"),
    ("CityVan Logistics", "cy@cityvan.example", "Cy Marsh"),
    ("GreenMile", "gil@greenmile.example", "Gil Moreau"),
    ("Northline Freight", "nell@northline.example", "Nell Ahn"),
    ("Parcel Pals", "pat@parcelpals.example", "Pat Osei"),
];

const BRANDS: &[&str] = &["Brightbrew", "Sunny Farms", "Nordic Snacks", "FreshMart"];
const CARRIERS: &[&str] = &[
    "Rapid Couriers",
    "CityVan Logistics",
    "GreenMile",
    "Northline Freight",
    "Parcel Pals",
];
const REGIONS: &[&str] = &["north", "south", "east", "west"];
const DAY_US: i64 = 24 * 3600 * 1_000_000;

/// A small deterministic generator, so every demo has the same data.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn day(now: Timestamp, days_ago: i64) -> String {
    let at = Timestamp::from_micros(now.as_micros() - days_ago * DAY_US);
    at.to_rfc3339()[..10].to_owned()
}

/// A year of FreshMart's sales: 12 stores in 4 regions, 48 SKUs of 4 brands, 2,400 loyalty
/// customers, about 100,000 lines.
pub fn sales_csv(now: Timestamp) -> String {
    let mut dice = Dice(0x5eed_f00d);
    let mut csv = String::from("day,store,region,sku,brand,customer_id,units,revenue\n");
    for days_ago in 1..=365 {
        let date = day(now, days_ago);
        for store in 0..12 {
            let region = REGIONS[store % 4];
            for _ in 0..23 {
                let sku = dice.below(48) as usize;
                let brand = BRANDS[sku % 4];
                // Each store has its regulars: customers cluster by store.
                let customer = store as u64 * 200 + dice.below(200);
                let units = 1 + dice.below(4);
                let price_cents = 150 + (sku as u64 * 37) % 600;
                writeln!(
                    csv,
                    "{date},store-{store:02},{region},sku-{sku:02},{brand},c{customer:05},{units},{}.{:02}",
                    units * price_cents / 100,
                    units * price_cents % 100
                )
                .expect("writing to a string");
            }
        }
    }
    csv
}

/// Half a year of shipments pooled by five carriers: which carrier (the contributor), the
/// region and zone, the recipient (an entity), parcels, and whether they arrived late.
pub fn shipments_csv(now: Timestamp) -> String {
    let mut dice = Dice(0xca11_ab1e);
    let mut csv = String::from("day,carrier,region,zone,recipient_id,parcels,late\n");
    for days_ago in 1..=180 {
        let date = day(now, days_ago);
        for (index, carrier) in CARRIERS.iter().enumerate() {
            // Carriers differ in size, none dominating.
            for _ in 0..(8 + index * 2) {
                let region = REGIONS[dice.below(4) as usize];
                let zone = dice.below(6);
                let recipient = dice.below(1_500);
                let parcels = 1 + dice.below(5);
                let late = u64::from(dice.below(10) < 1 + index as u64 % 3);
                writeln!(
                    csv,
                    "{date},{carrier},{region},{region}-{zone},r{recipient:05},{parcels},{late}"
                )
                .expect("writing to a string");
            }
        }
    }
    csv
}

/// Someone acting as the owner of `org_id`.
fn owner(user_id: agora_domain::UserId, org_id: OrgId) -> Actor {
    Actor {
        user_id: Some(user_id),
        acting: Some(Acting {
            org_id,
            role: Role::Owner,
            is_operator: false,
        }),
        credential: Credential::System,
    }
}

pub(crate) async fn org_named(app: &App, name: &str) -> Result<OrgId, Failure> {
    app.store()
        .org_by_name(&OrgName::parse(name)?)
        .await?
        .map(|org| org.id)
        .ok_or_else(|| Failure::from(anyhow::anyhow!("the demo has no {name}")))
}

pub(crate) async fn owner_of(app: &App, org_name: &str, email: &str) -> Result<Actor, Failure> {
    let org_id = org_named(app, org_name).await?;
    let user = app
        .store()
        .user_by_email(&Email::parse(email)?)
        .await?
        .ok_or_else(|| Failure::from(anyhow::anyhow!("the demo has no {email}")))?;
    Ok(owner(user.user.id, org_id))
}

async fn upload(
    app: &App,
    actor: &Actor,
    name: &str,
    csv: String,
    classes: &[(&str, ColumnClass)],
) -> Result<u64, Failure> {
    let org_id = actor.org_id().expect("an owner acts for an organisation");
    let call = Call::new(actor, RequestId::new());
    let bytes = csv.len() as u64;
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(csv.into_bytes())]);
    app.upload_dataset(&call, org_id, name, UploadFormat::Csv, body)
        .await?;
    let classings = classes
        .iter()
        .map(|(column, class)| ColumnClassing {
            column: (*column).to_owned(),
            class: *class,
        })
        .collect();
    app.classify_dataset(&call, org_id, name, classings).await?;
    Ok(bytes)
}

/// Drafts, proposes and has every party approve a protocol; returns its id.
async fn agree(
    app: &App,
    provider: &Actor,
    consumers: &[Actor],
    document: &str,
) -> Result<agora_domain::ProtocolId, Failure> {
    let provider_org = provider
        .org_id()
        .expect("an owner acts for an organisation");
    let call = Call::new(provider, RequestId::new());
    let drafted = app
        .create_protocol(&call, provider_org, parse_document(document, None)?)
        .await?;
    app.propose_protocol(&call, drafted.id).await?;
    for party in consumers.iter().chain([provider]) {
        let call = Call::new(party, RequestId::new());
        app.approve_protocol(&call, drafted.id, &drafted.latest.content_hash)
            .await?;
    }
    Ok(drafted.id)
}

/// Seeds the data commons; returns the story's lines for the banner.
pub async fn seed(app: &App) -> Result<String, Failure> {
    let system = Actor::system();
    let call = Call::new(&system, RequestId::new());
    for (org, email, name) in COMMONS_ACCOUNTS {
        let created = app
            .create_org(
                &call,
                CreateOrg {
                    name: OrgName::parse(org)?,
                },
            )
            .await?;
        app.add_member(
            &call,
            created.id,
            NewMember {
                email: Email::parse(email)?,
                role: Role::Owner,
                display_name: Some(PersonName::parse(name)?),
                password: Some(Password::parse(DEMO_PASSWORD)?),
            },
        )
        .await?;
    }
    let now = Timestamp::now();
    let fresh = owner_of(app, "FreshMart", "ana@freshmart.example").await?;
    let brands = [
        owner_of(app, "Brightbrew Brands", "carla@brightbrew.example").await?,
        owner_of(app, "Sunny Farms", "sam@sunnyfarms.example").await?,
        owner_of(app, "Nordic Snacks", "nora@nordicsnacks.example").await?,
    ];
    let pool = owner_of(app, "Carrier Data Pool", "pia@carrierpool.example").await?;
    let mut carriers = Vec::new();
    for (org, email, _) in &COMMONS_ACCOUNTS[3..] {
        carriers.push(owner_of(app, org, email).await?);
    }

    use ColumnClass::{Contributor, Dimension, EntityId, Metric, Timestamp as Time};
    let sales_bytes = upload(
        app,
        &fresh,
        "store_sales",
        sales_csv(now),
        &[
            ("day", Time),
            ("store", Dimension),
            ("region", Dimension),
            ("sku", Dimension),
            ("brand", Dimension),
            ("customer_id", EntityId),
            ("units", Metric),
            ("revenue", Metric),
        ],
    )
    .await?;
    let shipment_bytes = upload(
        app,
        &pool,
        "shipments",
        shipments_csv(now),
        &[
            ("day", Time),
            ("carrier", Contributor),
            ("region", Dimension),
            ("zone", Dimension),
            ("recipient_id", EntityId),
            ("parcels", Metric),
            ("late", Metric),
        ],
    )
    .await?;

    let id = |actor: &Actor| format!("\"{}\"", actor.org_id().expect("acting"));
    let not_before = Timestamp::from_micros(now.as_micros() - DAY_US).to_rfc3339();
    let not_after = Timestamp::from_micros(now.as_micros() + 365 * DAY_US).to_rfc3339();
    let sales_protocol = format!(
        r#"name = "freshmart-sales-for-brands"
version = 1
provider = {provider}
consumers = [{consumers}]
purposes = ["assortment", "forecasting"]
analysis = "aggregate"

[[datasets]]
name = "store_sales"
columns = [
  {{ name = "day", class = "timestamp" }},
  {{ name = "store", class = "dimension" }},
  {{ name = "region", class = "dimension" }},
  {{ name = "sku", class = "dimension" }},
  {{ name = "brand", class = "dimension" }},
  {{ name = "customer_id", class = "entity_id" }},
  {{ name = "units", class = "metric" }},
  {{ name = "revenue", class = "metric" }},
]

[output]
min_entities_per_row = 50
min_data_age_days = 7

[quotas]
queries_per_day_max = 500

[validity]
not_before = "{not_before}"
not_after = "{not_after}"
"#,
        provider = id(&fresh),
        consumers = brands.iter().map(id).collect::<Vec<_>>().join(", "),
    );
    agree(app, &fresh, &brands, &sales_protocol).await?;

    let pool_protocol = format!(
        r#"name = "carrier-pool-benchmarks"
version = 1
provider = {provider}
consumers = [{consumers}]
purposes = ["benchmarking", "coordination"]
analysis = "aggregate"

[[datasets]]
name = "shipments"
columns = [
  {{ name = "day", class = "timestamp" }},
  {{ name = "carrier", class = "contributor" }},
  {{ name = "region", class = "dimension" }},
  {{ name = "zone", class = "dimension" }},
  {{ name = "recipient_id", class = "entity_id" }},
  {{ name = "parcels", class = "metric" }},
  {{ name = "late", class = "metric" }},
]

[output]
min_entities_per_row = 20
min_contributors_per_statistic = 5
contributor_share_percent_max = 40

[quotas]
queries_per_day_max = 500

[validity]
not_before = "{not_before}"
not_after = "{not_after}"
"#,
        provider = id(&pool),
        consumers = carriers.iter().map(id).collect::<Vec<_>>().join(", "),
    );
    agree(app, &pool, &carriers, &pool_protocol).await?;

    // Brightbrew asks a question the protocol allows, then one it refuses.
    let brand_call = Call::new(&brands[0], RequestId::new());
    let brand_org = brands[0].org_id().expect("acting");
    let allowed = "SELECT region, SUM(units) AS units, COUNT(DISTINCT store) AS stores \
                   FROM store_sales WHERE brand = 'Brightbrew' GROUP BY region ORDER BY region";
    let answer = app
        .run_query(
            &brand_call,
            brand_org,
            QueryInput {
                purpose: "assortment".into(),
                sql: allowed.into(),
                as_of: Default::default(),
            },
        )
        .await?;
    let refused_sql = "SELECT customer_id, SUM(revenue) FROM store_sales GROUP BY customer_id";
    let refusal = app
        .run_query(
            &brand_call,
            brand_org,
            QueryInput {
                purpose: "assortment".into(),
                sql: refused_sql.into(),
                as_of: Default::default(),
            },
        )
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_else(|| "(unexpectedly answered)".into());

    let mut story = String::new();
    writeln!(story, "\nData commons:").ok();
    writeln!(
        story,
        "  FreshMart shares store_sales (a year, {:.1} MB) with Brightbrew, Sunny Farms and Nordic Snacks",
        sales_bytes as f64 / 1e6
    )
    .ok();
    writeln!(
        story,
        "  under `freshmart-sales-for-brands` (aggregate only, at least 50 customers per row, data older than 7 days)."
    )
    .ok();
    writeln!(
        story,
        "  Five carriers pool shipments ({:.1} MB) through Carrier Data Pool under `carrier-pool-benchmarks`",
        shipment_bytes as f64 / 1e6
    )
    .ok();
    writeln!(
        story,
        "  (at least 5 carriers and 20 recipients behind every figure)."
    )
    .ok();
    writeln!(story, "  Brightbrew asked: {allowed}").ok();
    for row in &answer.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect();
        writeln!(story, "    {}", cells.join("  ")).ok();
    }
    writeln!(story, "  and was refused: {refused_sql}\n    {refusal}").ok();
    writeln!(
        story,
        "  Try: agora query --purpose assortment \"SELECT brand, SUM(revenue) FROM store_sales GROUP BY brand\" (with Carla's token)."
    )
    .ok();
    Ok(story)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_data_has_a_header_and_is_the_same_every_time() {
        let now = Timestamp::from_micros(1_790_000_000_000_000);
        let sales = sales_csv(now);
        assert!(sales.starts_with("day,store,region,sku,brand,customer_id,units,revenue\n"));
        assert_eq!(sales.lines().count(), 1 + 365 * 12 * 23);
        assert_eq!(sales, sales_csv(now));
        let shipments = shipments_csv(now);
        assert_eq!(shipments.lines().count(), 1 + 180 * (8 + 10 + 12 + 14 + 16));
    }
}
