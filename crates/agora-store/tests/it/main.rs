//! Integration tests of the store against real databases: SQLite in a temporary folder always,
//! and PostgreSQL when `AGORA_TEST_POSTGRES_URL` is set (CI always sets it).

mod harness;
mod idempotency;
mod ledger;
mod ledger_throughput;
mod listing;
mod market;
