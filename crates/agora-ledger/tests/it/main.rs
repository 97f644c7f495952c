//! The ledger's one integration-test binary: data-driven cases, a model-based property test, and restore.

mod cases;
mod fixtures;
mod model;
mod properties;
mod restore;
mod scenario;
