//! Agora's coalition rules as pure functions: charters, tallies, proposal clocks and decisions, pledges, goal progress and the decision register. No I/O.
//!
//! The app stores the values these functions take and return (every public type serializes to
//! JSON) and calls them at each step: validate a charter before storing it, freeze an
//! [`tally::Electorate`] when a proposal opens, tally after each ballot, move the
//! [`proposal::Clock`] with [`proposal::after_vote`], and ask [`proposal::decision`] whether the
//! proposal is decided.
//!
//! # Modules and where their rules come from
//!
//! - [`charter`]: decision rules and their safe bounds. Aragon OSx leaves unsafe settings to
//!   its front end; Agora refuses them on the server.
//! - [`tally`]: latest ballot per member (Loomio), liquid delegation by topic (Loomio's most
//!   requested missing feature, a third-party module in Decidim), strict support and rounded-up
//!   quorum (Aragon OSx, OpenZeppelin Governor).
//! - [`proposal`]: voting window (Loomio's seven-day default, Aragon's 1 hour to 1 year bounds),
//!   late-quorum extension and timelock (OpenZeppelin), early close (Aragon) only while votes
//!   are final.
//! - [`pledge`]: PledgeBank's conditional pledges, activated as a greatest fixed point.
//! - [`goal`]: Decidim's accountability tree, parents' progress from their children.
//! - [`register`]: Popolo's `Motion` and `VoteEvent`, with delegation paths.
//!
//! # Units
//!
//! Quantities and amounts are `i64`, voting weights `u64`, fractions basis points `u32`
//! (10_000 = 100%), durations `i64` seconds, instants [`agora_domain::Timestamp`]. Products of
//! counts and basis points are taken in `u128`, so they never overflow.

pub mod charter;
pub mod goal;
pub mod pledge;
pub mod proposal;
pub mod register;
pub mod tally;

pub use charter::{Charter, PooledRules, TallyRules, VoteWeight};
pub use goal::{GoalNode, Progress, Rollup, progress, validate_goal};
pub use pledge::{Condition, PledgeState, active_pledges, is_overdue, validate_pledge};
pub use proposal::{
    Clock, Decision, ProposalStatus, after_vote, decision, executable_at, open_clock,
};
pub use register::{Motion, VoteEvent, motion, requirement, vote_event};
pub use tally::{Ballot, Choice, CountedVote, Delegation, Electorate, Tally, tally, tally_rules};
