//! Integration tests of the `agora` binary: serve on both backends, the audit log's tamper
//! evidence, the portal in a real browser, and the client commands.

mod audit_tamper;
mod browser;
mod cli_client;
mod demo;
mod harness;
mod kill;
mod serve;
