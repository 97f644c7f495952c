//! pooled-bench: queries over a coalition's pooled data (3,000 contributing members by
//! default), governed by the charter's pooled rules (at least 5 contributors per statistic, none
//! above 25% of it, rows at least 90 days old), against the hand-written equivalent that applies
//! the same rules in SQL, on DataFusion over the same Parquet files in the same process.
//!
//! `cargo run --release -p agora-query --bin pooled-bench -- --members 3000 --rows-per-member 1000`

use std::sync::Arc;
use std::time::Instant;

use agora_domain::{OrgId, Timestamp};
use agora_query::{Dataset, GovernedEngine, MemoryHistory, Protocol, QueryLimits, QueryRequest};
use anyhow::{Context, bail};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

const FILES: usize = 4;
const DAY_MICROS: i64 = 86_400_000_000;

struct Args {
    members: usize,
    rows_per_member: usize,
    iterations: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        members: 3_000,
        rows_per_member: 1_000,
        iterations: 5,
    };
    let mut words = std::env::args().skip(1);
    while let Some(word) = words.next() {
        let value = words
            .next()
            .with_context(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--members" => args.members = value.parse().context("--members")?,
            "--rows-per-member" => {
                args.rows_per_member = value.parse().context("--rows-per-member")?
            }
            "--iterations" => args.iterations = value.parse().context("--iterations")?,
            other => bail!(
                "unknown argument {other}; use --members N --rows-per-member N --iterations N"
            ),
        }
    }
    if args.iterations == 0 || args.members == 0 || args.rows_per_member == 0 {
        bail!("--members, --rows-per-member and --iterations must be at least 1");
    }
    Ok(args)
}

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
        Field::new("contributor", DataType::Utf8, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("line", DataType::Utf8, false),
        Field::new(
            "week_start",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("masks", DataType::Int64, false),
    ]))
}

/// Each member reports capacity per region, line and week for two years; a few large members
/// and one region where a single member dominates, so that some statistics are withheld.
fn write_pool(dir: &std::path::Path, args: &Args, now: Timestamp) -> anyhow::Result<usize> {
    let mut mix = Mix(7);
    let mut written = 0;
    let members_per_file = args.members.div_ceil(FILES);
    for file in 0..FILES {
        let path = dir.join(format!("part-{file}.parquet"));
        let mut writer = ArrowWriter::try_new(std::fs::File::create(&path)?, schema(), None)?;
        let first = file * members_per_file;
        let last = ((file + 1) * members_per_file).min(args.members);
        for member in first..last {
            let n = args.rows_per_member;
            let mut contributor = Vec::with_capacity(n);
            let mut region = Vec::with_capacity(n);
            let mut line = Vec::with_capacity(n);
            let mut week = Vec::with_capacity(n);
            let mut masks = Vec::with_capacity(n);
            for _ in 0..n {
                contributor.push(format!("member-{member:05}"));
                // Region 9 has only member 0 and a handful of others: dominated, withheld.
                let r = if member % 500 == 0 { 9 } else { mix.below(9) };
                region.push(format!("region-{r}"));
                line.push(["surgical", "ffp2", "ffp3"][mix.below(3) as usize].to_owned());
                week.push(now.as_micros() - (7 * mix.below(104) as i64 + 1) * DAY_MICROS);
                let size = if member < 10 { 50 } else { 1 };
                masks.push(size * (100 + mix.below(1_000) as i64));
            }
            let batch = RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(StringArray::from(contributor)),
                    Arc::new(StringArray::from(region)),
                    Arc::new(StringArray::from(line)),
                    Arc::new(TimestampMicrosecondArray::from(week)),
                    Arc::new(Int64Array::from(masks)),
                ],
            )?;
            writer.write(&batch)?;
            written += n;
        }
        writer.close()?;
    }
    Ok(written)
}

fn protocol(coalition: OrgId) -> anyhow::Result<Protocol> {
    let text = format!(
        r#"
name = "pooled"
version = 1
provider = "{coalition}"
consumers = ["{coalition}"]
purposes = ["capacity-planning"]
analysis = "aggregate"

[[datasets]]
name = "pool"
columns = [
  {{ name = "contributor", class = "contributor" }},
  {{ name = "region", class = "dimension" }},
  {{ name = "line", class = "dimension" }},
  {{ name = "week_start", class = "timestamp" }},
  {{ name = "masks", class = "metric" }},
]

[output]
min_contributors_per_statistic = 5
contributor_share_percent_max = 25
min_data_age_days = 90

[validity]
not_before = "2000-01-01T00:00:00Z"
not_after = "2100-01-01T00:00:00Z"
"#
    );
    Ok(Protocol::from_toml(&text)?)
}

