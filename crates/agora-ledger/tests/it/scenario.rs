//! Random ledger histories for property tests: proptest generates shapes, `concretize` turns them into operations.
//!
//! A shape refers to earlier transfers by position (`Index`), so that duplicates, posts and voids
//! hit real ids often; turning shapes into transfers needs only what was sent before, not what
//! the ledger answered, so the same operations can drive the engine, the model and a restore.

use agora_domain::Timestamp;
use agora_domain::ledger::{Account, BalanceLimit, Currency, Transfer, TransferKind};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::fixtures::{account_id, eur, t0, transfer_id, usd};

/// Account slots 0..ACCOUNT_SLOTS may be created; slot ACCOUNT_SLOTS never is.
const ACCOUNT_SLOTS: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    CreateAccounts(Vec<Account>),
    Apply(Vec<Transfer>),
    /// Moves the clock by this many microseconds; backwards too, as a wall clock may.
    Advance(i64),
    Expire,
}

#[derive(Debug, Clone)]
pub struct AccountShape {
    slot: u8,
    dollars: bool,
    limit: u8,
    code: u16,
}

#[derive(Debug, Clone)]
pub enum IdShape {
    Fresh,
    /// An earlier transfer again, unchanged (`change: None`) or with one field changed.
    Repeat {
        earlier: Index,
        change: Option<u8>,
    },
}

#[derive(Debug, Clone)]
pub enum KindShape {
    Single,
    Pending {
        timeout_seconds: u32,
    },
    /// A post of an earlier pending transfer, with a matching transfer unless `mismatch`.
    Post {
        target: TargetShape,
        amount: PostAmount,
        mismatch: bool,
    },
    Void {
        target: TargetShape,
        amount: VoidAmount,
        mismatch: bool,
    },
}

#[derive(Debug, Clone)]
pub enum VoidAmount {
    Zero,
    Exact,
    /// Half the pending amount: refused unless it rounds to 0.
    Half,
}

#[derive(Debug, Clone)]
pub enum TargetShape {
    /// An earlier pending transfer.
    Pending(Index),
    /// Any earlier transfer, pending or not.
    Any(Index),
    /// An id never used.
    Unknown,
}

#[derive(Debug, Clone)]
pub enum PostAmount {
    Full,
    /// This percentage of the pending amount, at least 1.
    Part(u8),
    Over,
}

#[derive(Debug, Clone)]
pub struct TransferShape {
    id: IdShape,
    /// Which created account to debit, or any slot (created or not) when `anywhere`.
    debit: Index,
    anywhere: bool,
    /// Which account of the debit account's currency to credit (or any account, when `cross`).
    credit: Index,
    cross: bool,
    amount: i64,
    code: u16,
    kind: KindShape,
}

#[derive(Debug, Clone)]
pub enum OperationShape {
    CreateAccounts(Vec<AccountShape>),
    /// Chains of transfers; `open_end` links the batch's last transfer.
    Apply {
        chains: Vec<Vec<TransferShape>>,
        open_end: bool,
    },
    /// An earlier batch, sent again as it was.
    Replay(Index),
    Advance(i64),
    Expire,
}

fn account_shape() -> impl Strategy<Value = AccountShape> {
    (0..ACCOUNT_SLOTS, any::<bool>(), 0u8..3, 1u16..3).prop_map(|(slot, dollars, limit, code)| {
        AccountShape {
            slot,
            dollars,
            limit,
            code,
        }
    })
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        16 => 1i64..=30,
        1 => Just(0i64),
        1 => -3i64..0,
        1 => Just(i64::MAX / 2 + 1),
    ]
}

fn target() -> impl Strategy<Value = TargetShape> {
    prop_oneof![
        8 => any::<Index>().prop_map(TargetShape::Pending),
        1 => any::<Index>().prop_map(TargetShape::Any),
        1 => Just(TargetShape::Unknown),
    ]
}

fn kind() -> impl Strategy<Value = KindShape> {
    let post_amount = prop_oneof![
        3 => Just(PostAmount::Full),
        3 => (1u8..=100).prop_map(PostAmount::Part),
        1 => Just(PostAmount::Over),
    ];
    let void_amount = prop_oneof![
        3 => Just(VoidAmount::Zero),
        3 => Just(VoidAmount::Exact),
        1 => Just(VoidAmount::Half),
    ];
    prop_oneof![
        4 => Just(KindShape::Single),
        3 => prop_oneof![Just(0u32), Just(1), Just(2), Just(5)].prop_map(|timeout_seconds| KindShape::Pending { timeout_seconds }),
        3 => (target(), post_amount, prop::bool::weighted(0.1))
            .prop_map(|(target, amount, mismatch)| KindShape::Post { target, amount, mismatch }),
        2 => (target(), void_amount, prop::bool::weighted(0.1))
            .prop_map(|(target, amount, mismatch)| KindShape::Void { target, amount, mismatch }),
    ]
}

