//! Carrying out a marketplace step (decision 0005): record it `planned` with its plan and the
//! state it will leave, submit the plan to the ledger writer, then store the new state and
//! finish the step `done` in one transaction with its audit entry and events — or, if the
//! ledger refused the plan, finish it `refused` and change nothing else.
//!
//! Steps run one at a time under the marketplace lock. A step still `planned` (the process died
//! between the ledger and the last transaction) is resumed before any new step: its plan is
//! submitted again (its transfer ids are derived from the step's key, so the ledger applies it
//! at most once) and its stored state is written if the ledger holds the plan.

use agora_domain::audit::Outcome;
use agora_domain::authz::{Action, Resource};
use agora_domain::event::NewEvent;
use agora_domain::ledger::TransferResult;
use agora_domain::{Error, OrgId, Result, Timestamp};
use agora_ledger::AccountResult;
use agora_market::Plan;
use agora_store::{DocumentWrite, StepStatus, WriteTx};
use serde::{Deserialize, Serialize};

use crate::{App, Call, audit_record};

/// Every event type a marketplace step may emit: stored steps name theirs by text, and a resumed
/// step finds the static name here.
pub(crate) const MARKET_EVENT_TYPES: &[&str] = &[
    "order.placed",
    "order.paid",
    "order.fulfilled",
    "order.released",
    "order.completed",
    "order.refunded",
    "order.cancelled",
    "payment.notified",
    "payout.sent",
    "wallet.topped_up",
    "points.accrued",
    "points.redeemed",
    "points.expired",
    "settlement.obligation_recorded",
    "settlement.window_closed",
    "commission.rule_set",
    "seller.settings_set",
];

/// A marketplace document to write when the step is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Doc {
    pub kind: String,
    pub id: String,
    pub owner: Option<String>,
    pub status: Option<String>,
    pub sort_key: Option<i64>,
    /// The document, JSON.
    pub body: String,
}

impl Doc {
    pub fn new<T: Serialize>(kind: &str, id: impl ToString, value: &T) -> Result<Self> {
        Ok(Self {
            kind: kind.to_owned(),
            id: id.to_string(),
            owner: None,
            status: None,
            sort_key: None,
            body: serde_json::to_string(value)
                .map_err(|e| Error::Internal(format!("{kind} does not serialize: {e}")))?,
        })
    }

    pub fn owner(mut self, owner: impl ToString) -> Self {
        self.owner = Some(owner.to_string());
        self
    }

    pub fn status(mut self, status: impl ToString) -> Self {
        self.status = Some(status.to_string());
        self
    }

    pub fn sort_key(mut self, sort_key: i64) -> Self {
        self.sort_key = Some(sort_key);
        self
    }
}

/// An event to append when the step is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepEvent {
    pub event_type: String,
    pub subject: String,
    pub org_id: Option<OrgId>,
    pub data: serde_json::Value,
}

impl StepEvent {
    pub fn new(
        event_type: &'static str,
        subject: impl ToString,
        org_id: Option<OrgId>,
        data: serde_json::Value,
    ) -> Self {
        debug_assert!(MARKET_EVENT_TYPES.contains(&event_type), "{event_type}");
        Self {
            event_type: event_type.to_owned(),
            subject: subject.to_string(),
            org_id,
            data,
        }
    }

    fn to_new_event(&self) -> Result<NewEvent> {
        let event_type = MARKET_EVENT_TYPES
            .iter()
            .find(|known| **known == self.event_type)
            .ok_or_else(|| {
                Error::Internal(format!("unknown market event `{}`", self.event_type))
            })?;
        Ok(NewEvent {
            event_type,
            subject: self.subject.clone(),
            org_id: self.org_id,
            data: self.data.clone(),
        })
    }
}

/// What a step leaves behind once the ledger holds its plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StepOutput {
    pub docs: Vec<Doc>,
    /// An order and the organisations that sell on it, to be found by seller.
    pub order_sellers: Option<(String, Vec<OrgId>)>,
    pub events: Vec<StepEvent>,
    /// The audit entry's action (`Action::as_str`), resource kind and id, subject organisation.
    pub audit_action: String,
    pub audit_resource_type: String,
    pub audit_resource_id: String,
    pub audit_subject_org: Option<OrgId>,
    pub audit_detail: serde_json::Value,
}

/// One step to carry out.
pub(crate) struct Step {
    pub kind: &'static str,
    pub subject: String,
    pub plan: Plan,
    pub output: StepOutput,
}

impl Step {
    pub fn new(
        kind: &'static str,
        subject: impl ToString,
        plan: Plan,
        action: Action,
        resource: &Resource,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            subject: subject.to_string(),
            plan,
            output: StepOutput {
                audit_action: action.as_str().to_owned(),
                audit_resource_type: resource.kind().to_owned(),
                audit_resource_id: resource.id(),
                audit_subject_org: resource.org_id(),
                audit_detail: detail,
                ..StepOutput::default()
            },
        }
    }

    pub fn doc(mut self, doc: Doc) -> Self {
        self.output.docs.push(doc);
        self
    }

    pub fn event(mut self, event: StepEvent) -> Self {
        self.output.events.push(event);
        self
    }

    pub fn order_sellers(mut self, order_id: impl ToString, sellers: Vec<OrgId>) -> Self {
        self.output.order_sellers = Some((order_id.to_string(), sellers));
        self
    }
}

/// How the ledger answered a plan.
enum LedgerAnswer {
    /// Every transfer is in the ledger (now, or from before: a resumed or repeated step).
    Applied,
    /// The chain was refused; the first transfer's own reason.
    Refused(TransferResult),
}

