//! Stored profiles: which server to speak to and with which token, in a file only you can read.
//!
//! The file is `$AGORA_HOME/profiles.json`, else `$XDG_CONFIG_HOME/agora/profiles.json`, else
//! `~/.config/agora/profiles.json`. It holds bearer tokens, so it is written with mode 0600 in a
//! folder with mode 0700, and replaced atomically so that a crash never leaves half a file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{Failure, exit};

/// An API token as typed or stored. Its `Debug` and `Display` show only the visible prefix, so
/// that it never reaches a log or a terminal in full by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// The whole secret, for the `Authorization` header and the profile file only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public part (`agora_<12 hex>`), which the server lists as the token's prefix.
    pub fn prefix(&self) -> &str {
        agora_app::secrets::token_prefix(&self.0).unwrap_or("agora_?")
    }

    /// Refuses text that does not have the shape of an Agora token before it is sent anywhere.
    pub fn check_shape(&self) -> Result<(), Failure> {
        match agora_app::secrets::token_prefix(&self.0) {
            Some(_) => Ok(()),
            None => Err(Failure {
                code: exit::USAGE,
                error: anyhow::anyhow!(
                    "this is not an Agora API token: expected `agora_<12 hex>_<64 hex>`"
                ),
            }),
        }
    }
}

impl FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.trim().to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", self.prefix())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.prefix())
    }
}

/// One stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The server's base URL, without a trailing slash.
    pub server: String,
    pub token: Token,
}

/// Everything in `profiles.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Where profiles are stored.
pub fn profiles_path() -> Result<PathBuf, Failure> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = from_env("AGORA_HOME") {
        return Ok(home.join("profiles.json"));
    }
    if let Some(config) = from_env("XDG_CONFIG_HOME").filter(|path| path.is_absolute()) {
        return Ok(config.join("agora").join("profiles.json"));
    }
    if let Some(home) = from_env("HOME") {
        return Ok(home.join(".config").join("agora").join("profiles.json"));
    }
    Err(Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!(
            "cannot tell where to keep profiles: set AGORA_HOME, XDG_CONFIG_HOME or HOME"
        ),
    })
}

impl ProfileFile {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("cannot read {}", path.display()))
                    .into());
            }
        };
        warn_if_readable_by_others(path);
        let file = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid profiles file", path.display()))?;
        Ok(file)
    }

    /// Writes the file with mode 0600, replacing the old one atomically.
    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let write = || -> std::io::Result<()> {
            if let Some(folder) = path.parent() {
                create_private_folder(folder)?;
            }
            let mut text = serde_json::to_string_pretty(self).expect("profiles serialize");
            text.push('\n');
            let temporary = path.with_extension("json.tmp");
            let _ = std::fs::remove_file(&temporary);
            {
                use std::io::Write;
                let mut file = open_private(&temporary)?;
                file.write_all(text.as_bytes())?;
                file.sync_all()?;
            }
            std::fs::rename(&temporary, path)
        };
        write().with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} holds API tokens but others may read it; run `chmod 600` on it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// A server URL as the client uses it: `http://host:port` with no trailing slash.
pub fn normalize_server(url: &str) -> Result<String, Failure> {
    let url = url.trim().trim_end_matches('/');
    let usage = |message: String| Failure {
        code: exit::USAGE,
        error: anyhow::anyhow!(message),
    };
    if url.starts_with("https://") {
        // reqwest is built without a TLS stack in this workspace, to keep one out of the binary.
        return Err(usage(format!(
            "`{url}`: this build of agora speaks plain http only; reach the server over http (for example through a local tunnel)"
        )));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(usage(format!(
            "`{url}` is not a server URL: expected http://host:port"
        )));
    };
    if rest.is_empty() || rest.contains(['?', '#']) {
        return Err(usage(format!(
            "`{url}` is not a server URL: expected http://host:port"
        )));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str =
        "agora_0123456789ab_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_shows_only_its_prefix() {
        let token: Token = TOKEN.parse().unwrap();
        assert_eq!(format!("{token:?}"), "Token(agora_0123456789ab…)");
        assert_eq!(token.to_string(), "agora_0123456789ab…");
        assert!(token.check_shape().is_ok());
        assert!(
            "agora_nope"
                .parse::<Token>()
                .unwrap()
                .check_shape()
                .is_err()
        );
    }

    #[test]
    fn server_urls_are_normalized_or_refused() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_server("https://agora.example").unwrap_err().code,
            exit::USAGE
        );
        assert_eq!(
            normalize_server("localhost:8080").unwrap_err().code,
            exit::USAGE
        );
    }

    #[test]
    fn profiles_round_trip_with_mode_0600() {
        let folder =
            std::env::temp_dir().join(format!("agora-profile-test-{}", std::process::id()));
        let path = folder.join("nested").join("profiles.json");
        let mut file = ProfileFile::default();
        file.profiles.insert(
            "default".into(),
            Profile {
                server: "http://127.0.0.1:1".into(),
                token: TOKEN.parse().unwrap(),
            },
        );
        file.save(&path).unwrap();
        file.save(&path).unwrap();
        assert_eq!(ProfileFile::load(&path).unwrap().profiles, file.profiles);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
