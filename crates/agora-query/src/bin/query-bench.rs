//! query-bench: governed aggregate queries against their hand-written equivalent on DataFusion,
//! over the same generated Parquet files, in the same process; then the same hand-written SQL
//! in DuckDB over the same files (`scripts/bench-duckdb.py`, run from here), for the ratio.
//!
//! `cargo run --release -p agora-query --bin query-bench -- --rows 10000000`

use std::sync::Arc;
use std::time::Instant;

use agora_domain::{OrgId, Timestamp};
use agora_query::{Dataset, GovernedEngine, MemoryHistory, Protocol, QueryLimits, QueryRequest};
use anyhow::{Context, bail};
use datafusion::arrow::array::{
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

const FILES: usize = 4;
const BATCH_ROWS: usize = 65_536;
const DAY_MICROS: i64 = 86_400_000_000;

struct Args {
    rows: usize,
    iterations: usize,
    /// The DuckDB script; `none` skips DuckDB.
    duckdb_script: String,
    python: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        rows: 1_000_000,
        iterations: 5,
        duckdb_script: concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/bench-duckdb.py").into(),
        python: "python3".into(),
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words
            .next()
            .with_context(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--rows" => args.rows = value.parse().context("--rows")?,
            "--iterations" => args.iterations = value.parse().context("--iterations")?,
            "--duckdb-script" => args.duckdb_script = value,
            "--python" => args.python = value,
            other => bail!(
                "unknown argument {other}; use --rows N --iterations N \
                 --duckdb-script PATH|none --python PATH"
            ),
        }
    }
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    Ok(args)
}

/// A small deterministic generator (SplitMix64), so every run sees the same data.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("store", DataType::Utf8, false),
        Field::new("brand", DataType::Utf8, false),
        Field::new("sku", DataType::Utf8, false),
        Field::new(
            "day",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("units", DataType::Int64, false),
        Field::new("revenue", DataType::Float64, false),
    ]))
}

fn write_sales(dir: &std::path::Path, rows: usize, start: Timestamp) -> anyhow::Result<()> {
    let mut mix = Mix(42);
    let per_file = rows.div_ceil(FILES);
    for file in 0..FILES {
        let path = dir.join(format!("part-{file}.parquet"));
        let mut writer = ArrowWriter::try_new(std::fs::File::create(&path)?, schema(), None)?;
        let mut left = per_file.min(rows.saturating_sub(file * per_file));
        while left > 0 {
            let n = left.min(BATCH_ROWS);
            left -= n;
            let mut region = Vec::with_capacity(n);
            let mut store = Vec::with_capacity(n);
            let mut brand = Vec::with_capacity(n);
            let mut sku = Vec::with_capacity(n);
            let mut day = Vec::with_capacity(n);
            let mut customer = Vec::with_capacity(n);
            let mut units = Vec::with_capacity(n);
            let mut revenue = Vec::with_capacity(n);
            for _ in 0..n {
                let s = mix.below(200);
                store.push(format!("store-{s:03}"));
                region.push(format!("region-{}", s % 10));
                let k = mix.below(5_000);
                sku.push(format!("sku-{k:04}"));
                brand.push(format!("brand-{:02}", k % 25));
                day.push(start.as_micros() + mix.below(365) as i64 * DAY_MICROS);
                customer.push(mix.below(200_000) as i64);
                let u = 1 + mix.below(5) as i64;
                units.push(u);
                revenue.push(u as f64 * (1.0 + mix.below(1_000) as f64 / 100.0));
            }
            let batch = RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(StringArray::from(region)),
                    Arc::new(StringArray::from(store)),
                    Arc::new(StringArray::from(brand)),
                    Arc::new(StringArray::from(sku)),
                    Arc::new(TimestampMicrosecondArray::from(day)),
                    Arc::new(Int64Array::from(customer)),
                    Arc::new(Int64Array::from(units)),
                    Arc::new(Float64Array::from(revenue)),
                ],
            )?;
            writer.write(&batch)?;
        }
        writer.close()?;
    }
    Ok(())
}

