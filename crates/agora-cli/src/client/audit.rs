//! `agora audit`: read and export the audit log, sign checkpoints, and verify the hash chain,
//! either online as any party with a token or offline on the instance's own storage.
//!
//! Online verification trusts nothing the server says without checking it: the chain must link
//! from the genesis hash, every checkpoint must carry the instance's signature over the chain's
//! head at its entry, a checkpoint saved earlier must still be on today's chain, and the entries
//! the caller was shown must hash to the digests the chain commits to.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use agora_domain::audit::{
    AuditEntry, ChainBreak, ChainLink, ChainVerifier, Hash32, checkpoint_message,
};
use agora_domain::model::Checkpoint;
use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Api, Page};
use super::orgs::print_one;
use super::output::{self, Format, Table};
use super::{ClientArgs, ConnectArgs, ListArgs, connect, me, org_or_acting, resolve_org, typed};
use crate::local::StorageArgs;
use crate::{Failure, exit};

/// Links per page when reading the chain: the server's maximum for it, as links are small.
const CHAIN_PAGE_SIZE: u32 = 10_000;

/// The audit log: read, export, and verify the hash chain and signed checkpoints.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries that concern an organisation, or every entry with --all (operators).
    Log(LogArgs),
    /// Export every entry that concerns an organisation, as JSON lines.
    Export(ExportArgs),
    /// Verify the audit log: online as any signed-in party, or offline on the instance's storage.
    ///
    /// Online (the default), it reads the chain of hashes from the server and checks that it
    /// links from the start, that every signed checkpoint matches it under the instance's public
    /// key, and that the entries your organisation can read hash to what the chain commits to.
    /// With --checkpoint, it also checks that today's log still extends a checkpoint saved earlier.
    ///
    /// Offline (with --data-dir or --database-url), it reads the instance's storage directly and
    /// checks every entry's content, as the instance itself.
    ///
    /// Exits with 8 when the log was tampered with, naming the first entry that is not as written.
    #[command(after_help = "Examples:
  agora audit checkpoint --format json > checkpoint.json     (keep it somewhere safe)
  agora audit verify --checkpoint checkpoint.json            (later: does the log still extend it?)
  agora audit verify --data-dir /var/lib/agora               (offline, on the server's machine)")]
    Verify(VerifyArgs),
    /// Print the latest signed checkpoint of the chain, or sign a new one with --create.
    ///
    /// A checkpoint is the instance's Ed25519 signature over the chain's head at one entry.
    /// Keep one (`--format json > checkpoint.json`): `agora audit verify --checkpoint` later proves
    /// that no entry up to it was changed or removed since.
    Checkpoint(CheckpointArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  agora audit log --limit 20\n  agora audit log --org FreshMart --format json\n  agora audit log --all"
)]
pub struct LogArgs {
    /// The organisation, by id (org_…) or exact name (default: the one your token acts for).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Every entry of the instance, whatever it concerns (the operator's auditors).
    #[arg(long, conflicts_with = "org")]
    pub all: bool,
    #[command(flatten)]
    pub list: ListArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  agora audit export --org FreshMart --output freshmart-audit.jsonl"
)]
pub struct ExportArgs {
    /// The organisation, by id (org_…) or exact name (default: the one your token acts for).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Write to this file instead of standard output; it appears only once the export is whole.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A checkpoint saved earlier (`agora audit checkpoint --format json`): check its signature
    /// and that today's chain still has its head at its entry.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Whose entries to check against the chain, by id (org_…) or exact name (default: the one
    /// your token acts for).
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    #[command(
        flatten,
        next_help_heading = "Offline verification (instead of a server)"
    )]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Sign the chain's current head now (the operator's owners and admins).
    #[arg(long)]
    pub create: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The instance's public key, as `GET /api/v1/audit/key` answers.
#[derive(Debug, Deserialize)]
struct PublicKey {
    public_key: String,
}

pub async fn audit(config_file: Option<&Path>, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Log(args) => log(args).await,
        AuditCommand::Export(args) => export(args).await,
        AuditCommand::Verify(args)
            if args.storage.data_dir.is_some() || args.storage.database_url.is_some() =>
        {
            if args.checkpoint.is_some() || args.org.is_some() {
                return Err(Failure {
                    code: exit::USAGE,
                    error: anyhow::anyhow!(
                        "--checkpoint and --org check a server's log online; leave out --data-dir and --database-url"
                    ),
                });
            }
            crate::local::verify_local(config_file, &args.storage).await
        }
        AuditCommand::Verify(args) => verify_online(args).await,
        AuditCommand::Checkpoint(args) => checkpoint(args).await,
    }
}

