//! Points: the operator's accrual rules and redemption rate, grants for actions, accrual for purchases, redemption at a partner, balances, and expiry into breakage.
//!
//! `agora_market::points` decides every step; this module authorizes it, loads the lots it
//! needs and carries it out (decision 0005). Documents:
//!
//! - `points_rule` (id `ptr_…`): an accrual rule, its body `agora_market::points::PointsRule`.
//! - `points_settings` (id `current`): the redemption rate, [`PointsSettings`].
//! - `points_lot` (id `lot_…`, owner the customer, sort key its `expires_at` in microseconds until
//!   it is expired, status `active` or `expired`): a lot, its body `agora_market::points::Lot`.
//! - `points_grant` (id the lot's), `points_redemption` (id `pay_…`): the answer each request
//!   gave, which a retry with the same reference gets again.
//!
//! Invariant: the customer points account (code 11) of a customer holds the sum of the
//! remainders of their lots that are not marked expired; expiring moves a remainder to breakage
//! (code 12) and marks the lot in the same step.

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::Currency;
use agora_domain::{Error, LotId, OrgId, PaymentId, PointsRuleId, Result, Timestamp, UserId};
use agora_market::Plan;
use agora_market::points::{self as rules, Earning, Funder, Lot, PointsRule};
use agora_market::settlement::{self as clearing, Obligation};
use agora_store::DocumentWrite;
use serde::{Deserialize, Serialize};

use super::replay::{derived_uuid, reference_of, reused};
use super::settlement::{ObligationView, OpenWindow};
use super::{Doc, Step, StepEvent};
use crate::{App, Begun, Call, Done, event};

const RULE: &str = "points_rule";
const SETTINGS: &str = "points_settings";
const SETTINGS_ID: &str = "current";
const LOT: &str = "points_lot";
const GRANT: &str = "points_grant";
const REDEMPTION: &str = "points_redemption";

/// The most accrual rules the operator may keep.
pub const POINTS_RULES_MAX: usize = 200;
/// The most lots one expiry step moves to breakage; a run takes as many steps as it needs.
pub const EXPIRY_LOTS_PER_STEP_MAX: u32 = 500;
/// Lots read per page when loading a customer's lots.
const LOTS_PAGE: u32 = 500;

/// How a rule earns points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PointsEarning {
    /// `points_per_major_unit` for each major unit (euro, not cent) of a purchase.
    PerAmountSpent,
    /// `points` each time a funder grants them for `action`.
    PerAction,
}

/// A points rule to set: a new one, or a replacement of the rule `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPointsRule {
    /// The rule to replace; a new rule when absent.
    pub id: Option<PointsRuleId>,
    pub earning: PointsEarning,
    /// For `per_amount_spent`: points per major unit spent.
    pub points_per_major_unit: Option<i64>,
    /// For `per_action`: the action (`idea_shipped`, `review_written`, …).
    pub action: Option<String>,
    /// For `per_action`: the points each grant gives.
    pub points: Option<i64>,
    /// The partner that pays for the points; the operator when absent.
    pub funder: Option<OrgId>,
    /// Days from accrual to expiry, 1 to 3650.
    pub expiry_days: u32,
}

/// A points rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsRuleView {
    pub id: PointsRuleId,
    pub earning: PointsEarning,
    pub points_per_major_unit: Option<i64>,
    pub action: Option<String>,
    pub points: Option<i64>,
    /// The partner that pays for the points; absent: the operator.
    pub funder: Option<OrgId>,
    pub expiry_days: u32,
}

impl PointsRuleView {
    fn new(rule: &PointsRule) -> Self {
        let (earning, points_per_major_unit, action, points) = match &rule.earning {
            Earning::PerAmountSpent {
                points_per_major_unit,
            } => (
                PointsEarning::PerAmountSpent,
                Some(*points_per_major_unit),
                None,
                None,
            ),
            Earning::PerAction { action, points } => (
                PointsEarning::PerAction,
                None,
                Some(action.clone()),
                Some(*points),
            ),
        };
        Self {
            id: rule.id,
            earning,
            points_per_major_unit,
            action,
            points,
            funder: funder_org(rule.funder),
            expiry_days: rule.expiry_days,
        }
    }
}

