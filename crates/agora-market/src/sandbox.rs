//! A built-in card payment provider for tests and demos: a pure, seeded model that authorizes, captures and refunds, and notifies late, twice and out of order.
//!
//! Cards are test tokens: `tok_visa` and `tok_mastercard` succeed, `tok_declined` is declined,
//! `tok_insufficient_funds` is declined for want of funds; any other token is refused as unknown.
//! Each change emits a [`Notification`] (`payment.authorized`, `payment.failed`,
//! `payment.captured`, `refund.succeeded`) with a provider event id, which a
//! [`NotificationSchedule`] driven by the seed delivers after a random delay, sometimes twice, so
//! that notifications arrive out of order.
//!
//! # The receiving side's rule
//!
//! A notification is only a hint that something changed. The application never acts on what it
//! says: it reads the payment's state back from the provider ([`Sandbox::payment`]) and acts on
//! that, idempotently ([`crate::order::capture`] answers `AlreadyCaptured` the second time, and
//! the posting plan's deterministic ids make the ledger answer `Exists`). So a duplicate, a late
//! or a reordered notification can never count money twice, and one that arrives before the
//! state it announces (impossible here, possible with real providers) only causes a no-op read.

use agora_domain::ledger::Currency;
use agora_domain::{Error, PaymentId, RefundId, Result, Timestamp};
use serde::{Deserialize, Serialize};

/// The provider name the sandbox's money goes through (its provider clearing account).
pub const PROVIDER: &str = "sandbox";

/// A card payment's state at the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Authorized,
    Captured,
    Declined,
}

/// A card payment as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPayment {
    pub id: PaymentId,
    pub currency: Currency,
    pub amount: i64,
    pub token: String,
    pub status: PaymentStatus,
    pub captured: i64,
    pub refunded: i64,
    pub refunds: Vec<(RefundId, i64)>,
}

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    #[serde(rename = "payment.authorized")]
    PaymentAuthorized,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "payment.captured")]
    PaymentCaptured,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
}

/// An asynchronous notification, as the provider would post it to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The provider's event id; a duplicate delivery repeats it.
    pub event_id: String,
    pub kind: NotificationKind,
    pub payment_id: PaymentId,
    pub refund_id: Option<RefundId>,
    pub amount: i64,
}

/// A seeded pseudo-random source (SplitMix64): the same seed gives the same history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Scheduled {
    due: Timestamp,
    tiebreak: u64,
    notification: Notification,
}

/// Delivers notifications late (a delay up to `delay_seconds_max`), sometimes twice
/// (`duplicate_per_mille` of them), and so out of order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSchedule {
    random: Seeded,
    pub delay_seconds_max: u32,
    pub duplicate_per_mille: u32,
    queue: Vec<Scheduled>,
}

impl NotificationSchedule {
    pub fn new(seed: u64, delay_seconds_max: u32, duplicate_per_mille: u32) -> Self {
        Self {
            random: Seeded(seed),
            delay_seconds_max,
            duplicate_per_mille: duplicate_per_mille.min(1_000),
            queue: Vec::new(),
        }
    }

    /// Queues a notification emitted at `now`, once or twice, each with its own delay.
    pub fn schedule(&mut self, notification: Notification, now: Timestamp) {
        let copies = if self.random.below(1_000) < u64::from(self.duplicate_per_mille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.random.below(u64::from(self.delay_seconds_max) + 1);
            let due = now.plus_seconds(i64::try_from(delay).expect("at most u32::MAX"));
            let tiebreak = self.random.next();
            self.queue.push(Scheduled {
                due,
                tiebreak,
                notification: notification.clone(),
            });
        }
    }

    /// Takes every notification due at `now`, in order of due time (ties in a seeded order).
    pub fn due(&mut self, now: Timestamp) -> Vec<Notification> {
        let (mut due, rest): (Vec<Scheduled>, Vec<Scheduled>) = self
            .queue
            .drain(..)
            .partition(|scheduled| scheduled.due <= now);
        self.queue = rest;
        due.sort_by_key(|scheduled| (scheduled.due, scheduled.tiebreak));
        due.into_iter()
            .map(|scheduled| scheduled.notification)
            .collect()
    }

    /// How many deliveries are still queued.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// The sandbox provider: its payments and its notifications in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    payments: Vec<SandboxPayment>,
    pub schedule: NotificationSchedule,
    events: u64,
}

impl Sandbox {
    /// A sandbox whose notifications arrive up to an hour late, one in four twice.
    pub fn new(seed: u64) -> Self {
        Self::with_schedule(NotificationSchedule::new(seed, 3_600, 250))
    }

    pub fn with_schedule(schedule: NotificationSchedule) -> Self {
        Self {
            payments: Vec::new(),
            schedule,
            events: 0,
        }
    }