impl App {
    /// Carries out a step; `Unprocessable` naming the ledger's reason when the ledger refuses it.
    /// The caller holds the marketplace lock and has authorized the step.
    pub(crate) async fn carry_out(&self, call: &Call<'_>, step: Step) -> Result<()> {
        let key = step.plan.step.as_str().to_owned();
        let plan_json =
            serde_json::to_string(&step.plan).map_err(|e| Error::Internal(format!("plan: {e}")))?;
        let output_json = serde_json::to_string(&step.output)
            .map_err(|e| Error::Internal(format!("step output: {e}")))?;
        let mut tx = self.store().write().await?;
        tx.insert_step(
            &key,
            step.kind,
            &step.subject,
            &plan_json,
            &output_json,
            Timestamp::now(),
        )
        .await
        .map_err(|error| match error {
            Error::Conflict(_) => Error::Conflict(format!(
                "this step ({key}) was carried out before; nothing was done again"
            )),
            other => other,
        })?;
        tx.commit().await?;
        self.finish(Some(call), &key, &step.plan, &step.output)
            .await
    }

    /// Submits a planned step's plan and finishes it. `call` is absent when resuming after a
    /// restart: the audit entry is then the system's.
    async fn finish(
        &self,
        call: Option<&Call<'_>>,
        key: &str,
        plan: &Plan,
        output: &StepOutput,
    ) -> Result<()> {
        let answer = self.submit(plan).await?;
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        match answer {
            LedgerAnswer::Applied => {
                write_output(&mut tx, output, now).await?;
                tx.finish_step(key, StepStatus::Done, None, now).await?;
                let record = step_audit(call, output, Outcome::Succeeded, &output.audit_detail);
                tx.append_audit(&record).await?;
                for event in &output.events {
                    tx.insert_event(&event.to_new_event()?, record.at).await?;
                }
                tx.commit().await
            }
            LedgerAnswer::Refused(reason) => {
                let reason_code = serde_json::to_value(reason)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("{reason:?}"));
                tx.finish_step(key, StepStatus::Refused, Some(&reason_code), now)
                    .await?;
                let detail = serde_json::json!({ "step": key, "refused": reason_code, "reason": reason.to_string() });
                tx.append_audit(&step_audit(call, output, Outcome::Failed, &detail))
                    .await?;
                tx.commit().await?;
                Err(Error::Unprocessable(format!(
                    "the ledger refused this step ({key}): {reason}; nothing moved"
                )))
            }
        }
    }

    async fn submit(&self, plan: &Plan) -> Result<LedgerAnswer> {
        if plan.transfers.is_empty() {
            return Ok(LedgerAnswer::Applied);
        }
        let ledger = self.ledger().await?;
        let results = ledger.create_accounts(plan.accounts.clone()).await?;
        if let Some((account, result)) =
            plan.accounts.iter().zip(&results).find(|(_, result)| {
                !matches!(result, AccountResult::Created | AccountResult::Exists)
            })
        {
            return Err(Error::Internal(format!(
                "the chart's account {} could not be created: {result}",
                account.id
            )));
        }
        let results = ledger.transfer(plan.transfers.clone()).await?;
        if results.iter().all(|result| result.is_applied()) {
            return Ok(LedgerAnswer::Applied);
        }
        let reason = results
            .iter()
            .find(|result| !result.is_applied() && **result != TransferResult::LinkedEventFailed)
            .copied()
            .unwrap_or(TransferResult::LinkedEventFailed);
        Ok(LedgerAnswer::Refused(reason))
    }

    /// Finishes every step a crash left `planned`, oldest first. Returns how many it resumed.
    pub(crate) async fn resume_planned_steps(&self) -> Result<usize> {
        let planned = self.store().planned_steps().await?;
        for step in &planned {
            let plan: Plan = serde_json::from_str(&step.plan)
                .map_err(|e| Error::Internal(format!("stored plan of {}: {e}", step.key)))?;
            let output: StepOutput = serde_json::from_str(&step.input)
                .map_err(|e| Error::Internal(format!("stored output of {}: {e}", step.key)))?;
            match self.finish(None, &step.key, &plan, &output).await {
                Ok(()) => tracing::info!(step = %step.key, "resumed a marketplace step"),
                // A refusal is recorded by `finish`: the step is over either way.
                Err(Error::Unprocessable(reason)) => {
                    tracing::info!(step = %step.key, %reason, "a resumed marketplace step was refused")
                }
                Err(error) => return Err(error),
            }
        }
        Ok(planned.len())
    }
}

async fn write_output(tx: &mut WriteTx, output: &StepOutput, now: Timestamp) -> Result<()> {
    for doc in &output.docs {
        tx.put_document(
            &DocumentWrite {
                kind: &doc.kind,
                id: &doc.id,
                owner: doc.owner.as_deref(),
                status: doc.status.as_deref(),
                sort_key: doc.sort_key,
                body: &doc.body,
            },
            now,
        )
        .await?;
    }
    if let Some((order_id, sellers)) = &output.order_sellers {
        tx.link_order_sellers(order_id, sellers).await?;
    }
    Ok(())
}

fn step_audit(
    call: Option<&Call<'_>>,
    output: &StepOutput,
    outcome: Outcome,
    detail: &serde_json::Value,
) -> agora_domain::audit::AuditRecord {
    let system = agora_domain::Actor::system();
    let resumed;
    let call = match call {
        Some(call) => call,
        None => {
            resumed = Call::new(&system, agora_domain::RequestId::new());
            &resumed
        }
    };
    let mut record = audit_record(
        call,
        &output.audit_action,
        &Resource::Instance,
        outcome,
        detail,
    );
    record.resource_type = output.audit_resource_type.clone();
    record.resource_id = output.audit_resource_id.clone();
    record.subject_org_id = output.audit_subject_org;
    record
}
