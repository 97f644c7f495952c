//! CSV upload throughput in MB/s, against copying the same file in the same run.
//!
//! A generated sales CSV is uploaded through the datasets engine three ways, each timed alone:
//! staged only (streamed to the staging folder, which is what copying costs), staged and checked
//! (the full read that finds the schema and the first malformed value), and the whole upload
//! (staged, checked, read again and written as a Delta version). The baseline is
//! `tokio::fs::copy` of the same file. No HTTP and no metadata database: this measures the engine.

use std::io::Write;
use std::time::{Duration, Instant};

use agora_app::agora_data::{DataOptions, Datasets, TableLocation};
use agora_domain::dataset::UploadFormat;
use agora_domain::{DatasetId, OrgId};
use anyhow::{Context, Result};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct UploadOptions {
    /// Rows of the generated CSV (about 60 bytes each).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Times each measurement is repeated; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

/// Writes `rows` rows of store sales: store, region, sku, customer, units, revenue, day.
fn generate(path: &std::path::Path, rows: u64) -> Result<u64> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "store,region,sku,customer_id,units,revenue,day")?;
    let regions = ["north", "south", "east", "west"];
    for row in 0..rows {
        let store = row % 97;
        let units = row % 13 + 1;
        writeln!(
            out,
            "s{store},{},sku{},c{},{units},{}.{:02},2026-{:02}-{:02}",
            regions[(store % 4) as usize],
            row % 5_003,
            row % 200_003,
            units * 3,
            row % 100,
            row % 12 + 1,
            row % 28 + 1
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

pub async fn run(options: &UploadOptions) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("sales.csv");
    let bytes = generate(&csv, options.rows).context("generating the CSV")?;
    let mut data_options = DataOptions::new(dir.path().join("data"));
    data_options.upload_bytes_max = u64::MAX;
    data_options.upload_rows_max = u64::MAX;
    let datasets = Datasets::open_local(data_options)?;

    let mut best = [Duration::MAX; 4];
    for _ in 0..options.rounds.max(1) {
        let copy = dir.path().join("copy.csv");
        let started = Instant::now();
        tokio::fs::copy(&csv, &copy).await?;
        best[0] = best[0].min(started.elapsed());
        tokio::fs::remove_file(&copy).await?;

        let started = Instant::now();
        let staged = datasets.stage_file(UploadFormat::Csv, &csv).await?;
        best[1] = best[1].min(started.elapsed());
        drop(staged);

        let started = Instant::now();
        let staged = datasets.stage_file(UploadFormat::Csv, &csv).await?;
        let checked = datasets.check(&staged, None).await?;
        best[2] = best[2].min(started.elapsed());
        drop(staged);

        let location = TableLocation {
            org_id: OrgId::new(),
            dataset_id: DatasetId::new(),
        };
        let started = Instant::now();
        let staged = datasets.stage_file(UploadFormat::Csv, &csv).await?;
        let checked_again = datasets.check(&staged, None).await?;
        datasets.create(&location, &staged, &checked_again).await?;
        best[3] = best[3].min(started.elapsed());
        anyhow::ensure!(checked.rows == options.rows, "every row was read");
    }

    println!("## CSV upload\n");
    println!(
        "{} rows, {:.1} MB, best of {} rounds.\n",
        options.rows,
        bytes as f64 / 1e6,
        options.rounds.max(1)
    );
    println!("| what | seconds | MB/s | of the copy |");
    println!("| --- | ---: | ---: | ---: |");
    let copy = megabytes_per_second(bytes, best[0]);
    for (what, elapsed) in [
        ("baseline: `tokio::fs::copy` of the file", best[0]),
        ("staged (streamed to the staging folder)", best[1]),
        ("staged and checked (schema and every value)", best[2]),
        (
            "whole upload (staged, checked, written as a Delta version)",
            best[3],
        ),
    ] {
        let rate = megabytes_per_second(bytes, elapsed);
        println!(
            "| {what} | {:.2} | {rate:.1} | {:.2} |",
            elapsed.as_secs_f64(),
            rate / copy
        );
    }
    println!();
    Ok(())
}
