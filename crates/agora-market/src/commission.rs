//! Commission rules set by the operator: which rule applies to a line, how much it takes, and the terms frozen on the line at sale.
//!
//! # Arithmetic
//!
//! The commission of a line of gross `G` is `floor(G × rate_bps / 10 000) + fixed`, then raised to
//! `floor`, lowered to `cap`, and never above `G` (nor below 0). The fraction of a minor unit that
//! the floor drops stays with the seller.
//!
//! # Currency
//!
//! `fixed`, `floor` and `cap` are minor units of the rule's `currency`. A rule with a currency
//! applies only to lines in that currency; a rule without one is a pure rate (`fixed` and `floor`
//! 0, no `cap`) and applies to lines in any currency. [`CommissionRule::validate`] enforces this.
//!
//! # Resolution
//!
//! Among the valid rules that apply to a line, the most specific wins: listing, then seller and
//! category, then seller, then category, then the default. Between rules of the same scope, the
//! newest id wins (ids are UUIDv7, ordered by creation). No rule at all means no commission.

use agora_domain::ledger::Currency;
use agora_domain::{CommissionRuleId, Error, ListingId, OrgId, Result};
use serde::{Deserialize, Serialize};

/// The most a rate may be: 10 000 basis points, the whole gross.
pub const RATE_BPS_MAX: u32 = 10_000;

/// Which lines a rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum RuleScope {
    Default,
    Category { category: String },
    Seller { seller: OrgId },
    SellerCategory { seller: OrgId, category: String },
    Listing { listing: ListingId },
}

impl RuleScope {
    /// Higher is more specific.
    pub fn specificity(&self) -> u8 {
        match self {
            RuleScope::Default => 0,
            RuleScope::Category { .. } => 1,
            RuleScope::Seller { .. } => 2,
            RuleScope::SellerCategory { .. } => 3,
            RuleScope::Listing { .. } => 4,
        }
    }

    fn covers(&self, line: &LineFacts) -> bool {
        match self {
            RuleScope::Default => true,
            RuleScope::Category { category } => *category == line.category,
            RuleScope::Seller { seller } => *seller == line.seller,
            RuleScope::SellerCategory { seller, category } => {
                *seller == line.seller && *category == line.category
            }
            RuleScope::Listing { listing } => *listing == line.listing,
        }
    }
}

/// The terms of a rule: what it takes of a gross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommissionTerms {
    /// Basis points of the gross, `0..=10_000`.
    pub rate_bps: u32,
    /// Minor units added to the rate's share; `>= 0`.
    pub fixed: i64,
    /// The least the commission may be; `>= 0`.
    pub floor: i64,
    /// The most the commission may be; `>= floor` when set.
    pub cap: Option<i64>,
}

/// An operator's commission rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommissionRule {
    pub id: CommissionRuleId,
    pub scope: RuleScope,
    /// The currency of `fixed`, `floor` and `cap`, and the only one the rule applies to; `None`: a pure rate for any currency.
    pub currency: Option<Currency>,
    pub terms: CommissionTerms,
}

impl CommissionRule {
    /// Checks the rule's terms; the error names the field and says what is allowed.
    pub fn validate(&self) -> Result<()> {
        let terms = &self.terms;
        if terms.rate_bps > RATE_BPS_MAX {
            return Err(Error::invalid(
                "rate_bps",
                format!(
                    "{} basis points is more than the whole gross; use 0 to {RATE_BPS_MAX}",
                    terms.rate_bps
                ),
            ));
        }
        if terms.fixed < 0 {
            return Err(Error::invalid(
                "fixed",
                "a fixed commission cannot be negative; use 0 for none",
            ));
        }
        if terms.floor < 0 {
            return Err(Error::invalid(
                "floor",
                "a floor cannot be negative; use 0 for none",
            ));
        }
        if let Some(cap) = terms.cap
            && cap < terms.floor
        {
            return Err(Error::invalid(
                "cap",
                format!(
                    "the cap {cap} is below the floor {}; raise the cap or lower the floor",
                    terms.floor
                ),
            ));
        }
        if self.currency.is_none() && (terms.fixed != 0 || terms.floor != 0 || terms.cap.is_some())
        {
            return Err(Error::invalid(
                "currency",
                "a rule with a fixed amount, a floor or a cap needs a currency; \
                 set one, or make the rule a pure rate",
            ));
        }
        if let RuleScope::Category { category } | RuleScope::SellerCategory { category, .. } =
            &self.scope
            && category.trim().is_empty()
        {
            return Err(Error::invalid(
                "category",
                "a category scope needs a category name",
            ));
        }
        Ok(())
    }

    fn applies_to(&self, line: &LineFacts) -> bool {
        self.currency
            .is_none_or(|currency| currency == line.currency)
            && self.scope.covers(line)
    }
}

/// What resolution needs to know of a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineFacts {
    pub listing: ListingId,
    pub seller: OrgId,
    pub category: String,
    pub currency: Currency,
}

/// The rule that applies to `line`: the most specific valid one, the newest among equals; `None` if no rule covers it.
///
/// Invalid rules are skipped: the operator's tools validate on save, and a rule that slipped
/// through must not take a commission it does not describe.
pub fn resolve<'a>(rules: &'a [CommissionRule], line: &LineFacts) -> Option<&'a CommissionRule> {
    rules
        .iter()
        .filter(|rule| rule.validate().is_ok() && rule.applies_to(line))
        .max_by_key(|rule| (rule.scope.specificity(), rule.id))
}

/// The commission `terms` take of `gross` (see the module's arithmetic); `gross` below 0 takes 0.
pub fn commission(terms: &CommissionTerms, gross: i64) -> i64 {
    if gross <= 0 {
        return 0;
    }
    let rate =
        i128::from(gross) * i128::from(terms.rate_bps.min(RATE_BPS_MAX)) / i128::from(RATE_BPS_MAX);
    let mut amount = rate + i128::from(terms.fixed.max(0));
    amount = amount.max(i128::from(terms.floor.max(0)));
    if let Some(cap) = terms.cap {
        amount = amount.min(i128::from(cap.max(0)));
    }
    let amount = amount.min(i128::from(gross));
    i64::try_from(amount).expect("the amount is at most the gross, an i64")
}

/// The commission frozen on an order line at sale: the rule that applied, its terms then, and the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenCommission {
    /// `None` when no rule applied; the terms are then all zero.
    pub rule: Option<CommissionRuleId>,
    pub terms: CommissionTerms,
    pub amount: i64,
}

impl FrozenCommission {
    /// Resolves the rule for `line` and freezes its commission of `gross`.
    pub fn freeze(rules: &[CommissionRule], line: &LineFacts, gross: i64) -> Self {
        match resolve(rules, line) {
            Some(rule) => Self {
                rule: Some(rule.id),
                terms: rule.terms,
                amount: commission(&rule.terms, gross),
            },
            None => Self {
                rule: None,
                terms: CommissionTerms {
                    rate_bps: 0,
                    fixed: 0,
                    floor: 0,
                    cap: None,
                },
                amount: 0,
            },
        }
    }
}
