//! Wallet top-ups: money from outside (a cash desk, a card) into a customer's wallet.
//!
//! Decision 0005 sends top-ups to the ledger writer directly, outside the marketplace lock; this
//! plan gives them the same derived accounts and deterministic ids as every marketplace step.

use agora_domain::ledger::Currency;
use agora_domain::{Error, PaymentId, Result, Timestamp, UserId};

use crate::accounts::{AccountPurpose, TransferCode};
use crate::plan::{Leg, Plan, StepKey};

/// Wallet funding → customer wallet, `amount` minor units; `payment_id` names the top-up.
pub fn top_up(
    customer: UserId,
    currency: Currency,
    amount: i64,
    payment_id: PaymentId,
    now: Timestamp,
) -> Result<Plan> {
    if amount < 1 {
        return Err(Error::invalid(
            "amount",
            "a top-up is at least 1 minor unit",
        ));
    }
    Plan::build(
        StepKey::new(&[&"wallet", &customer, &"top-up", &payment_id]),
        &[Leg::new(
            AccountPurpose::WalletFunding,
            AccountPurpose::CustomerWallet { customer },
            currency,
            amount,
            TransferCode::TopUp,
        )],
        now,
    )
}
