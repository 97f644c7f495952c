//! A coalition's charter: its decision rules, their safe bounds, and what an amendment changes.
//!
//! Aragon OSx leaves unsafe settings (a 0% support threshold, a minute-long vote) to its front
//! end; Agora refuses them here, on the server, so no client can store a charter that lets a
//! single member decide for everyone. [`Charter::validate`] collects every problem at once so
//! that a form can show them all.

use agora_domain::{Error, Result};
use serde::{Deserialize, Serialize};

/// One hour: the shortest vote and the smallest voting bound (Aragon OSx's minimum duration).
pub const VOTING_SECONDS_FLOOR: i64 = 3_600;
/// One year (365 days): the longest vote, the longest execution delay and quorum extension.
pub const VOTING_SECONDS_CEILING: i64 = 31_536_000;
/// The lowest quorum a charter may set: 10% of the electorate's power.
///
/// A quorum of 0 would let one member pass anything while the others are away, and an
/// amendment can then lower every other safeguard; 10% is the floor Agora accepts.
pub const QUORUM_BPS_FLOOR: u32 = 1_000;
/// The lowest threshold for amending the charter: a majority.
pub const AMENDMENT_THRESHOLD_BPS_FLOOR: u32 = 5_000;
/// 100% in basis points.
pub const BPS_WHOLE: u32 = 10_000;
/// The longest minimum age of pooled data, in days (ten years).
pub const POOLED_MIN_AGE_DAYS_CEILING: u32 = 3_650;
/// The fewest contributors a pooled statistic may have.
pub const POOLED_MIN_CONTRIBUTORS_FLOOR: u32 = 3;
/// The largest share one contributor may hold in a pooled statistic.
pub const POOLED_CONTRIBUTOR_SHARE_BPS_CEILING: u32 = 5_000;

/// A coalition's decision rules. Every fraction is in basis points (10_000 = 100%).
///
/// Missing fields take their defaults when a stored charter is read back, so that adding a
/// rule does not break charters stored before it existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Charter {
    /// Support is yes / (yes + no) and must be strictly greater than this (Aragon, OpenZeppelin).
    pub support_threshold_bps: u32,
    /// Participation, (yes + no + abstain + block) / the electorate's power frozen at open,
    /// must be at least this.
    pub quorum_bps: u32,
    pub voting_seconds_min: i64,
    pub voting_seconds_max: i64,
    /// Loomio's default of seven days.
    pub voting_seconds_default: i64,
    /// Close before the deadline once the outcome cannot change; takes effect only when
    /// `votes_changeable` is false (see [`crate::proposal`]).
    pub early_close: bool,
    /// OpenZeppelin's late-quorum extension; 0 never extends.
    pub quorum_extension_seconds: i64,
    /// OpenZeppelin's timelock: a passed proposal's actions run this long after the decision.
    pub execution_delay_seconds: i64,
    pub vote_weight: VoteWeight,
    pub delegation: bool,
    /// If true, one `block` ballot (Loomio's consent process) fails the proposal.
    pub block_allowed: bool,
    /// The support threshold of a proposal that amends the charter.
    pub amendment_support_threshold_bps: u32,
    /// Loomio: members may change their vote until the close and only the latest counts.
    /// When false, a member's first ballot is final (the app refuses a second one).
    pub votes_changeable: bool,
    pub pooled: PooledRules,
}

/// How much a member's ballot weighs, fixed when a proposal opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteWeight {
    OnePerMember,
    ByPledge,
    ByStake,
}

/// Competition-safe rules for statistics published from pooled data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PooledRules {
    /// A published statistic needs at least this many distinct contributors.
    pub min_contributors: u32,
    /// No contributor may account for more than this share of a published statistic.
    pub contributor_share_bps_max: u32,
    /// Only data at least this old may be published.
    pub min_age_days: u32,
}

/// The rules one tally and decision use, taken from the charter for one proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TallyRules {
    pub support_threshold_bps: u32,
    pub quorum_bps: u32,
    pub block_allowed: bool,
    pub delegation: bool,
    pub votes_changeable: bool,
}

impl Default for Charter {
    fn default() -> Self {
        Self {
            support_threshold_bps: 5_000,
            quorum_bps: 3_000,
            voting_seconds_min: VOTING_SECONDS_FLOOR,
            voting_seconds_max: 30 * 86_400,
            voting_seconds_default: 7 * 86_400,
            early_close: true,
            quorum_extension_seconds: 86_400,
            execution_delay_seconds: 0,
            vote_weight: VoteWeight::OnePerMember,
            delegation: true,
            block_allowed: false,
            amendment_support_threshold_bps: 6_667,
            votes_changeable: true,
            pooled: PooledRules::default(),
        }
    }
}

impl Default for PooledRules {
    fn default() -> Self {
        Self {
            min_contributors: 5,
            contributor_share_bps_max: 2_500,
            min_age_days: 90,
        }
    }
}

impl Charter {
    /// Refuses an unsafe charter, naming every field at fault with its value and bound.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        let mut refuse = |problem: String| problems.push(problem);

