//! `agora demo`: a small ecosystem with an operator, two partners and their members, served.
//!
//! Later capabilities add their part of the story here (FreshMart's sales shared with brands,
//! carriers pooling shipments, a coalition, the clinic's mini-app, customers' ideas).

use std::path::{Path, PathBuf};

use agora_app::{App, Call, CreateOrg, CreateToken, NewMember};
use agora_domain::{Actor, Email, OrgName, Password, PersonName, RequestId, Role};
use clap::Args;

use crate::Failure;
use crate::config::Config;
use crate::serve::{ServeArgs, bind, init_logging, open_app, serve};

/// The password of every demo account. The demo is for trying Agora, never for real data.
pub const DEMO_PASSWORD: &str = "agora-demo-password";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's data; reused if it already holds the demo [default: ./agora-demo].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Seed the data and exit without serving (for scripts and tests).
    #[arg(long)]
    pub seed_only: bool,
}

/// One demo account: who, where, which role.
struct Account {
    org: &'static str,
    email: &'static str,
    name: &'static str,
    role: Role,
}

const OPERATOR: &str = "Agora Operator";
const ACCOUNTS: &[Account] = &[
    Account {
        org: OPERATOR,
        email: "olivia@operator.example",
        name: "Olivia Operator",
        role: Role::Admin,
    },
    Account {
        org: "FreshMart",
        email: "ana@freshmart.example",
        name: "Ana Lima",
        role: Role::Owner,
    },
    Account {
        org: "FreshMart",
        email: "ben@freshmart.example",
        name: "Ben Okafor",
        role: Role::Analyst,
    },
    Account {
        org: "Brightbrew Brands",
        email: "carla@brightbrew.example",
        name: "Carla Mendes",
        role: Role::Owner,
    },
    Account {
        org: "Brightbrew Brands",
        email: "dev@brightbrew.example",
        name: "Dev Patel",
        role: Role::Developer,
    },
];

pub async fn run(config_file: Option<&Path>, args: DemoArgs) -> Result<(), Failure> {
    let flags = ServeArgs {
        data_dir: Some(
            args.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("./agora-demo")),
        ),
        listen: args.listen.clone(),
        ..ServeArgs::default()
    };
    let mut config = Config::load(config_file, flags.overrides())?;
    init_logging(&config);
    let listener = if args.seed_only {
        None
    } else {
        Some(bind(&mut config).await?)
    };
    let app = open_app(&config).await?;
    let fresh = app
        .bootstrap(OPERATOR, "owner@agora.localhost")
        .await?
        .is_some();
    let tokens = if fresh { seed(&app).await? } else { Vec::new() };
    let mut banner = String::new();
    banner.push_str(if fresh {
        "Seeded a fresh demo ecosystem"
    } else {
        "Reusing the demo ecosystem"
    });
    banner.push_str(&format!(
        " in {}.\n\nSign in at {}/signin with any of these (password: {DEMO_PASSWORD}):\n",
        config.storage.data_dir.display(),
        config.public_url()
    ));
    for account in ACCOUNTS {
        banner.push_str(&format!(
            "  {:<28} {:<10} of {}\n",
            account.email,
            account.role.as_str(),
            account.org
        ));
    }
    if !tokens.is_empty() {
        banner.push_str("\nAPI tokens (shown only now), e.g. curl -H \"Authorization: Bearer …\" …/api/v1/me:\n");
        for (email, token) in &tokens {
            banner.push_str(&format!("  {email:<28} {token}\n"));
        }
    }
    match listener {
        Some(listener) => serve(&config, listener, app, Some(banner)).await,
        None => {
            println!("{banner}");
            Ok(())
        }
    }
}

/// Creates the partners, their members and one token per partner owner.
async fn seed(app: &App) -> Result<Vec<(String, String)>, Failure> {
    let system = Actor::system();
    let call = Call::new(&system, RequestId::new());
    let operator = app
        .store()
        .operator_org()
        .await?
        .ok_or_else(|| anyhow::anyhow!("bootstrap made no operator"))?;
    let mut tokens = Vec::new();
    let mut orgs = vec![(OPERATOR, operator.id)];
    for account in ACCOUNTS {
        let org_id = match orgs.iter().find(|(name, _)| *name == account.org) {
            Some((_, org_id)) => *org_id,
            None => {
                let org = app
                    .create_org(
                        &call,
                        CreateOrg {
                            name: OrgName::parse(account.org)?,
                        },
                    )
                    .await?;
                orgs.push((account.org, org.id));
                org.id
            }
        };
        let member = NewMember {
            email: Email::parse(account.email)?,
            role: account.role,
            display_name: Some(PersonName::parse(account.name)?),
            password: Some(Password::parse(DEMO_PASSWORD)?),
        };
        let added = app.add_member(&call, org_id, member).await?;
        if account.role == Role::Owner {
            let actor = Actor {
                user_id: Some(added.member.user_id),
                acting: Some(agora_domain::actor::Acting {
                    org_id,
                    role: Role::Owner,
                    is_operator: false,
                }),
                credential: agora_domain::Credential::System,
            };
            let owner_call = Call::new(&actor, RequestId::new());
            let created = app
                .create_token(
                    &owner_call,
                    org_id,
                    CreateToken {
                        name: "demo".into(),
                        role: Role::Owner,
                        expires_in_days: None,
                    },
                )
                .await?;
            tokens.push((account.email.to_owned(), created.secret));
        }
    }
    Ok(tokens)
}