fn transfer_shape() -> impl Strategy<Value = TransferShape> {
    let id = prop_oneof![
        9 => Just(IdShape::Fresh),
        1 => (any::<Index>(), prop::option::weighted(0.5, 0u8..5)).prop_map(|(earlier, change)| IdShape::Repeat { earlier, change }),
    ];
    let accounts = (
        any::<Index>(),
        prop::bool::weighted(0.05),
        any::<Index>(),
        prop::bool::weighted(0.05),
    );
    (id, accounts, amount(), 1u16..3, kind()).prop_map(
        |(id, (debit, anywhere, credit, cross), amount, code, kind)| TransferShape {
            id,
            debit,
            anywhere,
            credit,
            cross,
            amount,
            code,
            kind,
        },
    )
}

fn chain() -> impl Strategy<Value = Vec<TransferShape>> {
    prop_oneof![
        3 => prop::collection::vec(transfer_shape(), 1),
        1 => prop::collection::vec(transfer_shape(), 2..=4),
    ]
}

fn operation_shape() -> impl Strategy<Value = OperationShape> {
    prop_oneof![
        1 => prop::collection::vec(account_shape(), 1..4).prop_map(OperationShape::CreateAccounts),
        8 => (prop::collection::vec(chain(), 1..6), prop::bool::weighted(0.1))
            .prop_map(|(chains, open_end)| OperationShape::Apply { chains, open_end }),
        1 => any::<Index>().prop_map(OperationShape::Replay),
        3 => prop_oneof![Just(1i64), Just(400_000), Just(1_000_000), Just(2_000_000), Just(5_000_000), Just(-1_500_000)]
            .prop_map(OperationShape::Advance),
        1 => Just(OperationShape::Expire),
    ]
}

/// A history: some accounts first, then up to `max_operations` operations.
pub fn operations(max_operations: usize) -> impl Strategy<Value = Vec<Operation>> {
    (
        prop::collection::vec(account_shape(), 3..8),
        prop::collection::vec(operation_shape(), 1..max_operations),
    )
        .prop_map(|(accounts, shapes)| {
            let mut all = vec![OperationShape::CreateAccounts(accounts)];
            all.extend(shapes);
            concretize(all)
        })
}

/// What turning shapes into operations remembers: what was sent, never what was answered.
#[derive(Default)]
struct History {
    /// The currency each slot was first created with.
    currencies: Vec<Option<Currency>>,
    sent: Vec<Transfer>,
    pending: Vec<Transfer>,
    batches: Vec<Vec<Transfer>>,
    next_id: u128,
}

fn concretize(shapes: Vec<OperationShape>) -> Vec<Operation> {
    let mut history = History {
        currencies: vec![None; usize::from(ACCOUNT_SLOTS) + 1],
        next_id: 1,
        ..History::default()
    };
    shapes
        .into_iter()
        .map(|shape| history.operation(shape))
        .collect()
}

impl History {
    fn operation(&mut self, shape: OperationShape) -> Operation {
        match shape {
            OperationShape::CreateAccounts(accounts) => Operation::CreateAccounts(
                accounts
                    .into_iter()
                    .map(|account| self.account(account))
                    .collect(),
            ),
            OperationShape::Apply { chains, open_end } => {
                let mut batch = Vec::new();
                for chain in chains {
                    let length = chain.len();
                    for (position, shape) in chain.into_iter().enumerate() {
                        batch.push(self.transfer(shape, position + 1 < length));
                    }
                }
                if open_end && let Some(last) = batch.last_mut() {
                    last.linked = true;
                }
                self.sent.extend(batch.iter().cloned());
                self.pending.extend(
                    batch
                        .iter()
                        .filter(|t| matches!(t.kind, TransferKind::Pending { .. }))
                        .cloned(),
                );
                self.batches.push(batch.clone());
                Operation::Apply(batch)
            }
            OperationShape::Replay(earlier) if !self.batches.is_empty() => {
                Operation::Apply(earlier.get(&self.batches).clone())
            }
            OperationShape::Replay(_) => Operation::Expire,
            OperationShape::Advance(micros) => Operation::Advance(micros),
            OperationShape::Expire => Operation::Expire,
        }
    }

    fn account(&mut self, shape: AccountShape) -> Account {
        let currency = if shape.dollars { usd() } else { eur() };
        let slot = usize::from(shape.slot);
        self.currencies[slot].get_or_insert(currency);
        let limit = [
            BalanceLimit::None,
            BalanceLimit::DebitsMustNotExceedCredits,
            BalanceLimit::CreditsMustNotExceedDebits,
        ][usize::from(shape.limit)];
        Account::new(
            account_id(u128::from(shape.slot)),
            currency,
            shape.code,
            limit,
            t0(),
        )
    }

