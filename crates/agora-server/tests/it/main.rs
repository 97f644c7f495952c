//! Integration tests of the HTTP edge against a real server on 127.0.0.1, on SQLite and,
//! when `AGORA_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod api;
mod bad_input;
mod coalitions;
mod datasets;
mod harness;
mod ledger;
mod listings;
mod loyalty;
mod market;
mod openapi;
mod portal_coalitions;
mod portal_commons;
mod portal_loyalty;
mod portal_market;
mod protocols;
mod superapp;
