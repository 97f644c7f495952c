//! Partner-to-partner clearing: obligations recorded in the open settlement window, net debit caps, closing a window into its report, and reading reports.
//!
//! `agora_market::settlement` decides every step; this module authorizes it, loads the open
//! window and carries it out (decision 0005). Documents:
//!
//! - `settlement_window` (id `stw_…`, status `open` or `closed`, sort key when it opened): the
//!   window and its positions, its body `agora_market::settlement::Window`.
//! - `settlement_window_open` (id `current`): which window is open, [`OpenPointer`]; the first
//!   obligation after a close opens the next window.
//! - `settlement_obligation` (id `obl_…`, owner the debtor): an obligation as recorded, the
//!   answer a retry with the same reference gets again.
//! - `settlement_report` (id the window's): what closing the window settled.
//! - `net_debit_cap` (id `org_…/EUR`, owner the partner): a partner's cap in one currency.
//!
//! A partner without a cap in a currency has none: its position may go as low as an `i64` allows.

use std::collections::BTreeMap;

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::ledger::Currency;
use agora_domain::{Error, ObligationId, OrgId, Result, Timestamp, WindowId};
use agora_market::settlement::{self as clearing, Obligation, Position, Window, WindowStatus};
use agora_store::DocumentWrite;
use serde::{Deserialize, Serialize};

use super::replay::{derived_uuid, reused};
use super::{Doc, Step, StepEvent};
use crate::{App, Begun, Call, Done, Page, event};

const WINDOW: &str = "settlement_window";
const OPEN: &str = "settlement_window_open";
const OPEN_ID: &str = "current";
const OBLIGATION: &str = "settlement_obligation";
const REPORT: &str = "settlement_report";
const CAP: &str = "net_debit_cap";

/// Which settlement window is open, if any.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct OpenPointer {
    window: Option<WindowId>,
}

/// The open window as a step changes it.
pub(crate) struct OpenWindow {
    pub window: Window,
}

impl OpenWindow {
    /// The documents that store the window and point at it as the open one.
    pub fn docs(&self) -> Result<Vec<Doc>> {
        let pointer = OpenPointer {
            window: (self.window.status == WindowStatus::Open).then_some(self.window.id),
        };
        Ok(vec![
            window_doc(&self.window)?,
            Doc::new(OPEN, OPEN_ID, &pointer)?,
        ])
    }
}

fn window_doc(window: &Window) -> Result<Doc> {
    let status = match window.status {
        WindowStatus::Open => "open",
        WindowStatus::Closed => "closed",
    };
    Ok(Doc::new(WINDOW, window.id, window)?
        .status(status)
        .sort_key(window.opened_at.as_micros()))
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, id: &str, body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Internal(format!("stored {kind} {id}: {e}")))
}

/// An obligation a partner records: what it owes another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewObligation {
    /// The partner owed.
    pub creditor: OrgId,
    /// In minor units of `currency`, at least 1.
    pub amount: i64,
    pub currency: Currency,
    /// What it is for (an invoice number), unique per debtor: recording the same reference
    /// again answers the first obligation and records nothing twice.
    pub reference: String,
}

/// An obligation as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObligationView {
    pub id: ObligationId,
    pub window: WindowId,
    pub debtor: OrgId,
    pub creditor: OrgId,
    pub currency: Currency,
    pub amount: i64,
    pub reference: String,
    pub recorded_at: Timestamp,
}

impl ObligationView {
    pub(crate) fn new(obligation: &Obligation, window: WindowId, at: Timestamp) -> Self {
        Self {
            id: obligation.id,
            window,
            debtor: obligation.debtor,
            creditor: obligation.creditor,
            currency: obligation.currency,
            amount: obligation.amount,
            reference: obligation.reference.clone(),
            recorded_at: at,
        }
    }

    pub(crate) fn doc(&self) -> Result<Doc> {
        Ok(Doc::new(OBLIGATION, self.id, self)?.owner(self.debtor))
    }

    pub(crate) fn event(&self) -> StepEvent {
        StepEvent::new(
            "settlement.obligation_recorded",
            self.id,
            Some(self.debtor),
            serde_json::json!({
                "obligation": self.id, "window": self.window, "debtor": self.debtor,
                "creditor": self.creditor, "currency": self.currency, "amount": self.amount,
            }),
        )
    }
}

