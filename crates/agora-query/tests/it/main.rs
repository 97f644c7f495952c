//! The one integration-test binary of agora-query: fixtures and the `check` helper; the
//! modules hold the tables of cases.

mod governed;
mod overlap;
mod protocols;
mod remainder;
mod suppression;
mod threats;

use std::sync::Arc;

use agora_domain::{OrgId, Timestamp};
use agora_query::{
    Dataset, Error, GovernedEngine, MemoryHistory, Protocol, QueryLimits, QueryOutput, QueryRequest,
};
use datafusion::arrow::array::{
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;

pub const DAY_MICROS: i64 = 86_400_000_000;

/// The fixed clock of every test: 2025-06-01T00:00:00Z.
pub fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2025-06-01T00:00:00Z").expect("a valid time")
}

pub fn grocer() -> OrgId {
    "org_0190c0de000070008000000000000001"
        .parse()
        .expect("a valid id")
}
pub fn brand() -> OrgId {
    "org_0190c0de000070008000000000000002"
        .parse()
        .expect("a valid id")
}
pub fn other_brand() -> OrgId {
    "org_0190c0de000070008000000000000003"
        .parse()
        .expect("a valid id")
}
pub fn carriers() -> OrgId {
    "org_0190c0de000070008000000000000004"
        .parse()
        .expect("a valid id")
}

/// The grocer's sales protocol for the brand, in TOML as the docs show it.
pub fn sales_protocol_toml() -> String {
    format!(
        r#"
name = "freshmart-sales-for-brands"
version = 1
provider = "{grocer}"
consumers = ["{brand}"]
purposes = ["assortment", "forecasting"]
analysis = "aggregate"

[[datasets]]
name = "sales"
columns = [
  {{ name = "region", class = "dimension" }},
  {{ name = "store", class = "dimension" }},
  {{ name = "sku", class = "dimension" }},
  {{ name = "day", class = "timestamp" }},
  {{ name = "customer_id", class = "entity_id" }},
  {{ name = "loyalty_card", class = "join_key" }},
  {{ name = "units", class = "metric" }},
  {{ name = "revenue", class = "metric" }},
  {{ name = "margin", class = "metric", allowed = false }},
  {{ name = "cost", class = "blocked" }},
]

[output]
min_entities_per_row = 50
min_data_age_days = 7

[joins]
joinable_columns = ["loyalty_card"]
operators = ["="]

[validity]
not_before = "2025-01-01T00:00:00Z"
not_after = "2026-01-01T00:00:00Z"
"#,
        grocer = grocer(),
        brand = brand(),
    )
}

pub fn sales_protocol() -> Protocol {
    Protocol::from_toml(&sales_protocol_toml()).expect("the fixture protocol parses")
}

/// The same data under a protocol that requires joining with the brand's own data.
pub fn overlap_protocol() -> Protocol {
    let mut protocol = sales_protocol();
    protocol.name = "freshmart-sales-overlap".into();
    protocol.purposes = vec!["overlap".into()];
    protocol.joins.join_required_with_own_data = true;
    protocol
}

/// Carriers pool shipments; the contributor column says which carrier a row comes from.
pub fn pooled_protocol() -> Protocol {
    Protocol::from_json(&format!(
        r#"{{
  "name": "carrier-pool", "version": 1, "provider": "{carriers}", "consumers": ["{brand}"],
  "purposes": ["forecasting"], "analysis": "aggregate",
  "datasets": [{{ "name": "shipments", "columns": [
    {{ "name": "carrier", "class": "contributor" }},
    {{ "name": "lane", "class": "dimension" }},
    {{ "name": "parcels", "class": "metric" }} ] }}],
  "validity": {{ "not_before": "2025-01-01T00:00:00Z", "not_after": "2026-01-01T00:00:00Z" }}
}}"#,
        carriers = carriers(),
        brand = brand(),
    ))
    .expect("the pooled fixture parses")
}