async fn log(args: LogArgs) -> Result<(), Failure> {
    let api = connect(&args.client.connect)?;
    let path = if args.all {
        "/api/v1/audit".to_owned()
    } else {
        let org_id = org_or_acting(&api, args.org.as_deref()).await?;
        format!("/api/v1/orgs/{org_id}/audit")
    };
    let entries: Vec<Value> = api.all(&path, args.list.limit()).await?;
    match args.client.format {
        Format::Json => output::print_json(&Value::Array(entries)),
        Format::Table => {
            let mut table =
                Table::new(&["seq", "time", "action", "resource", "outcome", "credential"]);
            for entry in &entries {
                let entry: AuditEntry = typed(entry)?;
                let record = &entry.record;
                table.row(vec![
                    entry.seq.to_string(),
                    output::time(record.at),
                    record.action.clone(),
                    format!("{}:{}", record.resource_type, record.resource_id),
                    record.outcome.as_str().to_owned(),
                    record.credential.clone(),
                ]);
            }
            output::print(&table.render("No audit entries."))
        }
    }
}

async fn export(args: ExportArgs) -> Result<(), Failure> {
    let api = connect(&args.connect)?;
    let org_id = org_or_acting(&api, args.org.as_deref()).await?;
    let mut response = api
        .stream(&format!("/api/v1/orgs/{org_id}/audit/export"))
        .await?;
    // A file is written beside its final name and renamed once whole, so that an export cut off
    // half-way never passes for a complete one.
    let partial = args.output.as_ref().map(|path| {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        path.with_file_name(name)
    });
    let mut sink: Box<dyn Write> = match &partial {
        Some(partial) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(partial)
                .with_context(|| format!("cannot create {}", partial.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let spinner = if partial.is_some() && std::io::stderr().is_terminal() {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} exporting audit entries: {pos} ({per_sec}, {elapsed})",
            )
            .expect("the template is valid"),
        );
        spinner
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut lines = 0_u64;
    let mut ends_with_newline = true;
    let outcome = async {
        while let Some(chunk) = api.chunk(&mut response).await? {
            if chunk.is_empty() {
                continue;
            }
            match sink.write_all(&chunk) {
                Ok(()) => {}
                // The reader of standard output went away (`| head`): stop quietly.
                Err(error)
                    if partial.is_none() && error.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    return Ok(());
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context("cannot write the export")
                        .into());
                }
            }
            let newlines = chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
            lines += newlines;
            ends_with_newline = chunk.last() == Some(&b'\n');
            spinner.set_position(lines);
        }
        if !ends_with_newline {
            return Err(Failure {
                code: exit::UNAVAILABLE,
                error: anyhow::anyhow!("the export was cut off after {lines} entries; try again"),
            });
        }
        match sink.flush() {
            Err(error)
                if !(partial.is_none() && error.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                Err(anyhow::Error::new(error)
                    .context("cannot write the export")
                    .into())
            }
            _ => Ok(()),
        }
    }
    .await;
    spinner.finish_and_clear();
    drop(sink);
    if let Err(failure) = outcome {
        if let Some(partial) = &partial {
            let _ = std::fs::remove_file(partial);
        }
        return Err(failure);
    }
    if let (Some(partial), Some(path)) = (&partial, &args.output) {
        std::fs::rename(partial, path)
            .with_context(|| format!("cannot move the export to {}", path.display()))?;
        eprintln!(
            "Exported {lines} audit entries concerning {org_id} to {}.",
            path.display()
        );
    }
    Ok(())
}

async fn checkpoint(args: CheckpointArgs) -> Result<(), Failure> {
    let api = connect(&args.client.connect)?;
    let answer = if args.create {
        api.post("/api/v1/audit/checkpoints", None, None).await?
    } else {
        let page: Page<Value> = api
            .get("/api/v1/audit/checkpoints", &[("limit", "1")])
            .await?;
        page.items.into_iter().next().ok_or_else(|| Failure {
            code: exit::NOT_FOUND,
            error: anyhow::anyhow!("the server has signed no checkpoint yet; an operator owner or admin can sign one with `agora audit checkpoint --create`"),
        })?
    };
    print_one(args.client.format, &answer, checkpoints_table)?;
    if args.client.format == Format::Table {
        eprintln!(
            "Keep it with `agora audit checkpoint --format json > checkpoint.json`; \
             `agora audit verify --checkpoint checkpoint.json` later checks that the log still extends it."
        );
    }
    Ok(())
}

