//! Partner-to-partner clearing: obligations accumulate as net positions in a settlement window; closing it produces a report whose positions sum to zero per currency.
//!
//! An obligation "A owes B" moves settlement position (A) → settlement position (B): A's
//! position (a credit-normal account without limit) goes down, B's goes up, so the positions of a
//! currency always sum to zero. An obligation that would take the debtor's position below minus
//! its net debit cap is refused. Closing a window moves every non-zero position against the
//! settlement house (a positive position: position → house; a negative one: house → position), so
//! every position and the house end at zero; the report lists the positions as they were.
//!
//! One window is open at a time (the application opens the next when it closes one): positions
//! are one account per partner and currency, shared by all windows.
//!
//! Points redeemed at partner B from lots funded by partner A (or by the operator) become
//! obligations of the funder to B at a rate the application passes in
//! ([`obligations_for_redemption`]).

use std::collections::BTreeMap;

use agora_domain::ledger::Currency;
use agora_domain::{Error, ObligationId, OrgId, Result, Timestamp, WindowId};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountPurpose, TransferCode};
use crate::plan::{Leg, Plan, StepKey, add, sub};
use crate::points::{Funder, Redemption};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowStatus {
    Open,
    Closed,
}

/// A partner's net position in one currency: positive when it is owed, negative when it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub partner: OrgId,
    pub currency: Currency,
    pub net: i64,
}

/// A settlement window and its positions so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub id: WindowId,
    pub status: WindowStatus,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// Sorted by partner, then currency; a partner appears once it has an obligation.
    pub positions: Vec<Position>,
    pub obligations: usize,
}

impl Window {
    pub fn open(id: WindowId, now: Timestamp) -> Self {
        Self {
            id,
            status: WindowStatus::Open,
            opened_at: now,
            closed_at: None,
            positions: Vec::new(),
            obligations: 0,
        }
    }

    /// A partner's net position in `currency`; 0 if it has none.
    pub fn position(&self, partner: OrgId, currency: Currency) -> i64 {
        self.positions
            .iter()
            .find(|position| position.partner == partner && position.currency == currency)
            .map_or(0, |position| position.net)
    }

    fn adjust(&mut self, partner: OrgId, currency: Currency, delta: i64) -> Result<()> {
        match self
            .positions
            .iter_mut()
            .find(|position| position.partner == partner && position.currency == currency)
        {
            Some(position) => position.net = add(position.net, delta, "amount")?,
            None => {
                self.positions.push(Position {
                    partner,
                    currency,
                    net: delta,
                });
                self.positions.sort_by_key(|position| {
                    (position.partner, position.currency.code().to_owned())
                });
            }
        }
        Ok(())
    }
}

/// One partner owes another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    pub id: ObligationId,
    pub debtor: OrgId,
    pub creditor: OrgId,
    pub currency: Currency,
    pub amount: i64,
    /// What it is for (`points/redeem/pay_…`, an invoice number).
    pub reference: String,
}

/// Records an obligation in the open window: position (debtor) → position (creditor).
///
/// `debtor_cap` is the debtor's net debit cap in minor units: its position may not go below `-debtor_cap`.
pub fn record(
    window: &Window,
    obligation: &Obligation,
    debtor_cap: i64,
    now: Timestamp,
) -> Result<(Window, Plan)> {
    if window.status != WindowStatus::Open {
        return Err(Error::Conflict(format!(
            "settlement window {} is closed; record the obligation in the open window",
            window.id
        )));
    }
    if obligation.debtor == obligation.creditor {
        return Err(Error::invalid(
            "creditor",
            "a partner cannot owe itself; drop the obligation",
        ));
    }
    if obligation.amount < 1 {
        return Err(Error::invalid(
            "amount",
            "an obligation is at least 1 minor unit",
        ));
    }
    if obligation.reference.trim().is_empty() {
        return Err(Error::invalid(
            "reference",
            "say what the obligation is for (an invoice, a redemption)",
        ));
    }
    let current = window.position(obligation.debtor, obligation.currency);
    let after = sub(current, obligation.amount, "amount")?;
    if after < -debtor_cap.max(0) {
        return Err(Error::limit(
            "net_debit_cap",
            format!(
                "partner {} would owe {} net in window {}, beyond its cap of {}; \
                 settle first (close the window) or raise the cap",
                obligation.debtor,
                obligation.currency.format(-after),
                window.id,
                obligation.currency.format(debtor_cap.max(0))
            ),
        ));
    }
    let mut next = window.clone();
    next.adjust(obligation.debtor, obligation.currency, -obligation.amount)?;
    next.adjust(obligation.creditor, obligation.currency, obligation.amount)?;
    next.obligations += 1;
    let plan = Plan::build(
        StepKey::new(&[&"obligation", &obligation.id]),
        &[Leg::new(
            AccountPurpose::SettlementPosition {
                partner: obligation.debtor,
            },
            AccountPurpose::SettlementPosition {
                partner: obligation.creditor,
            },
            obligation.currency,
            obligation.amount,
            TransferCode::Obligation,
        )],
        now,
    )?;
    Ok((next, plan))
}