/// (name, governed SQL, hand-written equivalent; `{cutoff}` is replaced). The hand-written query
/// sums per contributor first, then keeps groups with at least 5 contributors and none above
/// 25% of the group's sum: the same rules the engine applies.
const QUERIES: &[(&str, &str, &str)] = &[
    (
        "masks by region",
        "SELECT region, SUM(masks) AS masks FROM pool GROUP BY region",
        "WITH per AS (SELECT region, contributor, SUM(masks) AS m FROM pool WHERE week_start <= {cutoff} \
         GROUP BY region, contributor) \
         SELECT region, SUM(m) AS masks FROM per GROUP BY region \
         HAVING COUNT(*) >= 5 AND MAX(m) * 100 <= 25 * SUM(m)",
    ),
    (
        "masks by region and line",
        "SELECT region, line, SUM(masks) AS masks FROM pool GROUP BY region, line",
        "WITH per AS (SELECT region, line, contributor, SUM(masks) AS m FROM pool WHERE week_start <= {cutoff} \
         GROUP BY region, line, contributor) \
         SELECT region, line, SUM(m) AS masks FROM per GROUP BY region, line \
         HAVING COUNT(*) >= 5 AND MAX(m) * 100 <= 25 * SUM(m)",
    ),
    (
        "masks by week (104 groups)",
        "SELECT week_start, SUM(masks) AS masks FROM pool GROUP BY week_start",
        "WITH per AS (SELECT week_start, contributor, SUM(masks) AS m FROM pool WHERE week_start <= {cutoff} \
         GROUP BY week_start, contributor) \
         SELECT week_start, SUM(m) AS masks FROM per GROUP BY week_start \
         HAVING COUNT(*) >= 5 AND MAX(m) * 100 <= 25 * SUM(m)",
    ),
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
    let now = Timestamp::now();
    let dir = std::env::temp_dir().join(format!("agora-pooled-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let generated = Instant::now();
    let rows = write_pool(&dir, &args, now)?;
    println!(
        "generated {rows} rows from {} members in {FILES} Parquet files in {:.1} s; {partitions} partitions, {} iterations (median)",
        args.members,
        generated.elapsed().as_secs_f64(),
        args.iterations
    );

    let path = format!("{}/", dir.display());
    let direct =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    direct
        .register_parquet("pool", &path, ParquetReadOptions::default())
        .await?;
    let table = direct.table_provider("pool").await?;
    let coalition = OrgId::new();
    let member = OrgId::new();
    let protocols = vec![protocol(coalition)?];
    let datasets = vec![Dataset {
        provider: coalition,
        name: "pool".into(),
        table,
    }];
    let limits = QueryLimits {
        partitions_max: partitions,
        memory_bytes_max: 8 * 1024 * 1024 * 1024,
        query_timeout_ms: 600_000,
        ..QueryLimits::default()
    };
    let cutoff = format!(
        "to_timestamp_micros({})",
        now.plus_seconds(-90 * 86_400).as_micros()
    );

    println!();
    println!(
        "| query | hand-written DataFusion ms | governed ms | governed ÷ hand-written | plan+check ms | rows (hand-written / governed) | withheld by the engine |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, governed_sql, hand_sql) in QUERIES {
        let hand_sql = hand_sql.replace("{cutoff}", &cutoff);
        let engine = GovernedEngine::new(limits, Arc::new(MemoryHistory::default()))?;
        // A member of the coalition queries its pooled data.
        let request = QueryRequest {
            consumer: member,
            coalitions: vec![coalition],
            purpose: "capacity-planning".into(),
            sql: (*governed_sql).into(),
            now,
        };
        let (mut direct_ms, mut governed_ms, mut planning_ms) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut counts = (0, 0, 0);
        for iteration in 0..=args.iterations {
            let started = Instant::now();
            let batches = direct.sql(&hand_sql).await?.collect().await?;
            let direct_elapsed = started.elapsed().as_secs_f64() * 1e3;
            let started = Instant::now();
            let output = engine
                .run(&request, &protocols, &datasets)
                .await
                .with_context(|| format!("governed {name}"))?;
            let governed_elapsed = started.elapsed().as_secs_f64() * 1e3;
            if iteration > 0 {
                direct_ms.push(direct_elapsed);
                governed_ms.push(governed_elapsed);
                planning_ms.push(output.report.planning_micros as f64 / 1e3);
            }
            counts = (
                batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                output.row_count(),
                output.report.groups_suppressed.total(),
            );
        }
        let (direct_ms, governed_ms) = (median(direct_ms), median(governed_ms));
        println!(
            "| {name} | {direct_ms:.1} | {governed_ms:.1} | {:.2} | {:.2} | {} / {} | {} |",
            governed_ms / direct_ms,
            median(planning_ms),
            counts.0,
            counts.1,
            counts.2
        );
        if counts.0 != counts.1 {
            println!(
                "  note: the hand-written query released {} groups, the engine {}",
                counts.0, counts.1
            );
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