    /// A payment's state as the provider holds it: what the application acts on.
    pub fn payment(&self, id: PaymentId) -> Option<&SandboxPayment> {
        self.payments.iter().find(|payment| payment.id == id)
    }

    fn payment_index(&self, id: PaymentId) -> Result<usize> {
        self.payments
            .iter()
            .position(|payment| payment.id == id)
            .ok_or_else(|| Error::not_found(format!("sandbox payment {id}")))
    }

    fn notify(
        &mut self,
        kind: NotificationKind,
        payment_id: PaymentId,
        refund_id: Option<RefundId>,
        amount: i64,
        now: Timestamp,
    ) {
        self.events += 1;
        let notification = Notification {
            event_id: format!("evt_sandbox_{:08}", self.events),
            kind,
            payment_id,
            refund_id,
            amount,
        };
        self.schedule.schedule(notification, now);
    }

    /// Authorizes `amount` on the card `token`. A declined card is recorded and notified
    /// (`payment.failed`) and answered with an error saying why.
    pub fn authorize(
        &mut self,
        payment_id: PaymentId,
        currency: Currency,
        amount: i64,
        token: &str,
        now: Timestamp,
    ) -> Result<&SandboxPayment> {
        if self.payment(payment_id).is_some() {
            return Err(Error::Conflict(format!(
                "sandbox payment {payment_id} exists; read it instead of authorizing again"
            )));
        }
        if amount < 1 {
            return Err(Error::invalid("amount", "authorize at least 1 minor unit"));
        }
        let declined = match token {
            "tok_visa" | "tok_mastercard" => None,
            "tok_declined" => Some("the card was declined; ask the customer for another card"),
            "tok_insufficient_funds" => Some(
                "the card has insufficient funds; ask the customer for another card or a smaller order",
            ),
            _ => {
                return Err(Error::invalid(
                    "token",
                    format!(
                        "`{token}` is not a sandbox card; use tok_visa, tok_mastercard, \
                         tok_declined or tok_insufficient_funds"
                    ),
                ));
            }
        };
        let status = if declined.is_some() {
            PaymentStatus::Declined
        } else {
            PaymentStatus::Authorized
        };
        self.payments.push(SandboxPayment {
            id: payment_id,
            currency,
            amount,
            token: token.to_owned(),
            status,
            captured: 0,
            refunded: 0,
            refunds: Vec::new(),
        });
        let kind = if declined.is_some() {
            NotificationKind::PaymentFailed
        } else {
            NotificationKind::PaymentAuthorized
        };
        self.notify(kind, payment_id, None, amount, now);
        if let Some(reason) = declined {
            return Err(Error::forbidden("card_declined", reason));
        }
        Ok(self.payment(payment_id).expect("just pushed"))
    }

    /// Captures an authorized payment in full; capturing a captured payment changes nothing.
    pub fn capture(&mut self, payment_id: PaymentId, now: Timestamp) -> Result<&SandboxPayment> {
        let index = self.payment_index(payment_id)?;
        let payment = &mut self.payments[index];
        match payment.status {
            PaymentStatus::Captured => {}
            PaymentStatus::Declined => {
                return Err(Error::Conflict(format!(
                    "sandbox payment {payment_id} was declined; it cannot be captured"
                )));
            }
            PaymentStatus::Authorized => {
                payment.status = PaymentStatus::Captured;
                payment.captured = payment.amount;
                let amount = payment.amount;
                self.notify(
                    NotificationKind::PaymentCaptured,
                    payment_id,
                    None,
                    amount,
                    now,
                );
            }
        }
        Ok(&self.payments[index])
    }

    /// Refunds part of a captured payment, never beyond what was captured; the same refund id twice changes nothing.
    pub fn refund(
        &mut self,
        payment_id: PaymentId,
        refund_id: RefundId,
        amount: i64,
        now: Timestamp,
    ) -> Result<&SandboxPayment> {
        let index = self.payment_index(payment_id)?;
        let payment = &mut self.payments[index];
        if payment.refunds.iter().any(|(id, _)| *id == refund_id) {
            return Ok(&self.payments[index]);
        }
        if payment.status != PaymentStatus::Captured {
            return Err(Error::Conflict(format!(
                "sandbox payment {payment_id} is not captured; nothing to refund"
            )));
        }
        let refundable = payment.captured - payment.refunded;
        if amount < 1 || amount > refundable {
            return Err(Error::invalid(
                "amount",
                format!("sandbox payment {payment_id} can be refunded 1 to {refundable} more"),
            ));
        }
        payment.refunded += amount;
        payment.refunds.push((refund_id, amount));
        self.notify(
            NotificationKind::RefundSucceeded,
            payment_id,
            Some(refund_id),
            amount,
            now,
        );
        Ok(&self.payments[index])
    }

    /// The notifications due at `now`, late, duplicated and reordered as the schedule decided.
    pub fn deliver(&mut self, now: Timestamp) -> Vec<Notification> {
        self.schedule.due(now)
    }
}
