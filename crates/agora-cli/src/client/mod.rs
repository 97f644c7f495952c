//! Client commands: speak to a running server over its HTTP API, as a stored profile or with a
//! server and token given directly.
//!
//! `main.rs` knows only the clap types and the functions re-exported here. Every command prints
//! a table for people or, with `--format json`, the API's JSON for scripts; failures carry the
//! exit codes of `crate::exit`, derived from the HTTP status of the server's problem document.

mod audit;
mod coalitions;
mod datasets;
mod http;
mod ledger;
mod listings;
mod login;
mod market;
mod miniapps;
mod orgs;
mod output;
mod points;
mod profile;
mod protocols;
mod settlement;

use agora_domain::{OrgId, OrgName, Role, UserId};
use clap::Args;
use serde::Deserialize;

pub use audit::{AuditCommand, audit};
pub use coalitions::{
    CoalitionCommand, PledgeCommand, ProposalCommand, VoteCommand, coalition, pledge, proposal,
    vote,
};
pub use datasets::{DatasetCommand, dataset};
pub use ledger::{LedgerCommand, ledger};
pub use listings::{ListingCommand, listing};
pub use login::{LoginArgs, login};
pub use market::{
    CommissionCommand, MarketCommand, OrderCommand, PayoutCommand, SellerCommand, WalletCommand,
    commission, market, order, payout, seller, wallet,
};
pub use miniapps::{MiniAppCommand, miniapp};
pub use orgs::{MemberCommand, OrgCommand, TokenCommand, member, org, token};
pub use points::{PointsCommand, points};
pub use protocols::{ProtocolCommand, QueryCommand, protocol, query};
pub use settlement::{SettlementCommand, settlement};

use self::http::Api;
use self::output::Format;
use self::profile::{ProfileFile, Token, normalize_server, profiles_path};
use crate::{Failure, exit};

/// Which server to speak to, and as whom.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// The stored profile to use (see `agora login`).
    #[arg(
        long,
        env = "AGORA_PROFILE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub profile: String,
    /// Speak to this server instead of the profile's; with --token, no profile is needed.
    #[arg(long, env = "AGORA_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Use this API token instead of the profile's. Prefer the variable to the flag: other users
    /// of the machine can read a process's arguments.
    #[arg(
        long,
        env = "AGORA_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Token>,
}

/// The connection and the output format, shared by every command that prints an answer.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// How to print the answer: `table` for people; `json` for scripts, which prints the API's
    /// JSON (one object, or an array of every item of a list).
    #[arg(long, value_enum, default_value_t = Format::Table, value_name = "FORMAT", help_heading = "Output")]
    pub format: Format,
}

/// Makes a command that creates something safe to retry.
#[derive(Debug, Clone, Args)]
pub struct IdempotencyArgs {
    /// Send this `Idempotency-Key`: a retry with the same key gets the first answer instead of
    /// creating a second time. Default: a fresh random key per invocation.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
}

impl IdempotencyArgs {
    pub fn key(&self) -> String {
        self.idempotency_key
            .clone()
            .unwrap_or_else(agora_app::secrets::new_secret)
    }
}

/// Reading a listing.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Print the first N items only (default: every page).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

impl ListArgs {
    pub fn limit(&self) -> Option<usize> {
        self.limit.map(|limit| limit as usize)
    }
}

/// Who the token belongs to, as `GET /api/v1/me` answers.
#[derive(Debug, Deserialize)]
pub struct Me {
    pub user_id: Option<UserId>,
    pub acting: Option<Acting>,
}

/// The organisation and role a token acts with.
#[derive(Debug, Deserialize)]
pub struct Acting {
    pub org_id: OrgId,
    pub role: Role,
    pub is_operator: bool,
}

