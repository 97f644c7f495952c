//! `agora org`, `agora member` and `agora token`: organisations, their members and API tokens.

use agora_app::{CreatedToken, MemberAdded};
use agora_domain::model::{ApiToken, Member, OrgStatus, Organisation};
use agora_domain::{Email, OrgId, Role, Timestamp};
use clap::Subcommand;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde_json::{Value, json};

use super::http::Api;
use super::output::{self, Format, Table};
use super::{ClientArgs, IdempotencyArgs, ListArgs, connect, resolve_org, typed, with_retry_hint};
use crate::{Failure, exit};

/// Organisations: list, show, create, rename, approve.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// List every organisation on the server: the directory is open to everyone signed in.
    #[command(
        after_help = "Examples:\n  agora org list\n  agora org list --format json | jq -r '.[].id'"
    )]
    List {
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one organisation.
    Show {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create an organisation; you become its owner.
    ///
    /// When the server admits partners by approval, a partner's new organisation waits for the
    /// operator (`agora org approve`).
    #[command(
        after_help = "Example:\n  agora org create \"FreshMart\" --idempotency-key freshmart-2025"
    )]
    Create {
        /// The organisation's name: 2 to 100 characters, unique regardless of case.
        name: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rename an organisation (its owners and admins).
    Rename {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        /// The new name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Admit an organisation waiting for approval (the operator's owners and admins).
    Approve {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Members of an organisation: list, add, remove.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List an organisation's members and their roles.
    List {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Add a member by e-mail, or change a member's role.
    ///
    /// A user new to the server is created and gets a one-time sign-in link to choose a password;
    /// it is printed once, so pass it on. You cannot grant a role above your own.
    #[command(
        after_help = "Example:\n  agora member add FreshMart ana@freshmart.example --role analyst --name \"Ana Lima\""
    )]
    Add {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        /// The member's e-mail address, with which they sign in.
        email: String,
        /// The member's role in the organisation.
        #[arg(long, value_parser = role_parser())]
        role: Role,
        /// The display name of a user new to the server (default: from the e-mail address).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a member; their tokens for the organisation are revoked with the membership.
    Remove {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        /// The member: their user id (usr_…) or e-mail address.
        #[arg(value_name = "USER")]
        user: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// API tokens: list, create, revoke.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List an organisation's API tokens (never their secrets: only the visible prefix).
    List {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        #[command(flatten)]
        list: ListArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create an API token that acts for you in an organisation, with a role no higher than yours.
    ///
    /// The secret is printed once, alone on standard output (or inside the JSON answer with
    /// `--format json`); the server keeps only its hash.
    #[command(
        after_help = "Examples:\n  TOKEN=$(agora token create FreshMart --name ci --role developer --expires-in-days 90)\n  \
                            agora token create org_… --name dashboards --role analyst --format json > token.json"
    )]
    Create {
        /// The organisation: its id (org_…) or its exact name.
        #[arg(value_name = "ORG")]
        org: String,
        /// What the token is for, to recognise it in `agora token list` ("ci", "bi dashboard").
        #[arg(long)]
        name: String,
        /// The token's role; at most your own.
        #[arg(long, value_parser = role_parser())]
        role: Role,
        /// Days until the token stops working (default: never).
        #[arg(long, value_name = "N")]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id (tok_…), as `agora token list` shows it.
        #[arg(value_name = "TOKEN_ID")]
        token_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Roles as clap offers them, so that `--help` and completions list them.
fn role_parser() -> impl TypedValueParser<Value = Role> {
    PossibleValuesParser::new(Role::ALL.map(Role::as_str))
        .map(|text| text.parse::<Role>().expect("the possible values are roles"))
}

pub async fn org(command: OrgCommand) -> Result<(), Failure> {
    match command {
        OrgCommand::List { list, client } => {
            let api = connect(&client.connect)?;
            print_list(&api, "/api/v1/orgs", &list, client.format, orgs_table).await
        }
        OrgCommand::Show { org, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let answer: Value = api.get(&format!("/api/v1/orgs/{org_id}"), &[]).await?;
            print_one(client.format, &answer, orgs_table)
        }
        OrgCommand::Create {
            name,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let key = idempotency.key();
            let answer = api
                .post("/api/v1/orgs", Some(&json!({ "name": name })), Some(&key))
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            let created: Organisation = typed(&answer)?;
            print_one(client.format, &answer, orgs_table)?;
            if created.status == OrgStatus::Pending {
                eprintln!(
                    "{} waits for the operator's approval before its members can act.",
                    created.name
                );
            }
            Ok(())
        }
        OrgCommand::Rename { org, name, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let answer = api
                .patch(&format!("/api/v1/orgs/{org_id}"), &json!({ "name": name }))
                .await?;
            print_one(client.format, &answer, orgs_table)
        }
        OrgCommand::Approve { org, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let answer = api
                .post(&format!("/api/v1/orgs/{org_id}/approve"), None, None)
                .await?;
            print_one(client.format, &answer, orgs_table)
        }
    }
}

pub async fn member(command: MemberCommand) -> Result<(), Failure> {
    match command {
        MemberCommand::List { org, list, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            print_list(
                &api,
                &format!("/api/v1/orgs/{org_id}/members"),
                &list,
                client.format,
                members_table,
            )
            .await
        }
        MemberCommand::Add {
            org,
            email,
            role,
            name,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let key = idempotency.key();
            let body = json!({ "email": email, "role": role, "display_name": name });
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{org_id}/members"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            let added: MemberAdded = typed(&answer)?;
            match client.format {
                Format::Json => output::print_json(&answer)?,
                Format::Table => {
                    let mut text = members_table(std::slice::from_ref(&added.member));
                    if let Some(link) = &added.signin_link {
                        text.push_str(&format!(
                            "\nSign-in link for {} (works once, until {}):\n{}\n",
                            added.member.email,
                            output::time(link.expires_at),
                            link.url
                        ));
                    }
                    output::print(&text)?;
                }
            }
            if added.signin_link.is_some() {
                eprintln!(
                    "The sign-in link is shown only now; send it to {} over a channel you trust.",
                    added.member.email
                );
            }
            Ok(())
        }
        MemberCommand::Remove { org, user, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let user_id = resolve_member(&api, org_id, &user).await?;
            let answer = api
                .delete(&format!("/api/v1/orgs/{org_id}/members/{user_id}"))
                .await?;
            match (client.format, answer) {
                (Format::Json, Some(answer)) => output::print_json(&answer),
                // The API answers 204 No Content: no JSON to print; the exit code says it worked.
                (Format::Json, None) => Ok(()),
                (Format::Table, _) => output::print(&format!(
                    "Removed {user_id} from {org_id}; their tokens for it are revoked.\n"
                )),
            }
        }
    }
}

pub async fn token(command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::List { org, list, client } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            print_list(
                &api,
                &format!("/api/v1/orgs/{org_id}/tokens"),
                &list,
                client.format,
                tokens_table,
            )
            .await
        }
        TokenCommand::Create {
            org,
            name,
            role,
            expires_in_days,
            idempotency,
            client,
        } => {
            let api = connect(&client.connect)?;
            let org_id = resolve_org(&api, &org).await?;
            let key = idempotency.key();
            let body = json!({ "name": name, "role": role, "expires_in_days": expires_in_days });
            let answer = api
                .post(
                    &format!("/api/v1/orgs/{org_id}/tokens"),
                    Some(&body),
                    Some(&key),
                )
                .await
                .map_err(|failure| with_retry_hint(failure, &key))?;
            let created: CreatedToken = typed(&answer)?;
            let token = &created.token;
            if created.secret.is_empty() {
                // A replay: the server never stores secrets, so it cannot show this one again.
                return Err(Failure {
                    code: exit::CONFLICT,
                    error: anyhow::anyhow!(
                        "token {} ({}) was already created by an earlier request with this idempotency key, and its secret was shown only then; \
                         if it is lost, revoke the token with `agora token revoke {}` and create another",
                        token.id,
                        token.prefix,
                        token.id
                    ),
                });
            }
            match client.format {
                Format::Json => output::print_json(&answer)?,
                Format::Table => output::print(&format!("{}\n", created.secret))?,
            }
            let expiry = token.expires_at.map_or_else(
                || "never expires".to_owned(),
                |at| format!("expires {}", output::time(at)),
            );
            eprintln!(
                "Created token {} ({}) named `{}` with role {} for {}; it {expiry}. The secret is shown only now: store it safely.",
                token.id, token.prefix, token.name, token.role, token.org_id
            );
            Ok(())
        }
        TokenCommand::Revoke { token_id, client } => {
            let api = connect(&client.connect)?;
            let token_id: agora_domain::TokenId = token_id.parse()?;
            let answer = api
                .delete(&format!("/api/v1/tokens/{token_id}"))
                .await?
                .unwrap_or(Value::Null);
            print_one(client.format, &answer, tokens_table)
        }
    }
}

/// A member named by user id, or by e-mail address looked up among the organisation's members.
async fn resolve_member(
    api: &Api,
    org_id: OrgId,
    text: &str,
) -> Result<agora_domain::UserId, Failure> {
    if !text.contains('@') {
        return Ok(text.parse()?);
    }
    let email = Email::parse(text)?;
    let members: Vec<Member> = api
        .all(&format!("/api/v1/orgs/{org_id}/members"), None)
        .await?;
    members
        .into_iter()
        .find(|member| member.email == email)
        .map(|member| member.user_id)
        .ok_or_else(|| Failure {
            code: exit::NOT_FOUND,
            error: anyhow::anyhow!("{email} is not a member of {org_id}"),
        })
}

/// Prints every item of a listing: a table, or the JSON array of the items.
pub async fn print_list<T: serde::de::DeserializeOwned>(
    api: &Api,
    path: &str,
    list: &ListArgs,
    format: Format,
    table: impl Fn(&[T]) -> String,
) -> Result<(), Failure> {
    let items: Vec<Value> = api.all(path, list.limit()).await?;
    match format {
        Format::Json => output::print_json(&Value::Array(items)),
        Format::Table => {
            let rows = items.iter().map(typed).collect::<Result<Vec<T>, _>>()?;
            output::print(&table(&rows))
        }
    }
}

/// Prints one answer: a one-row table, or the JSON.
pub fn print_one<T: serde::de::DeserializeOwned>(
    format: Format,
    answer: &Value,
    table: impl Fn(&[T]) -> String,
) -> Result<(), Failure> {
    match format {
        Format::Json => output::print_json(answer),
        Format::Table => output::print(&table(&[typed(answer)?])),
    }
}

fn orgs_table(orgs: &[Organisation]) -> String {
    let mut table = Table::new(&["id", "name", "kind", "status", "created"]);
    for org in orgs {
        table.row(vec![
            org.id.to_string(),
            org.name.to_string(),
            org.kind.as_str().to_owned(),
            org.status.as_str().to_owned(),
            output::time(org.created_at),
        ]);
    }
    table.render("No organisations.")
}

fn members_table(members: &[Member]) -> String {
    let mut table = Table::new(&["user id", "email", "name", "role", "since"]);
    for member in members {
        table.row(vec![
            member.user_id.to_string(),
            member.email.to_string(),
            member.display_name.to_string(),
            member.role.to_string(),
            output::time(member.since),
        ]);
    }
    table.render("No members.")
}

fn tokens_table(tokens: &[ApiToken]) -> String {
    let now = Timestamp::now();
    let mut table = Table::new(&[
        "id", "prefix", "name", "role", "user id", "created", "expires", "state",
    ]);
    for token in tokens {
        let state = if token.revoked_at.is_some() {
            "revoked"
        } else if token.is_usable_at(now) {
            "active"
        } else {
            "expired"
        };
        table.row(vec![
            token.id.to_string(),
            token.prefix.clone(),
            token.name.clone(),
            token.role.to_string(),
            token.user_id.to_string(),
            output::time(token.created_at),
            output::optional_time(token.expires_at),
            state.to_owned(),
        ]);
    }
    table.render("No tokens.")
}
