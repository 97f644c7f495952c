//! `agora-bench ledger`: durable transfers per second through the ledger's single writer
//! (`LedgerWriter`, group commit), against plain SQLite driven by a Python script in the same run.
//!
//! Every figure counts transfers acknowledged, and the writer acknowledges only after the commit
//! that holds them: on SQLite with `synchronous = FULL` (the store's setting), that is after the
//! fsync. The baseline, `baseline/sqlite_ledger_baseline.py`, does one INSERT and two balance
//! UPDATEs per transfer in WAL mode with `synchronous = FULL`, committing batches of 1, 100 and
//! 8,190: the floor that notes/ledger.md anchors (277, about 19,000 and about 45,000 transfers/s).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agora_app::{LedgerOptions, LedgerStats, LedgerWriter};
use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Currency, Transfer, TransferId, TransferKind,
};
use anyhow::{Context, Result, bail, ensure};

use crate::database::{BackendOptions, Database};
use crate::report::{self, Table};

/// The baseline script, run with `--python`.
const BASELINE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/baseline/sqlite_ledger_baseline.py"
);

/// Transfers per request of the one-client scenarios, as the baseline commits them.
const BATCH_SIZES: [usize; 3] = [1, 100, agora_app::agora_ledger::BATCH_TRANSFERS_MAX];

/// How long each scenario runs, with how many clients, over how many accounts.
#[derive(Debug, Clone, clap::Args)]
pub struct LedgerBenchOptions {
    /// Seconds each scenario runs (and the baseline at each batch size); at least one request each.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Concurrent clients sending single transfers in the group-commit scenarios.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4_096))]
    pub clients: u64,
    /// Accounts that transfers move between (in the hot-account scenario, from them into one).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub accounts: u64,
    /// The Python interpreter that runs the baseline.
    #[arg(long, default_value = "python3")]
    pub python: String,
}

/// What a scenario sends.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// One client, one request of `batch` transfers at a time, each awaited.
    OneClient { batch: usize },
    /// Many clients, each sending single transfers as fast as they are answered.
    Clients { clients: usize, hot: bool },
}

impl Scenario {
    fn describe(self) -> String {
        match self {
            Scenario::OneClient { batch } => {
                format!("1 client, {} per request", report::count(batch as u64))
            }
            Scenario::Clients { clients, hot } => format!(
                "{clients} clients, 1 per request{}",
                if hot { ", into one hot account" } else { "" }
            ),
        }
    }

    /// The baseline's batch size to compare with: what each request asks to be committed.
    fn baseline_batch(self) -> usize {
        match self {
            Scenario::OneClient { batch } => batch,
            Scenario::Clients { .. } => 1,
        }
    }
}

struct Measured {
    transfers: u64,
    elapsed: Duration,
    stats: LedgerStats,
}

