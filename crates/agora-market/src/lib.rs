//! Agora's marketplace rules as pure functions: each step takes the marketplace state and returns the new state and a posting plan for the ledger. No I/O.
//!
//! Decision 0005 ("Marketplace money flows on the ledger") is the design; this crate is its
//! executable half. Every step (place, pay, capture, fulfil, release, refund, cancel, payout,
//! accrue, redeem, expire, record an obligation, close a window) is a function that either
//! refuses with an [`agora_domain::Error`] and changes nothing, or returns the new state and a
//! [`Plan`]: the accounts to create if missing and the ledger transfers, one linked chain with
//! deterministic ids derived from the step's key.
//!
//! The application carries a step out: it records the plan as `planned`, submits it to the
//! ledger writer, and, once the ledger answered `Created` (or `Exists` on a retry), stores the new
//! state. A plan the ledger refuses (a wallet that cannot pay, a seller who cannot cover a refund)
//! leaves the state as it was, because the caller simply drops the new state it was handed.
//!
//! # Modules
//!
//! - [`accounts`]: the chart of accounts and the derived account ids.
//! - [`plan`]: posting plans, step keys, deterministic transfer ids.
//! - [`commission`]: commission rules, resolution, arithmetic, and the terms frozen on a line.
//! - [`order`]: orders, their lines and per-seller parts, and every step on them.
//! - [`payout`]: seller settings, payout schedules, payouts.
//! - [`wallet`]: wallet top-ups.
//! - [`points`]: points rules, lots, accrual, redemption, expiry.
//! - [`settlement`]: partner-to-partner obligations, settlement windows and their reports.
//! - [`sandbox`]: a seeded model of a card payment provider with late, duplicate and reordered notifications.
//!
//! # Step keys
//!
//! Each step's key names its transfers (see [`plan`]), so it is unique per step and the same on
//! every retry. A key whose plan the ledger refused stays failed there, so an attempt that may
//! be refused (a wallet payment, a refund, a payout, a redemption) carries a fresh id:
//!
//! | step | key |
//! |---|---|
//! | card capture | `payment/{payment_id}/capture` |
//! | wallet payment | `payment/{payment_id}/wallet` |
//! | fulfil, release | `order/{order_id}/fulfil/{seller}`, `order/{order_id}/release/{seller}` |
//! | cancel | `order/{order_id}/cancel` |
//! | refund | `refund/{refund_id}` |
//! | payout | `payout/{payout_id}` |
//! | top-up | `wallet/{customer}/top-up/{payment_id}` |
//! | accrue, redeem, expire | `lot/{lot_id}/accrue`, `points/redeem/{payment_id}`, `points/expire/{digest of the lot ids}` |
//! | obligation, close | `obligation/{obligation_id}`, `window/{window_id}/close` |
//!
//! # Invariants the steps keep
//!
//! - Amounts are `i64` minor units; every sum and product is checked, and an overflow is a refusal, never a wrap.
//! - For every order: paid = Σ seller net + Σ commission + refunded, where the net and commission
//!   are what the fulfilled parts moved (or will move) and refunds are what went back to the payer.
//! - An order's clearing account is zero once every part is fulfilled or fully refunded.
//! - Settlement positions sum to zero per currency; points liability equals the unexpired lots' remainders.

pub mod accounts;
pub mod commission;
pub mod order;
pub mod payout;
pub mod plan;
pub mod points;
pub mod sandbox;
pub mod settlement;
pub mod wallet;

pub use accounts::{AccountPurpose, TransferCode, account, account_id, points_currency};
pub use plan::{Leg, Plan, StepKey, transfer_id};
