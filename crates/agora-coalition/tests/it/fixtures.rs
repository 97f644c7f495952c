//! Readable ids and instants for the cases.

use agora_coalition::{Ballot, Choice, Delegation, Electorate};
use agora_domain::{GoalId, OrgId, PledgeId, Timestamp};

/// Member number `n`; ids sort by `n`.
pub fn org(n: u32) -> OrgId {
    format!("org_{n:032x}")
        .parse()
        .expect("a well-formed org id")
}

pub fn goal(n: u32) -> GoalId {
    format!("gol_{n:032x}")
        .parse()
        .expect("a well-formed goal id")
}

pub fn pledge_id(n: u32) -> PledgeId {
    format!("plg_{n:032x}")
        .parse()
        .expect("a well-formed pledge id")
}

/// `seconds` after the epoch.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_micros(0).plus_seconds(seconds)
}

/// Members 1..=n with weight 1.
pub fn members(n: u32) -> Electorate {
    Electorate::one_per_member((1..=n).map(org))
}

pub fn ballot(voter: u32, choice: Choice, seconds: i64) -> Ballot {
    Ballot {
        voter: org(voter),
        choice,
        at: at(seconds),
    }
}

pub fn delegate(from: u32, to: u32, topic: Option<&str>) -> Delegation {
    Delegation {
        from: org(from),
        to: org(to),
        topic: topic.map(str::to_owned),
    }
}