pub async fn run(options: &LedgerBenchOptions, backend_options: &BackendOptions) -> Result<()> {
    ensure!(
        options.seconds > 0.0 && options.seconds <= 600.0,
        "--seconds must be more than 0 and at most 600"
    );
    println!("## ledger: durable transfers through the single writer\n");
    println!(
        "`LedgerWriter` on a fresh database per engine: single transfers of 1 between {} accounts, each scenario for {} s. A transfer counts once the writer has answered it, which it does only after the commit that holds it (on SQLite, `synchronous = FULL`).",
        report::count(options.accounts),
        options.seconds
    );
    println!(
        "The baseline is `baseline/sqlite_ledger_baseline.py`: plain SQLite from Python, WAL and `synchronous = FULL`, one INSERT and two balance UPDATEs per transfer, committing batches of 1, 100 and 8,190, run first, alone. A group-commit scenario is compared with its batch of 1: what each of its requests asks.\n"
    );
    let baseline = match run_baseline(options).await {
        Ok(baseline) => Some(baseline),
        Err(error) => {
            eprintln!("warning: the Python baseline did not run, so no ratios: {error:#}");
            None
        }
    };

    let clients = options.clients as usize;
    let mut scenarios: Vec<Scenario> = BATCH_SIZES
        .iter()
        .map(|&batch| Scenario::OneClient { batch })
        .collect();
    scenarios.push(Scenario::Clients {
        clients,
        hot: false,
    });
    scenarios.push(Scenario::Clients { clients, hot: true });

    let mut table = Table::new(
        2,
        &[
            "database",
            "requests",
            "transfers",
            "commits",
            "transfers/commit",
            "transfers/s",
            "baseline transfers/s",
            "ratio",
        ],
    );
    if let Some(baseline) = &baseline {
        for batch in BATCH_SIZES {
            if let Some(per_second) = baseline.get(&batch) {
                table.row(vec![
                    "SQLite from Python (baseline)".to_owned(),
                    format!("1 client, {} per commit", report::count(batch as u64)),
                    String::new(),
                    String::new(),
                    report::count(batch as u64),
                    report::rate(*per_second),
                    String::new(),
                    String::new(),
                ]);
            }
        }
    }
    for backend in backend_options.backends()? {
        let database = Database::create(backend, backend_options).await?;
        let measured = measure(&database, options, backend_options, &scenarios).await;
        database.remove().await?;
        let measured = measured.with_context(|| format!("ledger on {}", backend.name()))?;
        for (scenario, measured) in scenarios.iter().zip(measured) {
            let per_second = measured.transfers as f64 / measured.elapsed.as_secs_f64();
            let baseline_per_second = baseline
                .as_ref()
                .and_then(|baseline| baseline.get(&scenario.baseline_batch()))
                .copied();
            table.row(vec![
                backend.name().to_owned(),
                scenario.describe(),
                report::count(measured.transfers),
                report::count(measured.stats.batches_committed),
                format!(
                    "{:.1}",
                    measured.stats.transfers_committed as f64
                        / measured.stats.batches_committed.max(1) as f64
                ),
                report::rate(per_second),
                baseline_per_second.map_or_else(|| "n/a".to_owned(), report::rate),
                baseline_per_second.map_or_else(
                    || "n/a".to_owned(),
                    |base| format!("{:.2}", per_second / base),
                ),
            ]);
        }
    }
    table.print();
    println!();
    Ok(())
}

/// Runs every scenario on one database, through one writer, one after the other.
async fn measure(
    database: &Database,
    options: &LedgerBenchOptions,
    backend_options: &BackendOptions,
    scenarios: &[Scenario],
) -> Result<Vec<Measured>> {
    let app = database.open_app(backend_options).await?;
    let writer = LedgerWriter::start(app.store().clone(), LedgerOptions::default())
        .await
        .context("starting the ledger writer")?;
    let result = measure_writer(&writer, options, scenarios).await;
    writer.shutdown().await;
    app.store().close().await;
    result
}