/// The rate at which a redemption's funders owe the partner where the points were spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PointsSettings {
    /// The currency obligations from redemptions are recorded in.
    pub currency: Currency,
    /// What one point is worth, in minor units of `currency` (0 or more).
    pub minor_per_point: i64,
}

/// A lot of points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LotView {
    pub id: LotId,
    pub customer: UserId,
    /// The partner that pays for the points; absent: the operator.
    pub funder: Option<OrgId>,
    pub rule: PointsRuleId,
    pub points: i64,
    pub remaining: i64,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    /// When its remainder went to breakage.
    pub expired_at: Option<Timestamp>,
}

impl From<&Lot> for LotView {
    fn from(lot: &Lot) -> Self {
        Self {
            id: lot.id,
            customer: lot.customer,
            funder: funder_org(lot.funder),
            rule: lot.rule,
            points: lot.points,
            remaining: lot.remaining,
            granted_at: lot.granted_at,
            expires_at: lot.expires_at,
            expired_at: lot.expired_at,
        }
    }
}

/// Points a funder grants a customer for an action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantPoints {
    pub customer: UserId,
    /// The action a `per_action` rule of this funder earns points for.
    pub action: String,
    /// What the grant is for (the idea that shipped); a retry with the same reference grants
    /// nothing twice. Default: the `Idempotency-Key`.
    pub reference: Option<String>,
}

/// A grant as made: the lot it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsGrant {
    pub funder: OrgId,
    pub action: String,
    pub reference: String,
    /// The lot as granted.
    pub lot: LotView,
}

/// Points a customer spends at a partner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemPoints {
    pub points: i64,
    /// The partner where the points are spent.
    pub at_partner: OrgId,
    /// What the redemption pays for (a receipt, an order); a retry with the same reference
    /// redeems nothing twice. Default: the `Idempotency-Key`.
    pub reference: Option<String>,
}

/// Points taken from one lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocationView {
    pub lot: LotId,
    /// The partner that funded the lot; absent: the operator.
    pub funder: Option<OrgId>,
    pub points: i64,
}

/// A redemption as made: the lots it spent, soonest-expiring first, and what their funders now owe the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsRedemption {
    pub id: PaymentId,
    pub customer: UserId,
    pub partner: OrgId,
    pub points: i64,
    pub reference: String,
    pub allocations: Vec<AllocationView>,
    /// One per funder other than the partner, at the operator's rate.
    pub obligations: Vec<ObligationView>,
    pub redeemed_at: Timestamp,
}

/// A customer's points.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsBalance {
    pub customer: UserId,
    /// What the ledger owes the customer: the remainders of every lot not yet expired into
    /// breakage. Equals the customer points account's balance.
    pub liability: i64,
    /// What the customer can spend now: the remainders of lots whose expiry is still ahead.
    pub spendable: i64,
    /// When the next points expire.
    pub soonest_expiry: Option<Timestamp>,
    /// The lots with points left, soonest-expiring first.
    pub lots: Vec<LotView>,
}

/// What an expiry run moved to breakage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointsExpiry {
    pub lots_expired: u64,
    pub points_expired: i64,
}

fn funder_org(funder: Funder) -> Option<OrgId> {
    match funder {
        Funder::Operator => None,
        Funder::Partner(partner) => Some(partner),
    }
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, id: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("stored {kind} {id}: {e}")))
}

/// The document of a lot: owned by its customer, found by expiry until it is expired.
fn lot_doc(lot: &Lot) -> Result<Doc> {
    let doc = Doc::new(LOT, lot.id, lot)?.owner(lot.customer);
    Ok(match lot.expired_at {
        None => doc.status("active").sort_key(lot.expires_at.as_micros()),
        Some(_) => doc.status("expired"),
    })
}

impl App {
    /// The operator's organisation, which owes for the points it funds.
    pub(crate) async fn operator_org_id(&self) -> Result<OrgId> {
        self.store()
            .operator_org()
            .await?
            .map(|org| org.id)
            .ok_or_else(|| {
                Error::Unavailable("the instance has no operator yet; bootstrap it first".into())
            })
    }

