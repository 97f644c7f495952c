//! The `agora` binary: runs the server, seeds the demo, administers a data directory offline,
//! and speaks to a running server as a client.

mod client;
mod config;
mod demo;
mod demo_coalition;
mod demo_commons;
mod demo_superapp;
mod local;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Agora: run a business ecosystem as a network rather than an empire.
///
/// Partners share data under protocols the engine enforces, decide together, and trade through
/// one marketplace; every action lands in a tamper-evident audit log.
///
/// Start with `agora demo` for a seeded ecosystem, or `agora serve` for an empty one.
#[derive(Debug, Parser)]
#[command(
    name = "agora",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Configuration file (default: ./agora.toml when it exists).
    #[arg(long, global = true, env = "AGORA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server on embedded SQLite in a data folder (or on PostgreSQL with --database-url).
    Serve(serve::ServeArgs),
    /// Start a fresh demo ecosystem (operator, partners, members) and serve it.
    Demo(demo::DemoArgs),
    /// Administer a data directory or database directly, without a running server.
    #[command(subcommand)]
    Admin(local::AdminCommand),
    /// Print the full default configuration, every option documented.
    DefaultConfig,
    /// Sign in to a server and store it as a profile for the client commands.
    Login(client::LoginArgs),
    /// Organisations: list, show, create, rename, approve.
    #[command(subcommand)]
    Org(client::OrgCommand),
    /// Members of an organisation: list, add, remove.
    #[command(subcommand)]
    Member(client::MemberCommand),
    /// API tokens: list, create, revoke.
    #[command(subcommand)]
    Token(client::TokenCommand),
    /// The audit log: read, export, and verify the hash chain and signed checkpoints.
    #[command(subcommand)]
    Audit(client::AuditCommand),
    /// Datasets: upload CSV, JSON lines or Parquet, classify columns, versions, rows, delete.
    #[command(subcommand)]
    Dataset(client::DatasetCommand),
    /// Data-sharing protocols: draft, propose, approve, pause, resume, revoke, revise, diff.
    #[command(subcommand)]
    Protocol(client::ProtocolCommand),
    /// Run governed SQL as your organisation (`agora query --purpose P "SQL"`), or read the
    /// query log (`agora query log`).
    Query(client::QueryCommand),
    /// Coalitions: found, show, goals, delegation, pooled data, treasury, decision register.
    #[command(subcommand)]
    Coalition(client::CoalitionCommand),
    /// Pledges towards a coalition's goals: create (optionally conditional), list, fulfil.
    #[command(subcommand)]
    Pledge(client::PledgeCommand),
    /// A coalition's proposals: create with typed actions, list, show the tally, execute.
    #[command(subcommand)]
    Proposal(client::ProposalCommand),
    /// Vote yes, no, abstain or block on a proposal for your organisation.
    Vote(client::VoteCommand),
    /// The ledger: accounts, transfers, balances as of any instant, its hash chain (operators).
    #[command(subcommand)]
    Ledger(client::LedgerCommand),
    /// Mini-apps: register from a bundle zip, upload and roll back versions, review (operators),
    /// read installs, active users and payments.
    #[command(subcommand)]
    Miniapp(client::MiniAppCommand),
    /// Marketplace listings: create, list, search, show, update, archive, and service slots.
    #[command(subcommand)]
    Listing(client::ListingCommand),
    /// Points: rules, grants, balances, redemptions and expiry.
    #[command(subcommand)]
    Points(client::PointsCommand),
    /// Partner-to-partner settlement: obligations, net debit caps, windows and reports.
    #[command(subcommand)]
    Settlement(client::SettlementCommand),
    /// Commission rules: the operator's cut of each sale.
    #[command(subcommand)]
    Commission(client::CommissionCommand),
    /// A seller's settings, balance and orders.
    #[command(subcommand)]
    Seller(client::SellerCommand),
    /// Orders: show, fulfil, refund, cancel.
    #[command(subcommand)]
    Order(client::OrderCommand),
    /// Payouts: list, request, and the operator's scheduled run.
    #[command(subcommand)]
    Payout(client::PayoutCommand),
    /// Customers' wallets: show, top up.
    #[command(subcommand)]
    Wallet(client::WalletCommand),
    /// The operator's marketplace duties: release due holds, read commission revenue.
    #[command(subcommand)]
    Market(client::MarketCommand),
}

/// Exit codes scripts can rely on.
pub mod exit {
    /// Bad usage or invalid input.
    pub const USAGE: u8 = 2;
    /// Not signed in, or the credential was refused (401).
    pub const UNAUTHENTICATED: u8 = 3;
    /// Refused by a policy (403).
    pub const FORBIDDEN: u8 = 4;
    /// Not found (404).
    pub const NOT_FOUND: u8 = 5;
    /// Conflict with the current state (409, 422).
    pub const CONFLICT: u8 = 6;
    /// The server or the database is unavailable.
    pub const UNAVAILABLE: u8 = 7;
    /// `agora audit verify` found the log tampered with.
    pub const TAMPERED: u8 = 8;
}

/// An error that carries its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        let error = error.into();
        let code = match error.downcast_ref::<agora_domain::Error>() {
            Some(domain_error) => code_of(domain_error),
            None => 1,
        };
        Self { code, error }
    }
}

pub fn code_of(error: &agora_domain::Error) -> u8 {
    use agora_domain::Error;
    match error {
        Error::Invalid { .. } => exit::USAGE,
        Error::Unauthenticated(_) => exit::UNAUTHENTICATED,
        Error::Forbidden { .. } | Error::Refused { .. } => exit::FORBIDDEN,
        Error::NotFound { .. } => exit::NOT_FOUND,
        Error::Conflict(_) | Error::Unprocessable(_) => exit::CONFLICT,
        Error::LimitExceeded { .. } | Error::Unavailable(_) => exit::UNAVAILABLE,
        Error::Internal(_) => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let config_file = cli.config.as_deref();
    match cli.command {
        Command::Serve(args) => serve::run(config_file, args).await,
        Command::Demo(args) => demo::run(config_file, args).await,
        Command::Admin(command) => local::run(config_file, command).await,
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::Login(args) => client::login(args).await,
        Command::Org(command) => client::org(command).await,
        Command::Member(command) => client::member(command).await,
        Command::Token(command) => client::token(command).await,
        Command::Audit(command) => client::audit(config_file, command).await,
        Command::Dataset(command) => client::dataset(command).await,
        Command::Protocol(command) => client::protocol(command).await,
        Command::Query(command) => client::query(command).await,
        Command::Coalition(command) => client::coalition(command).await,
        Command::Miniapp(command) => client::miniapp(command).await,
        Command::Pledge(command) => client::pledge(command).await,
        Command::Proposal(command) => client::proposal(command).await,
        Command::Vote(command) => client::vote(command).await,
        Command::Ledger(command) => client::ledger(command).await,
        Command::Listing(command) => client::listing(command).await,
        Command::Points(command) => client::points(command).await,
        Command::Settlement(command) => client::settlement(command).await,
        Command::Commission(command) => client::commission(command).await,
        Command::Seller(command) => client::seller(command).await,
        Command::Order(command) => client::order(command).await,
        Command::Payout(command) => client::payout(command).await,
        Command::Wallet(command) => client::wallet(command).await,
        Command::Market(command) => client::market(command).await,
    }
}