async fn measure_writer(
    writer: &LedgerWriter,
    options: &LedgerBenchOptions,
    scenarios: &[Scenario],
) -> Result<Vec<Measured>> {
    let currency = Currency::parse("EUR").expect("EUR is a currency");
    let accounts: Vec<Account> = (0..=options.accounts)
        .map(|_| {
            Account::new(
                AccountId::new(),
                currency,
                1,
                BalanceLimit::None,
                Timestamp::now(),
            )
        })
        .collect();
    for chunk in accounts.chunks(agora_app::agora_ledger::BATCH_TRANSFERS_MAX) {
        writer.create_accounts(chunk.to_vec()).await?;
    }
    // The last account is the hot one; the others are picked at random.
    let (hot, others) = accounts.split_last().expect("at least one account");
    let others: Arc<Vec<AccountId>> = Arc::new(others.iter().map(|account| account.id).collect());
    let hot = hot.id;
    let duration = Duration::from_secs_f64(options.seconds);

    let mut measured = Vec::new();
    for (number, &scenario) in scenarios.iter().enumerate() {
        let before = writer.stats();
        let started = Instant::now();
        let transfers = match scenario {
            Scenario::OneClient { batch } => {
                let mut picker = Picker::new(number as u64, others.clone(), None);
                let mut transfers = 0;
                loop {
                    let requests: Vec<Transfer> =
                        (0..batch).map(|_| picker.transfer(currency)).collect();
                    check_created(&writer.transfer(requests).await?)?;
                    transfers += batch as u64;
                    if started.elapsed() >= duration {
                        break transfers;
                    }
                }
            }
            Scenario::Clients {
                clients,
                hot: into_hot,
            } => {
                let stop = Arc::new(AtomicBool::new(false));
                let transfers = Arc::new(AtomicU64::new(0));
                let tasks: Vec<_> = (0..clients)
                    .map(|client| {
                        let writer = writer.clone();
                        let stop = stop.clone();
                        let transfers = transfers.clone();
                        let seed = (number as u64) << 32 | client as u64;
                        let mut picker = Picker::new(seed, others.clone(), into_hot.then_some(hot));
                        tokio::spawn(async move {
                            while !stop.load(Ordering::Relaxed) {
                                let transfer = picker.transfer(currency);
                                check_created(&writer.transfer(vec![transfer]).await?)?;
                                transfers.fetch_add(1, Ordering::Relaxed);
                            }
                            anyhow::Ok(())
                        })
                    })
                    .collect();
                tokio::time::sleep(duration).await;
                stop.store(true, Ordering::Relaxed);
                for task in tasks {
                    task.await.context("a client panicked")??;
                }
                transfers.load(Ordering::Relaxed)
            }
        };
        let elapsed = started.elapsed();
        let after = writer.stats();
        measured.push(Measured {
            transfers,
            elapsed,
            stats: LedgerStats {
                batches_committed: after.batches_committed - before.batches_committed,
                transfers_committed: after.transfers_committed - before.transfers_committed,
                batch_transfers_largest: after.batch_transfers_largest,
            },
        });
    }
    Ok(measured)
}

fn check_created(results: &[agora_domain::ledger::TransferResult]) -> Result<()> {
    if let Some(result) = results.iter().find(|result| !result.is_created()) {
        bail!("a transfer answered `{result}` instead of `created`");
    }
    Ok(())
}

/// Picks accounts for transfers with a fixed pseudo-random walk (a linear congruential generator).
struct Picker {
    state: u64,
    accounts: Arc<Vec<AccountId>>,
    /// Every transfer credits this account, when set.
    hot: Option<AccountId>,
}

impl Picker {
    fn new(seed: u64, accounts: Arc<Vec<AccountId>>, hot: Option<AccountId>) -> Self {
        Self {
            state: seed ^ 0x2545_f491_4f6c_dd1d,
            accounts,
            hot,
        }
    }

    fn next_index(&mut self, bound: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) as usize % bound
    }

    fn transfer(&mut self, currency: Currency) -> Transfer {
        let count = self.accounts.len();
        let debit = self.next_index(count);
        let credit = match self.hot {
            Some(hot) => hot,
            None => {
                let offset = 1 + self.next_index(count - 1);
                self.accounts[(debit + offset) % count]
            }
        };
        Transfer {
            id: TransferId::new(),
            debit_account_id: self.accounts[debit],
            credit_account_id: credit,
            amount: 1,
            currency,
            code: 1,
            kind: TransferKind::Single,
            linked: false,
        }
    }
}

/// Runs the Python baseline on a temporary SQLite file; transfers per second by batch size.
async fn run_baseline(options: &LedgerBenchOptions) -> Result<HashMap<usize, f64>> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let database = dir.path().join("baseline.db");
    let mut command = tokio::process::Command::new(&options.python);
    command
        .arg(BASELINE_SCRIPT)
        .arg("--database")
        .arg(&database)
        .arg("--seconds")
        .arg(options.seconds.to_string())
        .arg("--accounts")
        .arg(options.accounts.to_string());
    for batch in BATCH_SIZES {
        command.arg("--batch").arg(batch.to_string());
    }
    let output = command
        .output()
        .await
        .with_context(|| format!("running {} {BASELINE_SCRIPT}", options.python))?;
    ensure!(
        output.status.success(),
        "the baseline failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut per_batch = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("the baseline printed `{line}`"))?;
        let batch = value["batch"]
            .as_u64()
            .context("no batch in the baseline's line")?;
        let per_second = value["per_second"]
            .as_f64()
            .context("no per_second in the baseline's line")?;
        per_batch.insert(batch as usize, per_second);
    }
    Ok(per_batch)
}
