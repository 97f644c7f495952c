//! Configuration: compiled-in defaults, then `agora.toml`, then `AGORA_…` variables, then flags.

use std::path::{Path, PathBuf};

use agora_app::{Admission, AppConfig};
use agora_server::ServerConfig;
use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The documented defaults; `agora default-config` prints this text.
pub const DEFAULT_CONFIG: &str = include_str!("../agora.default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub storage: Storage,
    pub identity: Identity,
    pub api: Api,
    pub audit: Audit,
    pub policy: Policy,
    pub ledger: Ledger,
    pub market: Market,
    pub data: Data,
    pub query: agora_app::agora_query::QueryLimits,
    pub superapp: agora_app::SuperappOptions,
    pub log: Log,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: String,
    pub public_url: String,
    pub request_body_bytes_max: usize,
    pub request_timeout_ms: u64,
    pub cookie_secure: bool,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub pool_connections_max: u32,
    pub acquire_timeout_ms: u64,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("pool_connections_max", &self.pool_connections_max)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .finish()
    }
}

/// Hides the password of a database URL (`postgres://user:secret@host` → `postgres://user:***@host`).
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub admission: Admission,
    pub operator_name: String,
    pub owner_email: String,
    pub session_ttl_seconds: i64,
    pub signin_link_ttl_seconds: i64,
    pub signin_failures_max: i64,
    pub signin_failure_window_seconds: i64,
    pub cache_ttl_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub page_size_default: u32,
    pub page_size_max: u32,
    pub idempotency_key_ttl_hours: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    pub checkpoint_interval_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub policies_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    pub batch_transfers_max: usize,
    pub queue_requests_max: usize,
    pub expiry_check_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    pub notification_interval_ms: u64,
    pub housekeeping_interval_seconds: u64,
    pub payout_currencies: Vec<agora_domain::ledger::Currency>,
    pub sandbox_seed: u64,
    pub sandbox_delay_seconds_max: u32,
    pub sandbox_duplicate_per_mille: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub upload_bytes_max: u64,
    pub upload_rows_max: u64,
    pub schema_infer_rows: usize,
    pub batch_rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub format: String,
    pub filter: String,
}

/// Whether `AGORA_<key>` is a setting. The test suite's `AGORA_TEST_*` and
/// `AGORA_SCREENSHOT_DIR` (where browser tests save their screenshots), the config file's
/// `AGORA_CONFIG` and the client's `AGORA_HOME`, `AGORA_PROFILE`, `AGORA_SERVER` and
/// `AGORA_TOKEN` are not, and must not be refused as unknown settings.
fn is_setting_variable(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !key.starts_with("test_")
        && ![
            "config",
            "home",
            "profile",
            "server",
            "token",
            "screenshot_dir",
        ]
        .contains(&key.as_str())
}

