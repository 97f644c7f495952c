//! The marketplace's one integration-test binary: data-driven cases per area and a model-based property test against the real ledger engine.

mod books;
mod commission;
mod fixtures;
mod orders;
mod payouts;
mod points;
mod properties;
mod sandbox;
mod settlement;
mod world;