fn protocol(provider: OrgId, consumer: OrgId) -> anyhow::Result<Protocol> {
    let text = format!(
        r#"
name = "bench-sales"
version = 1
provider = "{provider}"
consumers = ["{consumer}"]
purposes = ["bench"]
analysis = "aggregate"

[[datasets]]
name = "sales"
columns = [
  {{ name = "region", class = "dimension" }},
  {{ name = "store", class = "dimension" }},
  {{ name = "brand", class = "dimension" }},
  {{ name = "sku", class = "dimension" }},
  {{ name = "day", class = "timestamp" }},
  {{ name = "customer_id", class = "entity_id" }},
  {{ name = "units", class = "metric" }},
  {{ name = "revenue", class = "metric" }},
]

[output]
min_entities_per_row = 50
min_data_age_days = 7

[validity]
not_before = "2000-01-01T00:00:00Z"
not_after = "2100-01-01T00:00:00Z"
"#
    );
    Ok(Protocol::from_toml(&text)?)
}

/// (name, governed SQL, hand-written equivalent with the same thresholds; `{cutoff}` is replaced).
const QUERIES: &[(&str, &str, &str)] = &[
    (
        "revenue by region",
        "SELECT region, SUM(revenue) AS revenue, COUNT(*) AS n FROM sales GROUP BY region",
        "SELECT region, SUM(revenue) AS revenue, COUNT(*) AS n FROM sales WHERE day <= {cutoff} \
         GROUP BY region HAVING COUNT(DISTINCT customer_id) >= 50",
    ),
    (
        "units by brand and region",
        "SELECT brand, region, SUM(units) AS units, AVG(revenue) AS avg_revenue FROM sales GROUP BY brand, region",
        "SELECT brand, region, SUM(units) AS units, AVG(revenue) AS avg_revenue FROM sales WHERE day <= {cutoff} \
         GROUP BY brand, region HAVING COUNT(DISTINCT customer_id) >= 50",
    ),
    (
        "customers by store",
        "SELECT store, COUNT(DISTINCT customer_id) AS customers FROM sales GROUP BY store",
        "SELECT store, COUNT(DISTINCT customer_id) AS customers FROM sales WHERE day <= {cutoff} \
         GROUP BY store HAVING COUNT(DISTINCT customer_id) >= 50",
    ),
    (
        "customers and revenue by region",
        "SELECT region, COUNT(DISTINCT customer_id) AS customers, SUM(revenue) AS revenue FROM sales GROUP BY region",
        "SELECT region, COUNT(DISTINCT customer_id) AS customers, SUM(revenue) AS revenue FROM sales \
         WHERE day <= {cutoff} GROUP BY region HAVING COUNT(DISTINCT customer_id) >= 50",
    ),
    (
        "revenue by sku in one region (many suppressed)",
        "SELECT sku, SUM(revenue) AS revenue FROM sales WHERE region = 'region-1' GROUP BY sku",
        "SELECT sku, SUM(revenue) AS revenue FROM sales WHERE day <= {cutoff} AND region = 'region-1' \
         GROUP BY sku HAVING COUNT(DISTINCT customer_id) >= 50",
    ),
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Measured {
    name: &'static str,
    direct_ms: f64,
    governed_ms: f64,
    planning_ms: f64,
    rows: usize,
}

#[derive(serde::Deserialize)]
struct DuckTime {
    name: String,
    median_ms: f64,
    rows: usize,
    version: String,
}

/// Runs the DuckDB script over the same files with the same hand-written SQL and threads.
fn duckdb_times(
    args: &Args,
    dir: &std::path::Path,
    threads: usize,
    cutoff_micros: i64,
) -> anyhow::Result<Vec<DuckTime>> {
    use std::io::Write;
    let queries: Vec<serde_json::Value> = QUERIES
        .iter()
        .map(|(name, _, sql)| serde_json::json!({ "name": name, "sql": sql }))
        .collect();
    let input = serde_json::json!({
        "dir": dir.display().to_string(),
        "threads": threads,
        "iterations": args.iterations,
        "cutoff_micros": cutoff_micros,
        "queries": queries,
    });
    let mut child = std::process::Command::new(&args.python)
        .arg(&args.duckdb_script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {} {}", args.python, args.duckdb_script))?;
    child
        .stdin
        .take()
        .context("the script's stdin")?
        .write_all(input.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{} exited with {}", args.duckdb_script, output.status);
    }
    String::from_utf8(output.stdout)?
        .lines()
        .map(|line| serde_json::from_str(line).context("a line of the DuckDB script"))
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
    let now = Timestamp::now();
    let start = now.plus_seconds(-400 * 86_400);
    let dir = std::env::temp_dir().join(format!("agora-query-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let generated = Instant::now();
    write_sales(&dir, args.rows, start)?;
    println!(
        "generated {} rows in {} Parquet files in {:.1} s; {} partitions, {} iterations (median)",
        args.rows,
        FILES,
        generated.elapsed().as_secs_f64(),
        partitions,
        args.iterations
    );

    let path = format!("{}/", dir.display());
    let direct =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    direct
        .register_parquet("sales", &path, ParquetReadOptions::default())
        .await?;
    let table = direct.table_provider("sales").await?;

    let provider = OrgId::new();
    let consumer = OrgId::new();
    let protocols = vec![protocol(provider, consumer)?];
    let datasets = vec![Dataset {
        provider,
        name: "sales".into(),
        table,
    }];
    let limits = QueryLimits {
        partitions_max: partitions,
        memory_bytes_max: 8 * 1024 * 1024 * 1024,
        query_timeout_ms: 600_000,
        ..QueryLimits::default()
    };
    let cutoff_micros = now.plus_seconds(-7 * 86_400).as_micros();
    let cutoff = format!("to_timestamp_micros({cutoff_micros})");

    let mut measured = Vec::new();
    for (name, governed_sql, hand_sql) in QUERIES {
        let hand_sql = hand_sql.replace("{cutoff}", &cutoff);
        // A fresh history per query: differencing must not suppress repeated runs' rows.
        let engine = GovernedEngine::new(limits, Arc::new(MemoryHistory::default()))?;
        let request = QueryRequest {
            coalitions: Vec::new(),
            consumer,
            purpose: "bench".into(),
            sql: (*governed_sql).into(),
            now,
        };
        let mut direct_ms = Vec::new();
        let mut governed_ms = Vec::new();
        let mut planning_ms = Vec::new();
        let mut rows = (0, 0);
        for iteration in 0..=args.iterations {
            let started = Instant::now();
            let batches = direct.sql(&hand_sql).await?.collect().await?;
            let elapsed = started.elapsed().as_secs_f64() * 1e3;
            let direct_rows: usize = batches.iter().map(RecordBatch::num_rows).sum();

            let started = Instant::now();
            let output = engine
                .run(&request, &protocols, &datasets)
                .await
                .with_context(|| format!("governed {name}"))?;
            let governed_elapsed = started.elapsed().as_secs_f64() * 1e3;
            // The first run of each is a warm-up.
            if iteration > 0 {
                direct_ms.push(elapsed);
                governed_ms.push(governed_elapsed);
                planning_ms.push(output.report.planning_micros as f64 / 1e3);
            }
            rows = (direct_rows, output.row_count());
        }
        if rows.0 != rows.1 {
            bail!(
                "{name}: hand-written returned {} rows, governed {}",
                rows.0,
                rows.1
            );
        }
        measured.push(Measured {
            name,
            direct_ms: median(direct_ms),
            governed_ms: median(governed_ms),
            planning_ms: median(planning_ms),
            rows: rows.1,
        });
    }

    let duckdb = if args.duckdb_script == "none" {
        None
    } else {
        match duckdb_times(&args, &dir, partitions, cutoff_micros) {
            Ok(times) => Some(times),
            Err(error) => {
                println!("DuckDB skipped: {error:#}");
                None
            }
        }
    };

    println!();
    println!(
        "| query | hand-written DataFusion ms | governed ms | governed ÷ hand-written | plan+check ms | DuckDB ms | governed ÷ DuckDB | rows |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for one in &measured {
        let (duck_ms, duck_ratio) = match duckdb.as_ref().and_then(|times| {
            times
                .iter()
                .find(|time| time.name == one.name)
                .map(|time| (time.median_ms, time.rows))
        }) {
            Some((ms, duck_rows)) => {
                if duck_rows != one.rows {
                    bail!(
                        "{}: DuckDB returned {duck_rows} rows, governed {}",
                        one.name,
                        one.rows
                    );
                }
                (format!("{ms:.1}"), format!("{:.2}", one.governed_ms / ms))
            }
            None => ("".into(), "".into()),
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {duck_ms} | {duck_ratio} | {} |",
            one.name,
            one.direct_ms,
            one.governed_ms,
            one.governed_ms / one.direct_ms,
            one.planning_ms,
            one.rows
        );
    }
    if let Some(version) = duckdb.as_ref().and_then(|times| times.first()) {
        println!("\nDuckDB {} with {partitions} threads.", version.version);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