    /// Whether `org` is the operator, which funds points as `Funder::Operator`.
    async fn funder_of(&self, org: OrgId) -> Result<Funder> {
        if org == self.operator_org_id().await? {
            return Ok(Funder::Operator);
        }
        match self.store().org(org).await? {
            Some(_) => Ok(Funder::Partner(org)),
            None => Err(Error::not_found(format!("organisation {org}"))),
        }
    }

    async fn all_points_rules(&self) -> Result<Vec<PointsRule>> {
        let limit = u32::try_from(POINTS_RULES_MAX + 1).expect("a small constant");
        self.store()
            .documents(RULE, None, None, limit)
            .await?
            .iter()
            .map(|doc| parse(RULE, &doc.id, &doc.body))
            .collect()
    }

    /// Sets an accrual rule (operators). A `per_action` rule is the only one of its funder for
    /// its action, so that a grant names exactly one rule.
    pub async fn set_points_rule(
        &self,
        call: &Call<'_>,
        input: NewPointsRule,
    ) -> Result<PointsRuleView> {
        let action = Action::MarketOperate;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let earning = match input.earning {
                PointsEarning::PerAmountSpent => Earning::PerAmountSpent {
                    points_per_major_unit: input.points_per_major_unit.ok_or_else(|| {
                        Error::invalid(
                            "points_per_major_unit",
                            "a per_amount_spent rule says how many points a major unit earns",
                        )
                    })?,
                },
                PointsEarning::PerAction => Earning::PerAction {
                    action: input
                        .action
                        .clone()
                        .ok_or_else(|| {
                            Error::invalid("action", "a per_action rule names its action")
                        })?
                        .trim()
                        .to_owned(),
                    points: input.points.ok_or_else(|| {
                        Error::invalid("points", "a per_action rule says how many points it gives")
                    })?,
                },
            };
            let funder = match input.funder {
                None => Funder::Operator,
                Some(org) => self.funder_of(org).await?,
            };
            let rule = PointsRule {
                id: input.id.unwrap_or_default(),
                earning,
                funder,
                expiry_days: input.expiry_days,
            };
            rule.validate()?;
            let _market = self.market_lock().await?;
            let (mut tx, idempotency) = match self.begin(call, action, &input).await? {
                Begun::Replay(view) => return Ok(view),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let rules = self.all_points_rules().await?;
            let replacing = rules.iter().any(|known| known.id == rule.id);
            if !replacing && rules.len() >= POINTS_RULES_MAX {
                return Err(Error::limit(
                    "points_rules_max",
                    format!("the operator keeps at most {POINTS_RULES_MAX} points rules; replace one by its id"),
                ));
            }
            if let Earning::PerAction { action: name, .. } = &rule.earning
                && let Some(other) = rules.iter().find(|known| {
                    known.id != rule.id
                        && known.funder == rule.funder
                        && matches!(&known.earning, Earning::PerAction { action, .. } if action == name)
                })
            {
                return Err(Error::Conflict(format!(
                    "rule {} already earns points for `{name}` from this funder; replace it by setting its id",
                    other.id
                )));
            }
            let body = serde_json::to_string(&rule)
                .map_err(|e| Error::Internal(format!("points rule: {e}")))?;
            let id = rule.id.to_string();
            tx.put_document(
                &DocumentWrite {
                    kind: RULE,
                    id: &id,
                    owner: None,
                    status: None,
                    sort_key: None,
                    body: &body,
                },
                Timestamp::now(),
            )
            .await?;
            let view = PointsRuleView::new(&rule);
            let data = serde_json::to_value(&view)
                .map_err(|e| Error::Internal(format!("points rule: {e}")))?;
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("points.rule_set", rule.id, None, data)],
            };
            self.commit(tx, idempotency, call, done, &view).await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// The accrual rules. Points terms are public, like listings: anyone signed in reads them.
    pub async fn points_rules(&self, call: &Call<'_>) -> Result<Vec<PointsRuleView>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        Ok(self
            .all_points_rules()
            .await?
            .iter()
            .map(PointsRuleView::new)
            .collect())
    }

    /// Sets the redemption rate (operators).
    pub async fn set_points_settings(
        &self,
        call: &Call<'_>,
        settings: PointsSettings,
    ) -> Result<PointsSettings> {
        let action = Action::MarketOperate;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            if settings.minor_per_point < 0 {
                return Err(Error::invalid(
                    "minor_per_point",
                    "a point is worth 0 or more minor units",
                ));
            }
            if settings.currency == agora_market::points_currency() {
                return Err(Error::invalid(
                    "currency",
                    "obligations are money: name a currency such as EUR, not PTS",
                ));
            }
            let _market = self.market_lock().await?;
            let (mut tx, idempotency) = match self.begin(call, action, &settings).await? {
                Begun::Replay(settings) => return Ok(settings),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let body = serde_json::to_string(&settings)
                .map_err(|e| Error::Internal(format!("points settings: {e}")))?;
            tx.put_document(
                &DocumentWrite {
                    kind: SETTINGS,
                    id: SETTINGS_ID,
                    owner: None,
                    status: None,
                    sort_key: None,
                    body: &body,
                },
                Timestamp::now(),
            )
            .await?;
            let data = serde_json::to_value(settings)
                .map_err(|e| Error::Internal(format!("points settings: {e}")))?;
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("points.settings_set", "points", None, data)],
            };
            self.commit(tx, idempotency, call, done, &settings).await?;
            Ok(settings)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    async fn stored_points_settings(&self) -> Result<Option<PointsSettings>> {
        self.store()
            .document(SETTINGS, SETTINGS_ID)
            .await?
            .map(|doc| parse(SETTINGS, SETTINGS_ID, &doc.body))
            .transpose()
    }

    /// The redemption rate; anyone signed in reads it, as the rules.
    pub async fn points_settings(&self, call: &Call<'_>) -> Result<Option<PointsSettings>> {
        self.authorize(
            call,
            Action::ListingRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        self.stored_points_settings().await
    }

    /// Every lot of a customer, expired ones included.
    async fn customer_lots(&self, customer: UserId) -> Result<Vec<Lot>> {
        let owner = customer.to_string();
        let mut lots = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store()
                .documents(LOT, Some(&owner), after.as_deref(), LOTS_PAGE)
                .await?;
            for doc in &page {
                lots.push(parse::<Lot>(LOT, &doc.id, &doc.body)?);
            }
            if page.len() < LOTS_PAGE as usize {
                return Ok(lots);
            }
            after = page.last().map(|doc| doc.id.clone());
        }
    }

    /// Grants a customer the points the funder's `per_action` rule gives for `action`.
    /// Owners and admins of the funder (the operator's for points the operator funds).
    pub async fn grant_points(
        &self,
        call: &Call<'_>,
        funder_org: OrgId,
        input: GrantPoints,
    ) -> Result<PointsGrant> {
        let action = Action::PointsGrant;
        let resource = Resource::Organisation(funder_org);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let reference = reference_of(input.reference.as_deref(), call)?;
            let name = input.action.trim().to_owned();
            if self.store().user(input.customer).await?.is_none() {
                return Err(Error::not_found(format!("customer {}", input.customer)));
            }
            let funder = self.funder_of(funder_org).await?;
            let _market = self.market_lock().await?;
            let lot_id = LotId::from_uuid(derived_uuid(
                "points-grant",
                &[&funder_org.to_string(), &reference],
            ));
            let step_key = format!("lot/{lot_id}/accrue");
            if let Some(grant) = self
                .earlier_answer::<PointsGrant>(GRANT, &lot_id.to_string(), &step_key)
                .await?
            {
                if grant.lot.customer != input.customer || grant.action != name {
                    return Err(reused(&reference, "grant"));
                }
                return Ok(grant);
            }
            let rule = self
                .all_points_rules()
                .await?
                .into_iter()
                .find(|rule| {
                    rule.funder == funder
                        && matches!(&rule.earning, Earning::PerAction { action, .. } if *action == name)
                })
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "a points rule for `{name}` funded by {funder_org}; the operator sets rules with POST /api/v1/points/rules"
                    ))
                })?;
            let points = rule.points_for(0, 0, Some(&name));
            let (lot, plan) = rules::accrue(&rule, lot_id, input.customer, points, Timestamp::now())?;
            let grant = PointsGrant {
                funder: funder_org,
                action: name,
                reference,
                lot: LotView::from(&lot),
            };
            self.carry_out_accrual(call, &lot, plan, &resource, Some((GRANT, &grant)))
                .await?;
            Ok(grant)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Carries out an accrual: the lot, the answer to keep for retries, the event.
    async fn carry_out_accrual<T: Serialize>(
        &self,
        call: &Call<'_>,
        lot: &Lot,
        plan: Plan,
        resource: &Resource,
        answer: Option<(&str, &T)>,
    ) -> Result<()> {
        let detail = serde_json::json!({
            "lot": lot.id, "customer": lot.customer, "points": lot.points,
            "funder": funder_org(lot.funder), "rule": lot.rule, "expires_at": lot.expires_at,
        });
        let mut step = Step::new(
            "points.accrue",
            lot.customer,
            plan,
            Action::PointsGrant,
            resource,
            detail.clone(),
        )
        .doc(lot_doc(lot)?)
        .event(StepEvent::new(
            "points.accrued",
            lot.customer,
            funder_org(lot.funder),
            detail,
        ));
        if let Some((kind, answer)) = answer {
            step = step.doc(Doc::new(kind, lot.id, answer)?.owner(lot.customer));
        }
        self.carry_out(call, step).await
    }

    /// Accrues the points every `per_amount_spent` rule earns for a purchase of `amount` minor
    /// units of `currency`: one lot per rule that earns at least one point, funded by the rule's
    /// funder. Returns the lots (made now or by an earlier call).
    ///
    /// For the orders engine, once an order's payment is captured (or its wallet payment made).
    /// The caller has authorized its own step and **holds the marketplace lock** (`market_lock`);
    /// this function takes neither. `reference` names the purchase (the order id): the lots'
    /// ids are derived from it and from each rule, so calling again for the same purchase (a
    /// retried capture, a duplicate notification) accrues nothing twice. Each lot is a step of
    /// its own (`lot/{lot}/accrue`), audited as `points.grant` on the customer.
    pub(crate) async fn accrue_for_purchase(
        &self,
        call: &Call<'_>,
        customer: UserId,
        reference: &str,
        amount: i64,
        currency: Currency,
    ) -> Result<Vec<LotView>> {
        let resource = Resource::Customer(customer);
        let mut lots = Vec::new();
        for rule in self.all_points_rules().await? {
            let points = rule.points_for(amount, currency.exponent(), None);
            if points < 1 {
                continue;
            }
            let lot_id = LotId::from_uuid(derived_uuid(
                "points-purchase",
                &[reference, &rule.id.to_string()],
            ));
            let step_key = format!("lot/{lot_id}/accrue");
            if let Some(lot) = self
                .earlier_answer::<Lot>(LOT, &lot_id.to_string(), &step_key)
                .await?
            {
                lots.push(LotView::from(&lot));
                continue;
            }
            let (lot, plan) = rules::accrue(&rule, lot_id, customer, points, Timestamp::now())?;
            self.carry_out_accrual::<()>(call, &lot, plan, &resource, None)
                .await?;
            lots.push(LotView::from(&lot));
        }
        Ok(lots)
    }

    /// A customer's points: the liability, what is spendable now, and the lots with points left.
    pub async fn points_balance(&self, call: &Call<'_>, customer: UserId) -> Result<PointsBalance> {
        self.authorize(
            call,
            Action::PointsRead,
            &Resource::Customer(customer),
            &Context::default(),
        )
        .await?;
        let now = Timestamp::now();
        let mut lots: Vec<Lot> = self
            .customer_lots(customer)
            .await?
            .into_iter()
            .filter(|lot| lot.expired_at.is_none() && lot.remaining > 0)
            .collect();
        lots.sort_by_key(|lot| (lot.expires_at, lot.id));
        let liability = rules::liability(&lots);
        let spendable = lots
            .iter()
            .filter(|lot| lot.expires_at > now)
            .map(|lot| lot.remaining)
            .sum();
        Ok(PointsBalance {
            customer,
            liability,
            spendable,
            soonest_expiry: lots.first().map(|lot| lot.expires_at),
            lots: lots.iter().map(LotView::from).collect(),
        })
    }

    /// Spends a customer's points at a partner, soonest-expiring lots first. The funders of the
    /// lots spent (other than the partner) owe the partner at the operator's rate: those
    /// obligations are recorded in the open settlement window in the same ledger chain, so a
    /// funder beyond its net debit cap refuses the whole redemption.
    pub async fn redeem_points(
        &self,
        call: &Call<'_>,
        customer: UserId,
        input: RedeemPoints,
    ) -> Result<PointsRedemption> {
        let action = Action::PointsRedeem;
        let resource = Resource::Customer(customer);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let reference = reference_of(input.reference.as_deref(), call)?;
            let partner = input.at_partner;
            if self.store().org(partner).await?.is_none() {
                return Err(Error::not_found(format!("organisation {partner}")));
            }
            let operator = self.operator_org_id().await?;
            let _market = self.market_lock().await?;
            let payment_id = PaymentId::from_uuid(derived_uuid(
                "points-redeem",
                &[&customer.to_string(), &partner.to_string(), &reference],
            ));
            let step_key = format!("points/redeem/{payment_id}");
            if let Some(redemption) = self
                .earlier_answer::<PointsRedemption>(REDEMPTION, &payment_id.to_string(), &step_key)
                .await?
            {
                if redemption.points != input.points {
                    return Err(reused(&reference, "redemption"));
                }
                return Ok(redemption);
            }
            let now = Timestamp::now();
            let lots = self.customer_lots(customer).await?;
            let (changed, redemption, plan) =
                rules::redeem(&lots, customer, input.points, partner, payment_id, now)?;
            let mut obligations = Vec::new();
            let mut plans = vec![plan];
            let mut window: Option<OpenWindow> = None;
            let owed_funders = redemption
                .allocations
                .iter()
                .any(|allocation| funder_org(allocation.funder).unwrap_or(operator) != partner);
            if owed_funders {
                let settings = self.stored_points_settings().await?.ok_or_else(|| {
                    Error::Conflict(
                        "these points were funded by another organisation, and the operator has not set the points rate \
                         (PUT /api/v1/points/settings); nothing was redeemed"
                            .into(),
                    )
                })?;
                let owed = clearing::obligations_for_redemption(
                    &redemption,
                    operator,
                    settings.minor_per_point,
                )?;
                let mut open = self.open_window(now).await?;
                for (debtor, amount) in owed {
                    let obligation = Obligation {
                        id: agora_domain::ObligationId::from_uuid(derived_uuid(
                            "points-redeem-obligation",
                            &[&payment_id.to_string(), &debtor.to_string()],
                        )),
                        debtor,
                        creditor: partner,
                        currency: settings.currency,
                        amount,
                        reference: format!("points/redeem/{payment_id}"),
                    };
                    let cap = self.net_debit_cap_of(debtor, settings.currency).await?;
                    let (next, plan) = clearing::record(&open.window, &obligation, cap, now)?;
                    open.window = next;
                    obligations.push(ObligationView::new(&obligation, open.window.id, now));
                    plans.push(plan);
                }
                window = Some(open);
            }
            let answer = PointsRedemption {
                id: payment_id,
                customer,
                partner,
                points: redemption.points,
                reference,
                allocations: redemption
                    .allocations
                    .iter()
                    .map(|allocation| AllocationView {
                        lot: allocation.lot,
                        funder: funder_org(allocation.funder),
                        points: allocation.points,
                    })
                    .collect(),
                obligations,
                redeemed_at: now,
            };
            let detail = serde_json::json!({
                "payment": payment_id, "partner": partner, "points": answer.points,
                "lots": answer.allocations.len(), "obligations": answer.obligations.len(),
            });
            let mut step = Step::new(
                "points.redeem",
                customer,
                merge_plans(plans),
                action,
                &resource,
                detail.clone(),
            )
            .doc(Doc::new(REDEMPTION, payment_id, &answer)?.owner(customer))
            .event(StepEvent::new("points.redeemed", customer, Some(partner), detail));
            for lot in &changed {
                step = step.doc(lot_doc(lot)?);
            }
            if let Some(open) = &window {
                for obligation in &answer.obligations {
                    step = step.event(obligation.event());
                    step = step.doc(obligation.doc()?);
                }
                for doc in open.docs()? {
                    step = step.doc(doc);
                }
            }
            self.carry_out(call, step).await?;
            Ok(answer)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Moves the remainders of every lot whose expiry has passed to breakage (operators).
    pub async fn expire_points(&self, call: &Call<'_>) -> Result<PointsExpiry> {
        let action = Action::MarketOperate;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = self.expire_points_authorized(call).await;
        self.audited(call, action, &resource, result).await
    }

    /// [`App::expire_points`] as the instance itself, for a periodic task of the server: it
    /// authorizes nothing (the system may), and each step it takes is audited as the system's.
    pub async fn expire_due_points(&self) -> Result<PointsExpiry> {
        let system = agora_domain::Actor::system();
        let call = Call::new(&system, agora_domain::RequestId::new());
        self.expire_points_authorized(&call).await
    }

    async fn expire_points_authorized(&self, call: &Call<'_>) -> Result<PointsExpiry> {
        let _market = self.market_lock().await?;
        let now = Timestamp::now();
        let mut expiry = PointsExpiry {
            lots_expired: 0,
            points_expired: 0,
        };
        loop {
            let due = self
                .store()
                .documents_due(LOT, now.as_micros(), EXPIRY_LOTS_PER_STEP_MAX)
                .await?;
            let lots: Vec<Lot> = due
                .iter()
                .map(|doc| parse::<Lot>(LOT, &doc.id, &doc.body))
                .collect::<Result<_>>()?;
            let (changed, plan) = rules::expire(&lots, now)?;
            if changed.is_empty() {
                return Ok(expiry);
            }
            let points: i64 = lots
                .iter()
                .filter(|lot| lot.expired_at.is_none())
                .map(|lot| lot.remaining)
                .sum();
            let detail = serde_json::json!({ "lots": changed.len(), "points": points });
            let mut step = Step::new(
                "points.expire",
                "points",
                plan,
                Action::MarketOperate,
                &Resource::Instance,
                detail,
            );
            for lot in &changed {
                let remaining = lots
                    .iter()
                    .find(|before| before.id == lot.id)
                    .map_or(0, |before| before.remaining);
                step = step.doc(lot_doc(lot)?).event(StepEvent::new(
                    "points.expired",
                    lot.customer,
                    funder_org(lot.funder),
                    serde_json::json!({ "lot": lot.id, "customer": lot.customer, "points": remaining }),
                ));
            }
            self.carry_out(call, step).await?;
            expiry.lots_expired += changed.len() as u64;
            expiry.points_expired += points;
            if due.len() < EXPIRY_LOTS_PER_STEP_MAX as usize {
                return Ok(expiry);
            }
        }
    }
}

/// One plan from several: the first's step key, every account once, every transfer in one
/// linked chain. Each transfer keeps the id its own plan derived, so the chain applies at most
/// once and whole or not at all.
fn merge_plans(plans: Vec<Plan>) -> Plan {
    let mut plans = plans.into_iter();
    let mut merged = plans.next().expect("a step has a plan");
    for plan in plans {
        for account in plan.accounts {
            if !merged.accounts.iter().any(|known| known.id == account.id) {
                merged.accounts.push(account);
            }
        }
        merged.transfers.extend(plan.transfers);
    }
    let count = merged.transfers.len();
    for (index, transfer) in merged.transfers.iter_mut().enumerate() {
        transfer.linked = index + 1 < count;
    }
    merged
}
