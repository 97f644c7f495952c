//! `agora audit verify` speed: `agora_app::verify_chain` over a log filled directly through the
//! store, against the same chain computations over the same entries held in memory.

use std::time::{Duration, Instant};

use agora_app::App;
use agora_app::agora_store::AuditFilter;
use agora_domain::audit::{AuditEntry, AuditRecord, ChainVerifier, Outcome};
use agora_domain::{OrgId, RequestId, Timestamp, TokenId, UserId};
use anyhow::{Context, Result, anyhow, ensure};

use crate::database::{BackendOptions, Database};
use crate::report::{self, Table};

/// The goal for `agora audit verify`, in entries per second.
const GOAL_ENTRIES_PER_SECOND: f64 = 200_000.0;

/// How many entries the in-memory baseline reads back per query while loading them.
const READ_BATCH: u32 = 10_000;

/// How big a log to verify, and how often.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditOptions {
    /// Entries appended before verifying (plus one per transaction for its signed checkpoint).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub entries: u64,
    /// Entries appended per write transaction while filling the log; a checkpoint is signed after each.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub transaction_entries: u64,
    /// Verifications of each kind, alternating; the fastest of each is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
}

pub async fn run(options: &AuditOptions, backend_options: &BackendOptions) -> Result<()> {
    println!("## audit-verify: verifying the audit chain\n");
    println!(
        "`agora_app::verify_chain` (what `agora audit verify` runs) over {} appended entries, against `ChainVerifier` over the same entries already in memory.",
        report::count(options.entries)
    );
    println!(
        "Each kind runs {} times, alternating, and its fastest run is reported; the log is filled in transactions of {} entries, each followed by a signed checkpoint.\n",
        options.rounds,
        report::count(options.transaction_entries)
    );
    let mut table = Table::new(2, &["database", "target", "entries", "time", "entries/s"]);
    let mut ratios = Vec::new();
    let mut fills = Vec::new();
    for backend in backend_options.backends()? {
        let database = Database::create(backend, backend_options).await?;
        let verified = measure(&database, options, backend_options).await;
        database.remove().await?;
        let verified = verified.with_context(|| format!("audit-verify on {}", backend.name()))?;
        let per_second = |time: Duration| verified.entries as f64 / time.as_secs_f64();
        for (target, time) in [
            ("in memory (ChainVerifier)", verified.in_memory),
            ("from the database (verify_chain)", verified.from_database),
        ] {
            table.row(vec![
                backend.name().to_owned(),
                target.to_owned(),
                report::count(verified.entries),
                report::seconds(time),
                report::rate(per_second(time)),
            ]);
        }
        ratios.push((
            backend,
            per_second(verified.from_database),
            verified.in_memory.as_secs_f64() / verified.from_database.as_secs_f64(),
        ));
        fills.push(format!(
            "{}: filling the log took {} ({} entries/s appended, with {} signed checkpoints).",
            backend.name(),
            report::seconds(verified.fill),
            report::rate(per_second(verified.fill)),
            verified.checkpoints
        ));
    }
    table.print();
    println!();
    for (backend, per_second, ratio) in ratios {
        report::ratio_line(
            &format!(
                "verify_chain on {} / goal of {} entries/s",
                backend.name(),
                report::rate(GOAL_ENTRIES_PER_SECOND)
            ),
            per_second / GOAL_ENTRIES_PER_SECOND,
            Some(1.0),
        );
        report::ratio_line(
            &format!(
                "verify_chain on {} / in-memory verification, entries/s",
                backend.name()
            ),
            ratio,
            None,
        );
    }
    for fill in fills {
        println!("{fill}");
    }
    println!();
    Ok(())
}

struct Verified {
    entries: u64,
    checkpoints: usize,
    fill: Duration,
    in_memory: Duration,
    from_database: Duration,
}

async fn measure(
    database: &Database,
    options: &AuditOptions,
    backend_options: &BackendOptions,
) -> Result<Verified> {
    let app = database.open_app(backend_options).await?;
    let verified = measure_app(&app, options).await;
    app.store().close().await;
    verified
}

