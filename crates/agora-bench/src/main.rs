//! `agora-bench`: measures the foundation against baselines run in the same process, and prints ratios.
//!
//! Everything runs in this process: the real server (the same `App` and router as `agora serve`)
//! on a temporary SQLite file or a throwaway PostgreSQL database, a baseline beside it, and the
//! load generator. Each benchmark is bounded in time and count and stops by itself. Results are
//! Markdown tables, to paste into `docs/benchmarks.md`; run a release build for figures:
//! `cargo run --release -p agora-bench -- all`.

mod audit_verify;
mod checkout;
mod database;
mod dataset_upload;
mod http_reads;
mod ledger;
mod load;
mod report;
mod servers;
mod writes;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::audit_verify::AuditOptions;
use crate::database::BackendOptions;
use crate::ledger::LedgerBenchOptions;
use crate::load::LoadOptions;

/// Benchmarks of Agora's foundation, each as a ratio against a baseline run in the same process.
#[derive(Debug, Parser)]
#[command(name = "agora-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Authenticated `GET /api/v1/orgs/{id}` against a bare axum handler returning the same JSON.
    Http {
        #[command(flatten)]
        load: LoadOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
    /// Audited `POST /api/v1/orgs` with unique names, on each database.
    Writes {
        #[command(flatten)]
        load: LoadOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
    /// `agora audit verify`'s chain verification against the same hashing in memory.
    AuditVerify {
        #[command(flatten)]
        audit: AuditOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
    /// All of the above, one after the other.
    All {
        #[command(flatten)]
        load: LoadOptions,
        #[command(flatten)]
        audit: AuditOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
    /// Not part of `all`: end-to-end checkout over HTTP (order, stock, commission, ledger) against one audited write.
    Checkout {
        #[command(flatten)]
        load: LoadOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
    /// Not part of `all`: CSV upload throughput in MB/s through the datasets engine, against copying the file.
    DatasetUpload {
        #[command(flatten)]
        upload: dataset_upload::UploadOptions,
    },
    /// Not part of `all`: durable transfers/s through the ledger's single writer (group commit) against plain SQLite from Python.
    Ledger {
        #[command(flatten)]
        ledger: LedgerBenchOptions,
        #[command(flatten)]
        backends: BackendOptions,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli.command).await {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

async fn run(command: Command) -> Result<()> {
    print_preamble();
    match command {
        Command::Http { load, backends } => http_reads::run(&load, &backends).await,
        Command::Writes { load, backends } => writes::run(&load, &backends).await,
        Command::AuditVerify { audit, backends } => audit_verify::run(&audit, &backends).await,
        Command::Ledger { ledger, backends } => ledger::run(&ledger, &backends).await,
        Command::Checkout { load, backends } => checkout::run(&load, &backends).await,
        Command::DatasetUpload { upload } => dataset_upload::run(&upload).await,
        Command::All {
            load,
            audit,
            backends,
        } => {
            http_reads::run(&load, &backends).await?;
            writes::run(&load, &backends).await?;
            audit_verify::run(&audit, &backends).await
        }
    }
}

/// Says what the figures can be compared with: the build and the cores everything shares.
fn print_preamble() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let build = if cfg!(debug_assertions) {
        "a debug build: figures are meaningless, run `cargo run --release -p agora-bench`"
    } else {
        "a release build"
    };
    println!("# agora-bench\n");
    println!("Measured by {build}, on {cores} cores.");
    println!(
        "The load generator, the servers under test and the database share those cores: every req/s here is a lower bound for a server with the machine to itself, and the ratios compare like with like.\n"
    );
}
