//! Shared test vocabulary: deterministic ids, currencies, instants and a transfer builder.

use agora_domain::Timestamp;
use agora_domain::ledger::{AccountId, Currency, Transfer, TransferId, TransferKind};

pub fn account_id(number: u128) -> AccountId {
    format!("acc_{number:032x}")
        .parse()
        .expect("a well-formed account id")
}

pub fn transfer_id(number: u128) -> TransferId {
    format!("trf_{number:032x}")
        .parse()
        .expect("a well-formed transfer id")
}

pub fn eur() -> Currency {
    Currency::parse("EUR").expect("EUR is a currency")
}

pub fn usd() -> Currency {
    Currency::parse("USD").expect("USD is a currency")
}

/// The instant tests start at.
pub fn t0() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000)
}

/// `t0` plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    t0().plus_seconds(seconds)
}

/// A single EUR transfer with code 1, to adjust with the builder methods.
pub fn single(id: u128, debit: u128, credit: u128, amount: i64) -> Transfer {
    Transfer {
        id: transfer_id(id),
        debit_account_id: account_id(debit),
        credit_account_id: account_id(credit),
        amount,
        currency: eur(),
        code: 1,
        kind: TransferKind::Single,
        linked: false,
    }
}

pub trait TransferBuilder {
    fn pending(self, timeout_seconds: u32) -> Transfer;
    fn post(self, pending_id: u128) -> Transfer;
    fn void(self, pending_id: u128) -> Transfer;
    fn linked(self) -> Transfer;
    fn code(self, code: u16) -> Transfer;
    fn currency(self, currency: Currency) -> Transfer;
}

impl TransferBuilder for Transfer {
    fn pending(self, timeout_seconds: u32) -> Transfer {
        Transfer {
            kind: TransferKind::Pending { timeout_seconds },
            ..self
        }
    }

    fn post(self, pending_id: u128) -> Transfer {
        Transfer {
            kind: TransferKind::PostPending {
                pending_id: transfer_id(pending_id),
            },
            ..self
        }
    }

    fn void(self, pending_id: u128) -> Transfer {
        Transfer {
            kind: TransferKind::VoidPending {
                pending_id: transfer_id(pending_id),
            },
            ..self
        }
    }

    fn linked(self) -> Transfer {
        Transfer {
            linked: true,
            ..self
        }
    }

    fn code(self, code: u16) -> Transfer {
        Transfer { code, ..self }
    }

    fn currency(self, currency: Currency) -> Transfer {
        Transfer { currency, ..self }
    }
}