fn checkpoints_table(checkpoints: &[Checkpoint]) -> String {
    let mut table = Table::new(&["seq", "head hash", "signed at", "key id"]);
    for checkpoint in checkpoints {
        table.row(vec![
            checkpoint.seq.to_string(),
            checkpoint.head_hash.to_hex(),
            output::time(checkpoint.at),
            checkpoint.key_id.clone(),
        ]);
    }
    table.render("No checkpoints.")
}

/// "1 entry", "2 entries".
fn count(number: i64, one: &str, many: &str) -> String {
    format!("{number} {}", if number == 1 { one } else { many })
}

/// A failure that says the log was tampered with, and where first.
fn tampered(chain_break: ChainBreak) -> Failure {
    Failure {
        code: exit::TAMPERED,
        error: anyhow::anyhow!(
            "the audit log was tampered with: {chain_break} (first bad entry: {})",
            chain_break.seq()
        ),
    }
}

/// Checks that the instance signed a checkpoint; `what` names it in the error.
fn check_signature(checkpoint: &Checkpoint, public_key: &str, what: &str) -> Result<(), Failure> {
    let message = checkpoint_message(checkpoint.seq, &checkpoint.head_hash, checkpoint.at);
    if checkpoint.key_id == public_key
        && agora_app::secrets::verify_signature(public_key, &message, &checkpoint.signature)
    {
        return Ok(());
    }
    Err(Failure {
        code: exit::TAMPERED,
        error: anyhow::anyhow!(
            "{what} at entry {} is not signed by this instance's key {public_key}: it was altered, or comes from another instance",
            checkpoint.seq
        ),
    })
}

/// What an entry the caller read says it is in the chain.
struct ShownEntry {
    seq: i64,
    content_digest: Hash32,
    entry_hash: Hash32,
}

/// Reads the entries of one organisation page by page, keeping only what the chain is checked
/// against. `None` when the caller's role may not read them.
async fn shown_entries(
    api: &Api,
    org: Option<&str>,
) -> Result<Option<(agora_domain::OrgId, Vec<ShownEntry>)>, Failure> {
    let org_id = match org {
        Some(org) => resolve_org(api, org).await?,
        None => match me(api).await?.acting {
            Some(acting) => acting.org_id,
            None => return Ok(None),
        },
    };
    let mut shown = Vec::new();
    let read = api
        .each_page(
            &format!("/api/v1/orgs/{org_id}/audit"),
            None,
            |entries: Vec<AuditEntry>| {
                shown.extend(entries.iter().map(|entry| ShownEntry {
                    seq: entry.seq,
                    content_digest: entry.record.content_digest(entry.seq),
                    entry_hash: entry.entry_hash,
                }));
                Ok(ControlFlow::Continue(()))
            },
        )
        .await;
    match read {
        Ok(()) => {
            shown.sort_by_key(|entry| entry.seq);
            Ok(Some((org_id, shown)))
        }
        Err(failure) if failure.code == exit::FORBIDDEN => {
            eprintln!(
                "note: your role may not read the audit entries of {org_id}; checking the chain and checkpoints only."
            );
            Ok(None)
        }
        Err(failure) => Err(failure),
    }
}