async fn measure_app(app: &App, options: &AuditOptions) -> Result<Verified> {
    let started = Instant::now();
    fill(app, options).await?;
    let fill = started.elapsed();
    let entries = read_all(app).await?;
    let (head_seq, head_hash) = app.store().audit_head().await?;
    ensure!(
        entries.len() as i64 == head_seq,
        "read back {} entries of {head_seq}",
        entries.len()
    );
    let public_key = app.key().public_hex();
    let mut in_memory = Duration::MAX;
    let mut from_database = Duration::MAX;
    let mut checkpoints = 0;
    for _ in 0..options.rounds {
        let started = Instant::now();
        let mut verifier = ChainVerifier::from_genesis();
        for entry in &entries {
            verifier
                .push_entry(entry)
                .map_err(|chain_break| anyhow!("the in-memory chain is broken: {chain_break}"))?;
        }
        in_memory = in_memory.min(started.elapsed());
        ensure!(verifier.head() == head_hash, "the in-memory head differs");

        let started = Instant::now();
        let chain = agora_app::verify_chain(app.store(), &public_key, &mut |_, _| {})
            .await?
            .map_err(|chain_break| anyhow!("the stored chain is broken: {chain_break}"))?;
        from_database = from_database.min(started.elapsed());
        ensure!(chain.head == head_hash, "verify_chain found another head");
        checkpoints = chain.checkpoints_checked;
    }
    Ok(Verified {
        entries: head_seq.unsigned_abs(),
        checkpoints,
        fill,
        in_memory,
        from_database,
    })
}

/// Appends `options.entries` entries straight through the store, in big transactions,
/// each followed by a signed checkpoint as the periodic checkpoint task leaves them.
async fn fill(app: &App, options: &AuditOptions) -> Result<()> {
    let actors: Vec<(UserId, OrgId, TokenId)> = (0..8)
        .map(|_| (UserId::new(), OrgId::new(), TokenId::new()))
        .collect();
    let mut appended = 0;
    while appended < options.entries {
        let count = options.transaction_entries.min(options.entries - appended);
        let mut tx = app.store().write().await?;
        for number in appended..appended + count {
            tx.append_audit(&sample_record(number, &actors)).await?;
        }
        tx.commit().await?;
        appended += count;
        app.checkpoint_if_moved()
            .await
            .context("signing a checkpoint")?;
    }
    Ok(())
}

/// An entry shaped like those the API writes: a request, a token actor, a resource, a JSON detail.
fn sample_record(number: u64, actors: &[(UserId, OrgId, TokenId)]) -> AuditRecord {
    let (user_id, org_id, token_id) = actors[number as usize % actors.len()];
    let subject = OrgId::new();
    let (action, outcome, detail) = match number % 10 {
        0 => (
            "org.update",
            Outcome::Denied,
            serde_json::json!({ "rule": "member-admin-or-owner", "reason": "only owners and admins may do this" }),
        ),
        1..=3 => (
            "member.add",
            Outcome::Succeeded,
            serde_json::json!({ "email": format!("user{number}@example.org"), "role": "viewer" }),
        ),
        _ => (
            "org.create",
            Outcome::Succeeded,
            serde_json::json!({ "name": format!("Partner {number}"), "status": "active" }),
        ),
    };
    AuditRecord {
        at: Timestamp::now(),
        request_id: Some(RequestId::new()),
        actor_user_id: Some(user_id),
        actor_org_id: Some(org_id),
        credential: format!("token:{token_id}"),
        action: action.to_owned(),
        resource_type: "organisation".to_owned(),
        resource_id: subject.to_string(),
        subject_org_id: Some(subject),
        outcome,
        detail: detail.to_string(),
    }
}

/// The whole log, in order, for the in-memory baseline.
async fn read_all(app: &App) -> Result<Vec<AuditEntry>> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    loop {
        let batch = app
            .store()
            .audit_entries(AuditFilter {
                org_id: None,
                after_seq: entries.last().map_or(0, |entry| entry.seq),
                limit: READ_BATCH,
            })
            .await?;
        if batch.is_empty() {
            return Ok(entries);
        }
        entries.extend(batch);
    }
}
