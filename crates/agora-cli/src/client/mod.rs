//! Client commands: speak to a running server with a stored profile.
//! (Being written; the signatures here are the contract with main.rs.)

use std::path::Path;

use clap::{Args, Subcommand};

use crate::Failure;

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(long)]
    pub server: String,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    List,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    List,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the chain.
    Verify {
        #[command(flatten)]
        storage: crate::local::StorageArgs,
    },
}

pub async fn login(_args: LoginArgs) -> Result<(), Failure> {
    Err(anyhow::anyhow!("not yet").into())
}
pub async fn org(_command: OrgCommand) -> Result<(), Failure> {
    Err(anyhow::anyhow!("not yet").into())
}
pub async fn member(_command: MemberCommand) -> Result<(), Failure> {
    Err(anyhow::anyhow!("not yet").into())
}
pub async fn token(_command: TokenCommand) -> Result<(), Failure> {
    Err(anyhow::anyhow!("not yet").into())
}
pub async fn audit(config_file: Option<&Path>, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify { storage } => crate::local::verify_local(config_file, &storage).await,
    }
}