/// Opens a connection as the flags, the environment and the stored profile say.
///
/// A token given directly wins; it needs a server, given too or taken from the profile.
/// Otherwise the profile supplies both, and a server given alongside must be the profile's,
/// so that one server's token is never sent to another.
pub fn connect(args: &ConnectArgs) -> Result<Api, Failure> {
    let server = args.server.as_deref().map(normalize_server).transpose()?;
    if let Some(token) = &args.token {
        token.check_shape()?;
        let server = match server {
            Some(server) => server,
            None => match ProfileFile::load(&profiles_path()?)?
                .profiles
                .remove(&args.profile)
            {
                Some(profile) => profile.server,
                None => {
                    return Err(Failure {
                        code: exit::USAGE,
                        error: anyhow::anyhow!(
                            "a token needs a server: pass --server URL (or set AGORA_SERVER)"
                        ),
                    });
                }
            },
        };
        // Advice to run `agora login` would not help a token given directly.
        return Ok(Api::new(server, token.clone())?.without_login_hint());
    }
    let path = profiles_path()?;
    let Some(profile) = ProfileFile::load(&path)?.profiles.remove(&args.profile) else {
        let how = match &server {
            Some(server) => format!("run `agora login --server {server}`, or pass --token"),
            None => "run `agora login --server URL`".to_owned(),
        };
        return Err(Failure {
            code: exit::UNAUTHENTICATED,
            error: anyhow::anyhow!(
                "not signed in: there is no profile `{}` in {}; {how}",
                args.profile,
                path.display()
            ),
        });
    };
    if let Some(server) = server
        && server != profile.server
    {
        return Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!(
                "profile `{}` is for {}, not {server}: pass --token too, choose another --profile, or sign in with `agora login --server {server} --profile NAME`",
                args.profile,
                profile.server
            ),
        });
    }
    Api::new(profile.server, profile.token)
}

/// Who the connection's token is.
pub async fn me(api: &Api) -> Result<Me, Failure> {
    api.get("/api/v1/me", &[]).await
}

/// The organisation a command acts on: the one given, by id or exact name, or else the one the
/// token acts for.
pub async fn org_or_acting(api: &Api, org: Option<&str>) -> Result<OrgId, Failure> {
    match org {
        Some(org) => resolve_org(api, org).await,
        None => match me(api).await?.acting {
            Some(acting) => Ok(acting.org_id),
            None => Err(Failure {
                code: exit::USAGE,
                error: anyhow::anyhow!(
                    "this credential acts for no organisation; name one with --org"
                ),
            }),
        },
    }
}

/// An organisation named by id (`org_…`) or by name, looked up in the directory.
pub async fn resolve_org(api: &Api, text: &str) -> Result<OrgId, Failure> {
    if text.starts_with(OrgId::PREFIX) {
        return Ok(text.parse()?);
    }
    let not_found = || Failure {
        code: exit::NOT_FOUND,
        error: anyhow::anyhow!("there is no organisation named `{text}` (see `agora org list`)"),
    };
    // Names are unique regardless of case and inner spaces, as the server compares them.
    let wanted = OrgName::parse(text).map_err(|_| not_found())?.unique_key();
    let orgs: Vec<agora_domain::model::Organisation> = api.all("/api/v1/orgs", None).await?;
    orgs.iter()
        .find(|org| org.name.unique_key() == wanted)
        .map(|org| org.id)
        .ok_or_else(not_found)
}

/// Turns a JSON answer into the typed view a table is printed from.
pub fn typed<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(value.clone()).map_err(|error| anyhow::anyhow!("the server's answer is not what this agora expects ({error}); is the server the same version?").into())
}

/// Adds to a failure of a creating request how to retry it without creating twice.
pub fn with_retry_hint(failure: Failure, key: &str) -> Failure {
    if failure.code != exit::UNAVAILABLE {
        return failure;
    }
    Failure {
        code: failure.code,
        error: anyhow::anyhow!(
            "{:#}; it may or may not have been created, so retry with `--idempotency-key {key}`",
            failure.error
        ),
    }
}
