//! `agora login`: checks a token against a server and stores both as a profile.

use std::io::{BufRead, IsTerminal};

use clap::Args;

use super::http::Api;
use super::output::{self, Format};
use super::profile::{Profile, ProfileFile, Token, normalize_server, profiles_path};
use super::{Me, typed};
use crate::{Failure, exit};

/// Sign in to a server with an API token and store it as a profile.
///
/// The token is checked with the server (`GET /api/v1/me`) before it is stored, in
/// `$AGORA_HOME/profiles.json`, else `$XDG_CONFIG_HOME/agora/profiles.json`, else
/// `~/.config/agora/profiles.json`, readable by you only (mode 0600). Only its prefix is ever
/// printed.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agora login --server http://localhost:8080            (paste the token when asked)
  agora login --server http://localhost:8080 < token.txt
  agora login --server http://staging:8080 --profile staging
  agora org list --profile staging")]
pub struct LoginArgs {
    /// The server's base URL, such as http://localhost:8080.
    #[arg(long, env = "AGORA_SERVER", value_name = "URL")]
    pub server: String,
    /// The API token (`agora_…`). Without it, the token is read from standard input, which keeps
    /// it out of the shell's history and the process list.
    #[arg(
        long,
        env = "AGORA_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Token>,
    /// The name to store the profile under; other commands pick it with --profile.
    #[arg(
        long,
        env = "AGORA_PROFILE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub profile: String,
    /// How to print who you are: `table` for a sentence, `json` for the server's answer to
    /// `GET /api/v1/me`.
    #[arg(long, value_enum, default_value_t = Format::Table, value_name = "FORMAT")]
    pub format: Format,
}

pub async fn login(args: LoginArgs) -> Result<(), Failure> {
    let server = normalize_server(&args.server)?;
    if args.profile.trim().is_empty() {
        return Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!("a profile needs a name"),
        });
    }
    let token = match args.token {
        Some(token) => token,
        None => read_token(&server)?,
    };
    token.check_shape()?;
    let api = Api::new(server.clone(), token.clone())?.without_login_hint();
    let me_json: serde_json::Value = api.get("/api/v1/me", &[]).await?;
    let me: Me = typed(&me_json)?;

    let path = profiles_path()?;
    let mut file = ProfileFile::load(&path)?;
    file.profiles.insert(
        args.profile.clone(),
        Profile {
            server: server.clone(),
            token: token.clone(),
        },
    );
    file.save(&path)?;
    let stored = format!(
        "Stored profile `{}` (token {token}) in {}.",
        args.profile,
        path.display()
    );

    match args.format {
        Format::Json => {
            output::print_json(&me_json)?;
            eprintln!("{stored}");
        }
        Format::Table => {
            let who = me
                .user_id
                .map_or_else(|| "the instance".to_owned(), |user_id| user_id.to_string());
            let acting = match &me.acting {
                Some(acting) => {
                    // The name makes the sentence readable; the id is what other commands take.
                    let org_name = api
                        .get::<agora_domain::model::Organisation>(
                            &format!("/api/v1/orgs/{}", acting.org_id),
                            &[],
                        )
                        .await
                        .map(|org| format!("{} ({})", org.name.as_str(), acting.org_id))
                        .unwrap_or_else(|_| acting.org_id.to_string());
                    let operator = if acting.is_operator {
                        ", the operator"
                    } else {
                        ""
                    };
                    format!(", {} of {org_name}{operator}", acting.role)
                }
                None => String::new(),
            };
            output::print(&format!(
                "Signed in to {server} as {who}{acting}.\n{stored}\n"
            ))?;
        }
    }
    Ok(())
}

/// Reads one line from standard input, prompting on standard error when a person types it.
fn read_token(server: &str) -> Result<Token, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Paste an API token for {server} (agora_…) and press Enter: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|error| {
        anyhow::Error::new(error).context("cannot read the token from standard input")
    })?;
    let token: Token = line.parse().expect("parsing a token cannot fail");
    if token.expose().is_empty() {
        return Err(Failure {
            code: exit::USAGE,
            error: anyhow::anyhow!(
                "no token given: pass --token, set AGORA_TOKEN, or write it on standard input"
            ),
        });
    }
    Ok(token)
}