    fn fresh_id(&mut self) -> u128 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn transfer(&mut self, shape: TransferShape, linked: bool) -> Transfer {
        if let IdShape::Repeat { earlier, change } = &shape.id
            && !self.sent.is_empty()
        {
            let mut transfer = earlier.get(&self.sent).clone();
            match change {
                None => {}
                Some(0) => transfer.amount += 1,
                Some(1) => transfer.code += 1,
                Some(2) => std::mem::swap(
                    &mut transfer.debit_account_id,
                    &mut transfer.credit_account_id,
                ),
                Some(3) => {
                    transfer.kind = match transfer.kind {
                        TransferKind::Single => TransferKind::Pending { timeout_seconds: 1 },
                        _ => TransferKind::Single,
                    }
                }
                Some(_) => transfer.linked = !transfer.linked,
            }
            return transfer;
        }
        let id = transfer_id(self.fresh_id());
        let created: Vec<u8> = (0..=ACCOUNT_SLOTS)
            .filter(|&slot| self.currencies[usize::from(slot)].is_some())
            .collect();
        let debit = if shape.anywhere || created.is_empty() {
            *shape.debit.get(&(0..=ACCOUNT_SLOTS).collect::<Vec<u8>>())
        } else {
            *shape.debit.get(&created)
        };
        let currency = self.currencies[usize::from(debit)].unwrap_or_else(eur);
        let same_currency: Vec<u8> = created
            .iter()
            .copied()
            .filter(|&slot| slot != debit && self.currencies[usize::from(slot)] == Some(currency))
            .collect();
        let credit = if shape.cross || same_currency.is_empty() {
            let others: Vec<u8> = (0..=ACCOUNT_SLOTS).filter(|&slot| slot != debit).collect();
            *shape.credit.get(&others)
        } else {
            *shape.credit.get(&same_currency)
        };
        let mut transfer = Transfer {
            id,
            debit_account_id: account_id(u128::from(debit)),
            credit_account_id: account_id(u128::from(credit)),
            amount: shape.amount,
            currency,
            code: shape.code,
            kind: TransferKind::Single,
            linked,
        };
        match shape.kind {
            KindShape::Single => {}
            KindShape::Pending { timeout_seconds } => {
                transfer.kind = TransferKind::Pending { timeout_seconds }
            }
            KindShape::Post {
                target,
                amount,
                mismatch,
            } => {
                let target = self.target(&target);
                transfer.amount = match (&target, amount) {
                    (_, PostAmount::Full) => 0,
                    (Some(pending), PostAmount::Part(percent)) => {
                        i64::try_from(i128::from(pending.amount) * i128::from(percent) / 100)
                            .expect("at most the pending amount")
                            .max(1)
                    }
                    (Some(pending), PostAmount::Over) => pending.amount.saturating_add(1),
                    (None, _) => transfer.amount.max(0),
                };
                self.resolve(&mut transfer, target, mismatch, true);
            }
            KindShape::Void {
                target,
                amount,
                mismatch,
            } => {
                let target = self.target(&target);
                transfer.amount = match (&target, amount) {
                    (Some(pending), VoidAmount::Exact) => pending.amount,
                    (Some(pending), VoidAmount::Half) => pending.amount / 2,
                    _ => 0,
                };
                self.resolve(&mut transfer, target, mismatch, false);
            }
        }
        transfer
    }

    fn target(&self, shape: &TargetShape) -> Option<Transfer> {
        match shape {
            TargetShape::Pending(index) if !self.pending.is_empty() => {
                Some(index.get(&self.pending).clone())
            }
            TargetShape::Any(index) if !self.sent.is_empty() => Some(index.get(&self.sent).clone()),
            _ => None,
        }
    }

    /// Points a post (`post`) or void at `target`, copying its accounts, currency and code unless `mismatch`.
    fn resolve(
        &mut self,
        transfer: &mut Transfer,
        target: Option<Transfer>,
        mismatch: bool,
        post: bool,
    ) {
        let pending_id = match target {
            Some(target) => {
                transfer.debit_account_id = target.debit_account_id;
                transfer.credit_account_id = target.credit_account_id;
                transfer.currency = target.currency;
                transfer.code = if mismatch {
                    target.code + 1
                } else {
                    target.code
                };
                target.id
            }
            None => transfer_id(1_000_000 + self.fresh_id()),
        };
        transfer.kind = if post {
            TransferKind::PostPending { pending_id }
        } else {
            TransferKind::VoidPending { pending_id }
        };
    }
}

/// The clock a history starts at.
pub fn start() -> Timestamp {
    t0()
}