/// Sales, reproducible: north has 120 customers (100 in store n1, 20 in n2), south 60 (s1),
/// tiny 3 (t1). Each customer has two old rows (2025-01-10 and 2025-01-11) and one recent row
/// (yesterday) that the minimum data age hides; the rare SKU is customer c005's alone.
pub fn sales_batch() -> RecordBatch {
    let mut region = Vec::new();
    let mut store = Vec::new();
    let mut sku = Vec::new();
    let mut day = Vec::new();
    let mut customer = Vec::new();
    let mut card = Vec::new();
    let mut units = Vec::new();
    let mut revenue = Vec::new();
    let old = Timestamp::parse_rfc3339("2025-01-10T00:00:00Z")
        .expect("valid")
        .as_micros();
    let recent = now().as_micros() - DAY_MICROS;
    for i in 0..183i64 {
        let (r, s) = match i {
            0..100 => ("north", "n1"),
            100..120 => ("north", "n2"),
            120..180 => ("south", "s1"),
            _ => ("tiny", "t1"),
        };
        for (row, at) in [(0, old), (1, old + DAY_MICROS), (2, recent)] {
            region.push(r);
            store.push(s);
            sku.push(if i == 5 && row < 2 {
                "sku-rare"
            } else {
                "sku-a"
            });
            day.push(at);
            customer.push(format!("c{i:03}"));
            card.push(format!("card{i}"));
            let unit = 1 + i % 3;
            units.push(unit);
            revenue.push(if row == 2 { 1000.0 } else { 2.5 * unit as f64 });
        }
    }
    let rows = region.len();
    RecordBatch::try_new(
        Arc::new(sales_schema()),
        vec![
            Arc::new(StringArray::from(region)),
            Arc::new(StringArray::from(store)),
            Arc::new(StringArray::from(sku)),
            Arc::new(TimestampMicrosecondArray::from(day)),
            Arc::new(StringArray::from(customer)),
            Arc::new(StringArray::from(card)),
            Arc::new(Int64Array::from(units)),
            Arc::new(Float64Array::from(revenue)),
            Arc::new(Float64Array::from(vec![0.3; rows])),
            Arc::new(Float64Array::from(vec![1.0; rows])),
        ],
    )
    .expect("the columns match the schema")
}

pub fn sales_schema() -> Schema {
    Schema::new(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("store", DataType::Utf8, false),
        Field::new("sku", DataType::Utf8, false),
        Field::new(
            "day",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("loyalty_card", DataType::Utf8, false),
        Field::new("units", DataType::Int64, false),
        Field::new("revenue", DataType::Float64, false),
        Field::new("margin", DataType::Float64, false),
        Field::new("cost", DataType::Float64, false),
    ])
}

/// The brand's own loyalty members: cards 0..60 gold, 60..150 silver.
fn members_batch() -> RecordBatch {
    let cards: Vec<String> = (0..150).map(|i| format!("card{i}")).collect();
    let segments: Vec<&str> = (0..150)
        .map(|i| if i < 60 { "gold" } else { "silver" })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("card", DataType::Utf8, false),
            Field::new("segment", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(cards)),
            Arc::new(StringArray::from(segments)),
        ],
    )
    .expect("valid")
}

/// The brand's own numbers 0..3000, to exhaust time and memory with.
fn numbers_batch() -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from((0..3000).collect::<Vec<i64>>()))],
    )
    .expect("valid")
}

/// Lane a: six carriers, ten rows of 5 parcels each; lane b: two carriers; lane c: six
/// carriers, but k0's rows carry 50 parcels, two thirds of the lane's 750.
fn shipments_batch() -> RecordBatch {
    let mut carrier = Vec::new();
    let mut lane = Vec::new();
    let mut parcels = Vec::new();
    for (l, count) in [("a", 6), ("b", 2), ("c", 6)] {
        for c in 0..count {
            for _ in 0..10 {
                carrier.push(format!("k{c}"));
                lane.push(l);
                parcels.push(if l == "c" && c == 0 { 50 } else { 5 });
            }
        }
    }
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("carrier", DataType::Utf8, false),
            Field::new("lane", DataType::Utf8, false),
            Field::new("parcels", DataType::Int64, false),
        ])),
        vec![
            Arc::new(StringArray::from(carrier)),
            Arc::new(StringArray::from(lane)),
            Arc::new(Int64Array::from(parcels)),
        ],
    )
    .expect("valid")
}

