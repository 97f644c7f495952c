//! The marketplace's one integration-test binary: data-driven cases per area and a model-based property test against the real ledger engine.