/// A partner's net debit cap in one currency: how much it may owe net within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetNetDebitCap {
    pub currency: Currency,
    /// In minor units, 0 or more; 0 means the partner may owe nothing.
    pub cap: i64,
}

/// A net debit cap as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetDebitCap {
    pub partner: OrgId,
    pub currency: Currency,
    pub cap: i64,
}

/// A partner's net position in one currency: positive when owed, negative when it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PositionView {
    pub partner: OrgId,
    pub currency: Currency,
    pub net: i64,
}

impl From<&Position> for PositionView {
    fn from(position: &Position) -> Self {
        Self {
            partner: position.partner,
            currency: position.currency,
            net: position.net,
        }
    }
}

/// Whether a window still takes obligations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SettlementWindowStatus {
    Open,
    Closed,
}

/// A window's positions: so far for the open one, as settled for a closed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementReport {
    pub window: WindowId,
    pub status: SettlementWindowStatus,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// Obligations recorded in the window.
    pub obligations: u64,
    /// Non-zero positions, by partner then currency; a partner sees only its own.
    pub positions: Vec<PositionView>,
    /// Σ of all partners' positions per currency: always 0.
    pub totals: BTreeMap<String, i64>,
}

/// A window without its positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettlementWindowSummary {
    pub id: WindowId,
    pub status: SettlementWindowStatus,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub obligations: u64,
}

fn status_of(window: &Window) -> SettlementWindowStatus {
    match window.status {
        WindowStatus::Open => SettlementWindowStatus::Open,
        WindowStatus::Closed => SettlementWindowStatus::Closed,
    }
}

/// The report of an open window, from its positions so far.
fn live_report(window: &Window) -> Result<SettlementReport> {
    let positions: Vec<PositionView> = window
        .positions
        .iter()
        .filter(|position| position.net != 0)
        .map(PositionView::from)
        .collect();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for position in &positions {
        let total = totals
            .entry(position.currency.code().to_owned())
            .or_default();
        *total = total
            .checked_add(position.net)
            .ok_or_else(|| Error::Internal(format!("window {} positions overflow", window.id)))?;
    }
    Ok(SettlementReport {
        window: window.id,
        status: status_of(window),
        opened_at: window.opened_at,
        closed_at: window.closed_at,
        obligations: window.obligations as u64,
        positions,
        totals,
    })
}

/// Who reads a report: the operator sees every position, a partner only its own.
enum Reader {
    Operator,
    Partner(OrgId),
}

impl App {
    /// The open window, or a new one opened `now` (stored by the step that first uses it).
    /// The caller holds the marketplace lock.
    pub(crate) async fn open_window(&self, now: Timestamp) -> Result<OpenWindow> {
        let pointer = match self.store().document(OPEN, OPEN_ID).await? {
            Some(doc) => parse::<OpenPointer>(OPEN, OPEN_ID, &doc.body)?,
            None => OpenPointer { window: None },
        };
        let window = match pointer.window {
            Some(id) => {
                let doc = self
                    .store()
                    .document(WINDOW, &id.to_string())
                    .await?
                    .ok_or_else(|| Error::Internal(format!("the open window {id} is missing")))?;
                parse(WINDOW, &doc.id, &doc.body)?
            }
            None => Window::open(WindowId::new(), now),
        };
        Ok(OpenWindow { window })
    }

    /// A partner's net debit cap in `currency`; `i64::MAX` (none) when the operator set none.
    pub(crate) async fn net_debit_cap_of(&self, partner: OrgId, currency: Currency) -> Result<i64> {
        let id = format!("{partner}/{}", currency.code());
        Ok(match self.store().document(CAP, &id).await? {
            Some(doc) => parse::<NetDebitCap>(CAP, &id, &doc.body)?.cap,
            None => i64::MAX,
        })
    }

