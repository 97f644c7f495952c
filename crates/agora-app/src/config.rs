//! Settings the use cases obey; the CLI fills them from defaults, `agora.toml`, environment and flags.

use serde::{Deserialize, Serialize};

/// How new partner organisations are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Admission {
    /// Active as soon as created.
    Open,
    /// Pending until an operator owner or admin approves.
    Approval,
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub admission: Admission,
    pub session_ttl_seconds: i64,
    pub signin_link_ttl_seconds: i64,
    /// Failed sign-ins for one e-mail address within the window before sign-in is refused.
    pub signin_failures_max: i64,
    pub signin_failure_window_seconds: i64,
    pub page_size_default: u32,
    pub page_size_max: u32,
    /// Where the portal is reached, for the links the instance prints.
    pub public_url: String,
    /// How long an authenticated token and an organisation stay cached (0 turns the cache off).
    pub cache_ttl_ms: u64,
    /// How the ledger's single writer groups requests.
    pub ledger: crate::LedgerOptions,
    /// The sandbox payment provider: the seed of its notification schedule, the longest it
    /// delays a notification, and how often (per mille) it sends one twice.
    pub sandbox_seed: u64,
    pub sandbox_delay_seconds_max: u32,
    pub sandbox_duplicate_per_mille: u32,
    /// Where datasets are stored and how large an upload may be.
    pub data: agora_data::DataOptions,
    /// Limits on every governed query: SQL length and depth, memory, time, result rows.
    pub query: agora_query::QueryLimits,
    /// The superapp: mini-app origins, review, bundle limits, token lifetimes.
    pub superapp: crate::SuperappOptions,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            admission: Admission::Open,
            session_ttl_seconds: 7 * 24 * 3600,
            signin_link_ttl_seconds: 24 * 3600,
            signin_failures_max: 5,
            signin_failure_window_seconds: 15 * 60,
            page_size_default: 50,
            page_size_max: 200,
            public_url: "http://127.0.0.1:8080".into(),
            cache_ttl_ms: 5_000,
            ledger: crate::LedgerOptions::default(),
            sandbox_seed: 7,
            sandbox_delay_seconds_max: 2,
            sandbox_duplicate_per_mille: 250,
            data: agora_data::DataOptions::new("./agora-data"),
            query: agora_query::QueryLimits::default(),
            superapp: crate::SuperappOptions::default(),
        }
    }
}
