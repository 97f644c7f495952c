//! Offline administration: acts on the data folder or database directly, as the instance itself.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use agora_app::{App, Call, CreateToken, InstanceKey};
use agora_domain::{Actor, Error, OrgId, OrgName, RequestId, Role};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::serve::{Migrate, ServeArgs, open_app, open_store};
use crate::{Failure, exit};

/// Where the instance's state lives.
#[derive(Debug, Clone, Default, Args)]
pub struct StorageArgs {
    /// Data folder of the instance [default: ./agora-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL, when the instance runs on PostgreSQL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn load_config(&self, config_file: Option<&Path>) -> anyhow::Result<Config> {
        let flags = ServeArgs {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..ServeArgs::default()
        };
        Config::load(config_file, flags.overrides())
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make an API token offline, for scripting (printed once; stored only as a hash).
    CreateToken(CreateTokenArgs),
    /// Make a new one-time sign-in link for a user who has no password or forgot it.
    SigninLink(SigninLinkArgs),
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The organisation, by id (org_…) or by name.
    #[arg(long)]
    pub org: String,
    /// The token's role: owner, admin, analyst, developer or member.
    #[arg(long)]
    pub role: Role,
    /// What the token is for.
    #[arg(long, default_value = "admin-cli")]
    pub name: String,
    /// Days until the token stops working (default: never).
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct SigninLinkArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The user's e-mail address.
    #[arg(long)]
    pub email: String,
}

pub async fn run(config_file: Option<&Path>, command: AdminCommand) -> Result<(), Failure> {
    match command {
        AdminCommand::CreateToken(args) => {
            let app = open_app(&args.storage.load_config(config_file)?).await?;
            let org_id = resolve_org(&app, &args.org).await?;
            let system = Actor::system();
            let call = Call::new(&system, RequestId::new());
            let input = CreateToken {
                name: args.name,
                role: args.role,
                expires_in_days: args.expires_in_days,
            };
            let created = app.create_token(&call, org_id, input).await?;
            println!("{}", created.secret);
            eprintln!(
                "Created token {} ({}) with role {} for {org_id}. It is shown only now.",
                created.token.id, created.token.prefix, created.token.role
            );
            Ok(())
        }
        AdminCommand::SigninLink(args) => {
            let app = open_app(&args.storage.load_config(config_file)?).await?;
            let link = app.signin_link_for(&args.email).await?;
            println!("{}", link.url);
            eprintln!("The link works once, until {}.", link.expires_at);
            Ok(())
        }
    }
}

/// Finds an organisation by id or by name.
pub async fn resolve_org(app: &App, text: &str) -> Result<OrgId, Failure> {
    if text.starts_with("org_") {
        return Ok(text.parse()?);
    }
    let name = OrgName::parse(text)?;
    let org = app
        .store()
        .org_by_name(&name)
        .await?
        .ok_or_else(|| Error::not_found(format!("organisation named `{text}`")))?;
    Ok(org.id)
}

/// `agora audit verify --data-dir …`: checks the whole chain in the database with the instance's key.
///
/// It changes nothing: no folder, key or migration is created, so a mistyped path is an error,
/// not an empty log that verifies.
pub async fn verify_local(
    config_file: Option<&Path>,
    storage: &StorageArgs,
) -> Result<(), Failure> {
    let config = storage.load_config(config_file)?;
    let data_dir = &config.storage.data_dir;
    let key_path = data_dir.join("instance.key");
    let key = InstanceKey::load(&key_path)?.ok_or_else(|| {
        Error::not_found(format!(
            "the instance key {} (is {} the instance's data folder?)",
            key_path.display(),
            data_dir.display()
        ))
    })?;
    if config.storage.database_url.is_empty() && !data_dir.join("agora.db").exists() {
        return Err(Error::not_found(format!(
            "a database in {}: there is no agora.db",
            data_dir.display()
        ))
        .into());
    }
    let store = open_store(&config, Migrate::No).await?;
    let (head_seq, _) = store.audit_head().await?;
    let bar = progress_bar(head_seq.max(0) as u64, "verifying audit entries");
    let started = std::time::Instant::now();
    let mut progress = |done: i64, _total: i64| bar.set_position(done.max(0) as u64);
    let outcome = agora_app::verify_chain(&store, &key.public_hex(), &mut progress).await?;
    bar.finish_and_clear();
    match outcome {
        Ok(report) => {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "The audit log is intact: {} entries, head {}, {} signed checkpoints consistent ({:.0} entries/s).",
                report.entries,
                report.head,
                report.checkpoints_checked,
                report.entries as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Err(chain_break) => Err(Failure {
            code: exit::TAMPERED,
            error: anyhow::anyhow!(
                "the audit log was tampered with: {chain_break} (first bad entry: {})",
                chain_break.seq()
            ),
        }),
    }
}

/// A progress bar on a terminal; hidden when output goes to a file or a pipe.
pub fn progress_bar(length: u64, message: &'static str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(length);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}