    /// Records that `debtor` owes another partner, in the open window. Owners and admins of
    /// the debtor. Refused, with nothing changed, when it would take the debtor's net position
    /// beyond its net debit cap.
    pub async fn record_obligation(
        &self,
        call: &Call<'_>,
        debtor: OrgId,
        input: NewObligation,
    ) -> Result<ObligationView> {
        let action = Action::SettlementRecord;
        let resource = Resource::Organisation(debtor);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let reference = super::replay::reference_of(Some(&input.reference), call)?;
            if self.store().org(input.creditor).await?.is_none() {
                return Err(Error::not_found(format!("organisation {}", input.creditor)));
            }
            let _market = self.market_lock().await?;
            let id = ObligationId::from_uuid(derived_uuid(
                "obligation",
                &[&debtor.to_string(), &reference],
            ));
            if let Some(earlier) = self
                .earlier_answer::<ObligationView>(
                    OBLIGATION,
                    &id.to_string(),
                    &format!("obligation/{id}"),
                )
                .await?
            {
                if earlier.creditor != input.creditor
                    || earlier.amount != input.amount
                    || earlier.currency != input.currency
                {
                    return Err(reused(&reference, "obligation"));
                }
                return Ok(earlier);
            }
            let now = Timestamp::now();
            let mut open = self.open_window(now).await?;
            let obligation = Obligation {
                id,
                debtor,
                creditor: input.creditor,
                currency: input.currency,
                amount: input.amount,
                reference,
            };
            let cap = self.net_debit_cap_of(debtor, input.currency).await?;
            let (window, plan) = clearing::record(&open.window, &obligation, cap, now)?;
            open.window = window;
            let view = ObligationView::new(&obligation, open.window.id, now);
            let detail = serde_json::to_value(&view)
                .map_err(|e| Error::Internal(format!("obligation: {e}")))?;
            let mut step = Step::new("settlement.record", id, plan, action, &resource, detail)
                .doc(view.doc()?)
                .event(view.event());
            for doc in open.docs()? {
                step = step.doc(doc);
            }
            self.carry_out(call, step).await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Sets a partner's net debit cap in a currency (operators).
    pub async fn set_net_debit_cap(
        &self,
        call: &Call<'_>,
        partner: OrgId,
        input: SetNetDebitCap,
    ) -> Result<NetDebitCap> {
        let action = Action::MarketOperate;
        let resource = Resource::Organisation(partner);
        self.authorize(call, action, &Resource::Instance, &Context::default())
            .await?;
        let result = async {
            if input.cap < 0 {
                return Err(Error::invalid(
                    "cap",
                    "a net debit cap is 0 or more minor units",
                ));
            }
            if self.store().org(partner).await?.is_none() {
                return Err(Error::not_found(format!("organisation {partner}")));
            }
            let _market = self.market_lock().await?;
            let (mut tx, idempotency) = match self.begin(call, action, &(partner, input)).await? {
                Begun::Replay(cap) => return Ok(cap),
                Begun::Fresh(tx, idempotency) => (tx, idempotency),
            };
            let cap = NetDebitCap {
                partner,
                currency: input.currency,
                cap: input.cap,
            };
            let id = format!("{partner}/{}", input.currency.code());
            let body =
                serde_json::to_string(&cap).map_err(|e| Error::Internal(format!("cap: {e}")))?;
            let owner = partner.to_string();
            tx.put_document(
                &DocumentWrite {
                    kind: CAP,
                    id: &id,
                    owner: Some(&owner),
                    status: None,
                    sort_key: None,
                    body: &body,
                },
                Timestamp::now(),
            )
            .await?;
            let data =
                serde_json::to_value(cap).map_err(|e| Error::Internal(format!("cap: {e}")))?;
            let done = Done {
                action: action.as_str(),
                resource: &resource,
                detail: data.clone(),
                events: vec![event("settlement.cap_set", partner, Some(partner), data)],
            };
            self.commit(tx, idempotency, call, done, &cap).await?;
            Ok(cap)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// A partner's net debit caps, one per currency it has one in.
    pub async fn net_debit_caps(
        &self,
        call: &Call<'_>,
        partner: OrgId,
    ) -> Result<Vec<NetDebitCap>> {
        self.authorize(
            call,
            Action::SettlementRead,
            &Resource::Organisation(partner),
            &Context::default(),
        )
        .await?;
        self.store()
            .documents(CAP, Some(&partner.to_string()), None, 1_000)
            .await?
            .iter()
            .map(|doc| parse(CAP, &doc.id, &doc.body))
            .collect()
    }

    /// Closes the open window (operators): every position against the settlement house, so all
    /// end at zero, and the report of what they were. The next obligation opens a new window.
    ///
    /// `window` names the window to close: closing one that is already closed answers its
    /// report again, so a retried close settles nothing twice. Absent: whichever is open (an
    /// empty one is opened and closed if none is).
    pub async fn close_settlement_window(
        &self,
        call: &Call<'_>,
        window: Option<WindowId>,
    ) -> Result<SettlementReport> {
        let action = Action::MarketOperate;
        let resource = Resource::Instance;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let _market = self.market_lock().await?;
            if let Some(id) = window {
                let step_key = format!("window/{id}/close");
                if let Some(report) = self
                    .earlier_answer::<SettlementReport>(REPORT, &id.to_string(), &step_key)
                    .await?
                {
                    return Ok(report);
                }
            }
            let now = Timestamp::now();
            let mut open = self.open_window(now).await?;
            if let Some(id) = window
                && id != open.window.id
            {
                return Err(Error::not_found(format!(
                    "open settlement window {id}; the open window is {}",
                    open.window.id
                )));
            }
            let (closed, report, plan) = clearing::close(&open.window, now)?;
            open.window = closed;
            let answer = SettlementReport {
                window: report.window,
                status: SettlementWindowStatus::Closed,
                opened_at: report.opened_at,
                closed_at: Some(report.closed_at),
                obligations: report.obligations as u64,
                positions: report.positions.iter().map(PositionView::from).collect(),
                totals: report.totals,
            };
            let detail = serde_json::json!({
                "window": answer.window, "obligations": answer.obligations,
                "positions": answer.positions.len(), "totals": answer.totals,
            });
            let mut step = Step::new(
                "settlement.close",
                answer.window,
                plan,
                action,
                &resource,
                detail.clone(),
            )
            .doc(Doc::new(REPORT, answer.window, &answer)?)
            .event(StepEvent::new(
                "settlement.window_closed",
                answer.window,
                None,
                detail,
            ));
            for doc in open.docs()? {
                step = step.doc(doc);
            }
            self.carry_out(call, step).await?;
            Ok(answer)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Authorizes reading settlement: the operator (and the instance) reads everything, a
    /// partner's members read their own organisation's positions.
    async fn settlement_reader(&self, call: &Call<'_>) -> Result<Reader> {
        match call.actor.acting {
            Some(acting) if !acting.is_operator => {
                self.authorize(
                    call,
                    Action::SettlementRead,
                    &Resource::Organisation(acting.org_id),
                    &Context::default(),
                )
                .await?;
                Ok(Reader::Partner(acting.org_id))
            }
            _ => {
                self.authorize(
                    call,
                    Action::MarketReadAll,
                    &Resource::Instance,
                    &Context::default(),
                )
                .await?;
                Ok(Reader::Operator)
            }
        }
    }

    /// A window's report: positions so far for the open window, as settled for a closed one.
    /// A partner sees only its own positions.
    pub async fn settlement_report(
        &self,
        call: &Call<'_>,
        window: WindowId,
    ) -> Result<SettlementReport> {
        let reader = self.settlement_reader(call).await?;
        let id = window.to_string();
        let mut report = match self.store().document(REPORT, &id).await? {
            Some(doc) => parse::<SettlementReport>(REPORT, &id, &doc.body)?,
            None => {
                let doc = self
                    .store()
                    .document(WINDOW, &id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("settlement window {window}")))?;
                live_report(&parse(WINDOW, &id, &doc.body)?)?
            }
        };
        if let Reader::Partner(partner) = reader {
            report
                .positions
                .retain(|position| position.partner == partner);
        }
        Ok(report)
    }

    /// The settlement windows, oldest first.
    pub async fn settlement_windows(
        &self,
        call: &Call<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<SettlementWindowSummary>> {
        self.settlement_reader(call).await?;
        let limit = self.page_limit(limit)?;
        let docs = self
            .store()
            .documents(WINDOW, None, cursor, limit + 1)
            .await?;
        let windows = docs
            .iter()
            .map(|doc| {
                let window: Window = parse(WINDOW, &doc.id, &doc.body)?;
                Ok(SettlementWindowSummary {
                    id: window.id,
                    status: status_of(&window),
                    opened_at: window.opened_at,
                    closed_at: window.closed_at,
                    obligations: window.obligations as u64,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(windows, limit, |window| {
            window.id.to_string()
        }))
    }
}