pub fn table(batch: RecordBatch) -> Arc<MemTable> {
    Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]]).expect("valid table"))
}

pub fn datasets() -> Vec<Dataset> {
    vec![
        Dataset {
            provider: grocer(),
            name: "sales".into(),
            table: table(sales_batch()),
        },
        // Another provider's data that no protocol shares with the brand.
        Dataset {
            provider: other_brand(),
            name: "competitor_sales".into(),
            table: table(sales_batch()),
        },
        Dataset {
            provider: carriers(),
            name: "shipments".into(),
            table: table(shipments_batch()),
        },
        Dataset {
            provider: brand(),
            name: "loyalty_members".into(),
            table: table(members_batch()),
        },
        Dataset {
            provider: brand(),
            name: "numbers".into(),
            table: table(numbers_batch()),
        },
    ]
}

pub fn protocols() -> Vec<Protocol> {
    vec![sales_protocol(), overlap_protocol(), pooled_protocol()]
}

pub fn engine_with(limits: QueryLimits) -> GovernedEngine {
    GovernedEngine::new(limits, Arc::new(MemoryHistory::default())).expect("engine builds")
}

pub fn engine() -> GovernedEngine {
    engine_with(QueryLimits {
        query_timeout_ms: 2_000,
        memory_bytes_max: 64 * 1024 * 1024,
        result_rows_max: 5_000,
        ..QueryLimits::default()
    })
}

pub fn request(purpose: &str, sql: &str) -> QueryRequest {
    QueryRequest {
        coalitions: Vec::new(),
        consumer: brand(),
        purpose: purpose.into(),
        sql: sql.into(),
        now: now(),
    }
}

/// What a query came to, in a form a table of cases can state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rows as `a|b|c`, in result order.
    Rows(Vec<String>),
    Refused(&'static str),
    Limit(&'static str),
    Invalid(String),
    /// The generic execution failure, whose text says nothing about the data.
    Failed,
    Other(String),
}

pub fn rows_of(output: &QueryOutput) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in &output.batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|column| array_value_to_string(column, row).expect("displayable"))
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows
}

pub fn outcome(result: Result<QueryOutput, Error>) -> Outcome {
    match result {
        Ok(output) => Outcome::Rows(rows_of(&output)),
        Err(Error::Refused(refusal)) => Outcome::Refused(refusal.rule),
        Err(Error::LimitExceeded { limit, .. }) => Outcome::Limit(limit),
        Err(Error::Invalid { field, .. }) => Outcome::Invalid(field),
        Err(error @ Error::QueryFailed { .. }) => {
            assert_eq!(error.to_string(), "the query failed while running");
            Outcome::Failed
        }
        Err(other) => Outcome::Other(other.to_string()),
    }
}

pub async fn run_on(engine: &GovernedEngine, purpose: &str, sql: &str) -> Outcome {
    outcome(
        engine
            .run(&request(purpose, sql), &protocols(), &datasets())
            .await,
    )
}

pub async fn run(purpose: &str, sql: &str) -> Outcome {
    run_on(&engine(), purpose, sql).await
}

/// Runs SQL directly on DataFusion over the raw tables: the reference model for positive cases.
pub async fn reference(sql: &str) -> Vec<String> {
    let context = SessionContext::new();
    context
        .register_table("sales", table(sales_batch()))
        .expect("registers");
    context
        .register_table("loyalty_members", table(members_batch()))
        .expect("registers");
    context
        .register_table("shipments", table(shipments_batch()))
        .expect("registers");
    let batches = context
        .sql(sql)
        .await
        .expect("plans")
        .collect()
        .await
        .expect("runs");
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|column| array_value_to_string(column, row).expect("displayable"))
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows
}