/// What closing a window settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementReport {
    pub window: WindowId,
    pub opened_at: Timestamp,
    pub closed_at: Timestamp,
    pub obligations: usize,
    /// Every non-zero position, sorted by partner then currency.
    pub positions: Vec<Position>,
    /// Σ positions per currency; always 0.
    pub totals: BTreeMap<String, i64>,
}

/// Closes an open window: every position against the settlement house, so that all end at zero.
pub fn close(window: &Window, now: Timestamp) -> Result<(Window, SettlementReport, Plan)> {
    if window.status != WindowStatus::Open {
        return Err(Error::Conflict(format!(
            "settlement window {} is already closed; open a new one",
            window.id
        )));
    }
    let positions: Vec<Position> = window
        .positions
        .iter()
        .filter(|position| position.net != 0)
        .copied()
        .collect();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for position in &positions {
        let total = totals
            .entry(position.currency.code().to_owned())
            .or_default();
        *total = add(*total, position.net, "amount")?;
    }
    if let Some((currency, total)) = totals.iter().find(|(_, total)| **total != 0) {
        return Err(Error::Internal(format!(
            "window {} positions in {currency} sum to {total}, not 0",
            window.id
        )));
    }
    let mut legs = Vec::with_capacity(positions.len());
    for position in &positions {
        let account = AccountPurpose::SettlementPosition {
            partner: position.partner,
        };
        let (debit, credit) = if position.net > 0 {
            (account, AccountPurpose::SettlementHouse)
        } else {
            (AccountPurpose::SettlementHouse, account)
        };
        let amount = position.net.checked_abs().ok_or_else(|| {
            Error::invalid("amount", "a position overflows; close windows sooner")
        })?;
        legs.push(Leg::new(
            debit,
            credit,
            position.currency,
            amount,
            TransferCode::WindowClose,
        ));
    }
    let plan = Plan::build(StepKey::new(&[&"window", &window.id, &"close"]), &legs, now)?;
    let mut next = window.clone();
    next.status = WindowStatus::Closed;
    next.closed_at = Some(now);
    for position in &mut next.positions {
        position.net = 0;
    }
    let report = SettlementReport {
        window: window.id,
        opened_at: window.opened_at,
        closed_at: now,
        obligations: window.obligations,
        positions,
        totals,
    };
    Ok((next, report, plan))
}

/// What a redemption's funders owe the partner where the points were spent: an obligation per
/// funder and currency, `points × minor_per_point` minor units. Points the partner funded itself
/// owe nothing; points the operator funded are owed by `operator`.
pub fn obligations_for_redemption(
    redemption: &Redemption,
    operator: OrgId,
    minor_per_point: i64,
) -> Result<Vec<(OrgId, i64)>> {
    if minor_per_point < 0 {
        return Err(Error::invalid(
            "minor_per_point",
            "a points rate is 0 or more minor units per point",
        ));
    }
    let mut owed: BTreeMap<OrgId, i64> = BTreeMap::new();
    for allocation in &redemption.allocations {
        let debtor = match allocation.funder {
            Funder::Operator => operator,
            Funder::Partner(partner) => partner,
        };
        if debtor == redemption.partner {
            continue;
        }
        let amount = allocation
            .points
            .checked_mul(minor_per_point)
            .ok_or_else(|| {
                Error::invalid("minor_per_point", "points × rate overflows; lower the rate")
            })?;
        let total = owed.entry(debtor).or_default();
        *total = add(*total, amount, "amount")?;
    }
    Ok(owed.into_iter().filter(|(_, amount)| *amount > 0).collect())
}