impl Config {
    /// Reads defaults, the file, and the environment; flags are applied by the caller with `merge`.
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!("the configuration file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file(path));
            }
            None if Path::new("agora.toml").exists() => {
                figment = figment.merge(Toml::file("agora.toml"))
            }
            None => {}
        }
        // AGORA_TEST_* variables belong to the test suite, AGORA_CONFIG names the file: neither is a setting.
        let env = Env::prefixed("AGORA_")
            .split("__")
            .filter(|key| is_setting_variable(key.as_str()));
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration (see `agora default-config` for every option)")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.server.request_body_bytes_max < 1024 {
            bail!("server.request_body_bytes_max must be at least 1024");
        }
        if self.server.request_timeout_ms == 0 {
            bail!("server.request_timeout_ms must be above 0");
        }
        if self.api.page_size_max == 0
            || self.api.page_size_default == 0
            || self.api.page_size_default > self.api.page_size_max
        {
            bail!("api.page_size_default must be between 1 and api.page_size_max");
        }
        if self.identity.signin_failures_max < 1 {
            bail!("identity.signin_failures_max must be at least 1");
        }
        if !(1..=8190).contains(&self.ledger.batch_transfers_max) {
            bail!("ledger.batch_transfers_max must be between 1 and 8190");
        }
        if self.ledger.queue_requests_max == 0 || self.ledger.expiry_check_ms == 0 {
            bail!("ledger.queue_requests_max and ledger.expiry_check_ms must be at least 1");
        }
        if self.market.notification_interval_ms == 0 {
            bail!("market.notification_interval_ms must be at least 1");
        }
        if self.market.sandbox_duplicate_per_mille > 1000 {
            bail!("market.sandbox_duplicate_per_mille is at most 1000");
        }
        let query = &self.query;
        if query.sql_bytes_max == 0
            || query.sql_parse_depth_max == 0
            || query.memory_bytes_max == 0
            || query.query_timeout_ms == 0
            || query.result_rows_max == 0
            || query.partitions_max == 0
        {
            bail!("every [query] limit must be at least 1");
        }
        if self.data.upload_bytes_max == 0 || self.data.upload_rows_max == 0 {
            bail!("data.upload_bytes_max and data.upload_rows_max must be at least 1");
        }
        if self.data.schema_infer_rows == 0 || !(1..=1_048_576).contains(&self.data.batch_rows) {
            bail!(
                "data.schema_infer_rows must be at least 1 and data.batch_rows between 1 and 1048576"
            );
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            bail!(
                "log.format must be \"text\" or \"json\", not {:?}",
                self.log.format
            );
        }
        Ok(())
    }

    /// The database URL: the configured one, or SQLite in the data folder.
    pub fn database_url(&self) -> String {
        if self.storage.database_url.is_empty() {
            format!(
                "sqlite://{}",
                self.storage.data_dir.join("agora.db").display()
            )
        } else {
            self.storage.database_url.clone()
        }
    }

    pub fn public_url(&self) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            self.server.public_url.trim_end_matches('/').to_owned()
        }
    }

    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            admission: self.identity.admission,
            session_ttl_seconds: self.identity.session_ttl_seconds,
            signin_link_ttl_seconds: self.identity.signin_link_ttl_seconds,
            signin_failures_max: self.identity.signin_failures_max,
            signin_failure_window_seconds: self.identity.signin_failure_window_seconds,
            page_size_default: self.api.page_size_default,
            page_size_max: self.api.page_size_max,
            public_url: self.public_url(),
            cache_ttl_ms: self.identity.cache_ttl_ms,
            ledger: agora_app::LedgerOptions {
                batch_transfers_max: self.ledger.batch_transfers_max,
                queue_requests_max: self.ledger.queue_requests_max,
                expiry_check_ms: self.ledger.expiry_check_ms,
            },
            sandbox_seed: self.market.sandbox_seed,
            sandbox_delay_seconds_max: self.market.sandbox_delay_seconds_max,
            sandbox_duplicate_per_mille: self.market.sandbox_duplicate_per_mille,
            data: agora_app::agora_data::DataOptions {
                data_dir: self.storage.data_dir.clone(),
                upload_bytes_max: self.data.upload_bytes_max,
                upload_rows_max: self.data.upload_rows_max,
                schema_infer_rows: self.data.schema_infer_rows,
                batch_rows: self.data.batch_rows,
            },
            query: self.query,
            superapp: self.superapp.clone(),
        }
    }

    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            request_body_bytes_max: self.server.request_body_bytes_max,
            request_timeout_ms: self.server.request_timeout_ms,
            cookie_secure: self.server.cookie_secure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_documents_every_option_and_loads() {
        let config = Config::load(None, serde_json::json!({})).expect("defaults load");
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.storage.data_dir, PathBuf::from("./agora-data"));
        assert_eq!(config.database_url(), "sqlite://./agora-data/agora.db");
        // Every key of the serialized config appears in the documented file.
        let serialized = toml_keys(&serde_json::to_value(&config).unwrap());
        for key in serialized {
            assert!(
                DEFAULT_CONFIG.contains(&format!("\n{key} = ")),
                "{key} is not documented in agora.default.toml"
            );
        }
    }

    fn toml_keys(value: &serde_json::Value) -> Vec<String> {
        value
            .as_object()
            .unwrap()
            .values()
            .flat_map(|section| {
                section
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agora.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"typo\"\n",
        )
        .unwrap();
        let error = Config::load(Some(&path), serde_json::json!({})).unwrap_err();
        assert!(format!("{error:#}").contains("lisen"), "{error:#}");
        std::fs::write(&path, "[log]\nformat = \"xml\"\n").unwrap();
        let error = Config::load(Some(&path), serde_json::json!({})).unwrap_err();
        assert!(format!("{error:#}").contains("log.format"), "{error:#}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agora.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let config = Config::load(Some(&path), serde_json::json!({})).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9000");
        let config = Config::load(
            Some(&path),
            serde_json::json!({ "server": { "listen": "127.0.0.1:9001" } }),
        )
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9001");
    }

    #[test]
    fn test_and_client_variables_are_not_settings() {
        for key in [
            "TEST_POSTGRES_URL",
            "test_browser_dir",
            "CONFIG",
            "HOME",
            "PROFILE",
            "SERVER",
            "TOKEN",
            "SCREENSHOT_DIR",
        ] {
            assert!(!is_setting_variable(key), "{key}");
        }
        for key in ["SERVER__LISTEN", "storage__data_dir", "TYPO"] {
            assert!(is_setting_variable(key), "{key}");
        }
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://agora:secret@localhost/agora"),
            "postgres://agora:***@localhost/agora"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
