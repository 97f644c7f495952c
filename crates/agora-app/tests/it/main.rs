//! agora-app's integration tests, in one binary.

mod harness;
mod ledger_crash;
mod ledger_properties;
mod ledger_writer;
mod loyalty;
mod market;
mod market_crash;
mod payment_crash;