async fn verify_online(args: VerifyArgs) -> Result<(), Failure> {
    let api = connect(&args.client.connect)?;
    let public_key = api
        .get::<PublicKey>("/api/v1/audit/key", &[])
        .await?
        .public_key;

    let saved = match &args.checkpoint {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the checkpoint {}", path.display()))?;
            let checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|error| {
                let path = path.display();
                let message = format!(
                    "{path} is not a checkpoint ({error}); save one with `agora audit checkpoint --format json`"
                );
                Failure { code: exit::USAGE, error: anyhow::anyhow!(message) }
            })?;
            check_signature(
                &checkpoint,
                &public_key,
                &format!("the saved checkpoint {}", path.display()),
            )?;
            Some(checkpoint)
        }
        None => None,
    };

    // Everything the chain is checked against is read before the chain, so that the chain read
    // afterwards must reach all of it: a later chain that stops short was cut.
    let checkpoints: Vec<Checkpoint> = api.all("/api/v1/audit/checkpoints", None).await?;
    for checkpoint in &checkpoints {
        check_signature(checkpoint, &public_key, "the checkpoint")?;
    }
    let shown = shown_entries(&api, args.org.as_deref()).await?;

    // Heads the chain must have at given entries: the server's checkpoints and the saved one.
    let mut heads: Vec<(i64, Hash32)> = checkpoints
        .iter()
        .chain(&saved)
        .map(|checkpoint| (checkpoint.seq, checkpoint.head_hash))
        .collect();
    heads.sort_by_key(|(seq, _)| *seq);
    // A checkpoint of the empty log (entry 0) holds the genesis hash and nothing to look up.
    if let Some((seq, _)) = heads
        .iter()
        .find(|(seq, head)| *seq <= 0 && *head != Hash32::GENESIS)
    {
        return Err(tampered(ChainBreak::Unlinked { seq: (*seq).max(1) }));
    }
    let mut pending_heads = heads.iter().filter(|(seq, _)| *seq > 0).peekable();
    let mut pending_shown = shown
        .as_ref()
        .map(|(_, shown)| shown.as_slice())
        .unwrap_or_default()
        .iter()
        .peekable();

    let bar = crate::local::progress_bar(
        checkpoints
            .first()
            .map_or(0, |checkpoint| checkpoint.seq.max(0) as u64),
        "verifying audit entries",
    );
    let mut verifier = ChainVerifier::from_genesis();
    let read = api
        .each_page(
            "/api/v1/audit/chain",
            Some(CHAIN_PAGE_SIZE),
            |links: Vec<ChainLink>| {
                for link in &links {
                    verifier.push(link, true).map_err(tampered)?;
                    while let Some((seq, head)) = pending_heads.next_if(|(seq, _)| *seq <= link.seq)
                    {
                        if *seq != link.seq || *head != link.entry_hash {
                            return Err(tampered(ChainBreak::Unlinked { seq: *seq }));
                        }
                    }
                    while let Some(entry) = pending_shown.next_if(|entry| entry.seq <= link.seq) {
                        if entry.seq != link.seq
                            || entry.content_digest != link.content_digest
                            || entry.entry_hash != link.entry_hash
                        {
                            return Err(tampered(ChainBreak::Edited { seq: entry.seq }));
                        }
                    }
                }
                let done = verifier.last_seq().max(0) as u64;
                if done > bar.length().unwrap_or(0) {
                    bar.set_length(done);
                }
                bar.set_position(done);
                Ok(ControlFlow::Continue(()))
            },
        )
        .await;
    bar.finish_and_clear();
    read?;

    // A checkpoint or an entry beyond the end of the chain means the end was cut off.
    let last_seq = verifier.last_seq();
    let beyond = pending_heads
        .next()
        .map(|(seq, _)| *seq)
        .into_iter()
        .chain(pending_shown.next().map(|entry| entry.seq))
        .min();
    if let Some(found) = beyond {
        return Err(tampered(ChainBreak::Missing {
            expected: last_seq + 1,
            found,
        }));
    }

    let own_checked = shown.as_ref().map(|(org_id, shown)| (*org_id, shown.len()));
    match args.client.format {
        Format::Json => output::print_json(&json!({
            "intact": true,
            "entries": last_seq,
            "head": verifier.head(),
            "checkpoints_checked": checkpoints.len(),
            "own_entries_checked": own_checked.map(|(_, count)| count),
            "org_id": own_checked.map(|(org_id, _)| org_id),
            "saved_checkpoint_seq": saved.as_ref().map(|checkpoint| checkpoint.seq),
        })),
        Format::Table => {
            let own = match own_checked {
                Some((org_id, shown)) => format!(
                    ", {} of {org_id} match it",
                    count(shown as i64, "entry", "entries")
                ),
                None => String::new(),
            };
            let saved = match &saved {
                Some(checkpoint) => format!(
                    ", and it extends the saved checkpoint at entry {}",
                    checkpoint.seq
                ),
                None => String::new(),
            };
            output::print(&format!(
                "The audit log is intact: {}, head {}, {} checked{own}{saved}.\n",
                count(last_seq, "entry", "entries"),
                verifier.head(),
                count(
                    checkpoints.len() as i64,
                    "signed checkpoint",
                    "signed checkpoints"
                ),
            ))
        }
    }
}