        // Support is compared strictly, so 10_000 could never be met; 9_999 is the strictest.
        let threshold = self.support_threshold_bps;
        if threshold == 0 || threshold >= BPS_WHOLE {
            refuse(format!(
                "support_threshold_bps is {threshold}; it must be between 1 and 9999 basis points (yes must be strictly above it, so 10000 could never pass)"
            ));
        }
        let amendment = self.amendment_support_threshold_bps;
        if amendment < AMENDMENT_THRESHOLD_BPS_FLOOR {
            refuse(format!(
                "amendment_support_threshold_bps is {amendment}; it must be at least {AMENDMENT_THRESHOLD_BPS_FLOOR} (a majority)"
            ));
        }
        if amendment >= BPS_WHOLE {
            refuse(format!(
                "amendment_support_threshold_bps is {amendment}; it must be at most 9999 basis points, or the charter could never be amended"
            ));
        }
        if amendment < threshold {
            refuse(format!(
                "amendment_support_threshold_bps is {amendment}; it must be at least support_threshold_bps ({threshold}), since amending the charter needs at least the support of an ordinary proposal"
            ));
        }
        let quorum = self.quorum_bps;
        if !(QUORUM_BPS_FLOOR..=BPS_WHOLE).contains(&quorum) {
            refuse(format!(
                "quorum_bps is {quorum}; it must be between {QUORUM_BPS_FLOOR} (10%, so that a few members cannot decide while the others are away) and {BPS_WHOLE}"
            ));
        }
        for (field, value) in [
            ("voting_seconds_min", self.voting_seconds_min),
            ("voting_seconds_default", self.voting_seconds_default),
            ("voting_seconds_max", self.voting_seconds_max),
        ] {
            if !(VOTING_SECONDS_FLOOR..=VOTING_SECONDS_CEILING).contains(&value) {
                refuse(format!(
                    "{field} is {value}; it must be between {VOTING_SECONDS_FLOOR} (1 hour) and {VOTING_SECONDS_CEILING} (1 year) seconds"
                ));
            }
        }
        if self.voting_seconds_min > self.voting_seconds_default {
            refuse(format!(
                "voting_seconds_min ({}) is above voting_seconds_default ({}); the default must lie between min and max",
                self.voting_seconds_min, self.voting_seconds_default
            ));
        }
        if self.voting_seconds_default > self.voting_seconds_max {
            refuse(format!(
                "voting_seconds_default ({}) is above voting_seconds_max ({}); the default must lie between min and max",
                self.voting_seconds_default, self.voting_seconds_max
            ));
        }
        for (field, value) in [
            ("quorum_extension_seconds", self.quorum_extension_seconds),
            ("execution_delay_seconds", self.execution_delay_seconds),
        ] {
            if !(0..=VOTING_SECONDS_CEILING).contains(&value) {
                refuse(format!(
                    "{field} is {value}; it must be between 0 and {VOTING_SECONDS_CEILING} (1 year) seconds"
                ));
            }
        }
        let pooled = &self.pooled;
        if pooled.min_contributors < POOLED_MIN_CONTRIBUTORS_FLOOR {
            refuse(format!(
                "pooled.min_contributors is {}; it must be at least {POOLED_MIN_CONTRIBUTORS_FLOOR}, or a contributor could subtract its own data and read another's",
                pooled.min_contributors
            ));
        }
        let share = pooled.contributor_share_bps_max;
        if share == 0 || share > POOLED_CONTRIBUTOR_SHARE_BPS_CEILING {
            refuse(format!(
                "pooled.contributor_share_bps_max is {share}; it must be between 1 and {POOLED_CONTRIBUTOR_SHARE_BPS_CEILING} basis points (no contributor may dominate a statistic)"
            ));
        }
        if pooled.min_age_days > POOLED_MIN_AGE_DAYS_CEILING {
            refuse(format!(
                "pooled.min_age_days is {}; it must be at most {POOLED_MIN_AGE_DAYS_CEILING} days (10 years)",
                pooled.min_age_days
            ));
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid("charter", problems.join("; ")))
        }
    }

    /// The rules for tallying one proposal: the amendment threshold if it amends the charter.
    pub fn rules_for(&self, amends_charter: bool) -> TallyRules {
        TallyRules {
            support_threshold_bps: if amends_charter {
                self.amendment_support_threshold_bps
            } else {
                self.support_threshold_bps
            },
            quorum_bps: self.quorum_bps,
            block_allowed: self.block_allowed,
            delegation: self.delegation,
            votes_changeable: self.votes_changeable,
        }
    }

    /// The fields that differ from `other`, as `field: this -> other`, in declaration order.
    pub fn changes(&self, other: &Charter) -> Vec<String> {
        let mut changes = Vec::new();
        let mut compare = |field: &str, before: String, after: String| {
            if before != after {
                changes.push(format!("{field}: {before} -> {after}"));
            }
        };
        macro_rules! field {
            ($($path:ident).+) => {
                compare(
                    stringify!($($path).+),
                    format!("{:?}", self.$($path).+),
                    format!("{:?}", other.$($path).+),
                )
            };
        }
        field!(support_threshold_bps);
        field!(quorum_bps);
        field!(voting_seconds_min);
        field!(voting_seconds_max);
        field!(voting_seconds_default);
        field!(early_close);
        field!(quorum_extension_seconds);
        field!(execution_delay_seconds);
        field!(vote_weight);
        field!(delegation);
        field!(block_allowed);
        field!(amendment_support_threshold_bps);
        field!(votes_changeable);
        field!(pooled.min_contributors);
        field!(pooled.contributor_share_bps_max);
        field!(pooled.min_age_days);
        changes
    }
}

impl TallyRules {
    /// Support: yes * 10_000 > threshold * (yes + no), strictly; false when no one voted yes or no.
    pub fn support_reached(&self, yes: u64, no: u64) -> bool {
        let decided = u128::from(yes) + u128::from(no);
        decided > 0
            && u128::from(yes) * u128::from(BPS_WHOLE)
                > u128::from(self.support_threshold_bps) * decided
    }

    /// Quorum: participation * 10_000 >= quorum * total power, so a fractional count rounds up
    /// (15% of 10 members needs 2).
    pub fn quorum_reached(&self, participation: u64, total_power: u64) -> bool {
        u128::from(participation) * u128::from(BPS_WHOLE)
            >= u128::from(self.quorum_bps) * u128::from(total_power)
    }
}
