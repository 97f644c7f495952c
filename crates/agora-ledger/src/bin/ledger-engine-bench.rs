//! Measures the engine alone, no persistence: transfers per second in full batches, spread and on a hot account.
//!
//! Run with `cargo run --release -p agora-ledger --bin ledger-engine-bench [transfers]`.
//! Each workload runs three rounds on a ledger sized for it (the best is the engine's figure on a
//! shared machine) and one on a ledger that grows from empty (the cost of growing its maps).

use std::time::{Duration, Instant};

use agora_domain::Timestamp;
use agora_domain::ledger::{
    Account, AccountId, BalanceLimit, Currency, Transfer, TransferId, TransferKind,
};
use agora_ledger::{Applied, BATCH_TRANSFERS_MAX, Ledger};

const ACCOUNT_COUNT: usize = 10_000;
const ROUND_COUNT: usize = 3;

fn main() {
    let transfer_count: usize = std::env::args()
        .nth(1)
        .map(|text| text.parse().expect("the argument is a number of transfers"))
        .unwrap_or(1_000_000);
    println!(
        "{transfer_count} transfers (one in ten a pending transfer, posted by the next) in batches of {BATCH_TRANSFERS_MAX}, {ACCOUNT_COUNT} accounts"
    );
    let account_ids: Vec<AccountId> = (0..ACCOUNT_COUNT).map(|_| AccountId::new()).collect();
    let spread = workload(&account_ids, transfer_count, |random| {
        let debit = random.below(ACCOUNT_COUNT);
        let credit = (debit + 1 + random.below(ACCOUNT_COUNT - 1)) % ACCOUNT_COUNT;
        (debit, credit)
    });
    let hot = workload(&account_ids, transfer_count, |random| {
        (1 + random.below(ACCOUNT_COUNT - 1), 0)
    });
    for (name, transfers) in [
        ("spread (random pairs)", &spread),
        ("hot (every transfer credits one account)", &hot),
    ] {
        let rounds: Vec<Duration> = (0..ROUND_COUNT)
            .map(|_| {
                let ledger = Ledger::with_capacity(ACCOUNT_COUNT, transfers.len());
                run(ledger, &account_ids, transfers)
            })
            .collect();
        let best = rounds.iter().min().expect("at least one round");
        let growing = run(Ledger::new(), &account_ids, transfers);
        println!(
            "{name}: {:.0} transfers/s (best of {ROUND_COUNT}: {}); growing from empty: {:.0} transfers/s",
            rate(transfers.len(), *best),
            rounds
                .iter()
                .map(|round| format!("{:.3} s", round.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", "),
            rate(transfers.len(), growing),
        );
    }
}

fn rate(transfer_count: usize, elapsed: Duration) -> f64 {
    transfer_count as f64 / elapsed.as_secs_f64()
}

fn euro() -> Currency {
    Currency::parse("EUR").expect("EUR is a currency")
}

fn start() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000)
}

/// `transfer_count` transfers between accounts that `pick` chooses (debit, credit); every tenth
/// is a pending transfer that the next one posts in full.
fn workload(
    account_ids: &[AccountId],
    transfer_count: usize,
    pick: impl Fn(&mut Random) -> (usize, usize),
) -> Vec<Transfer> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut transfers = Vec::with_capacity(transfer_count + 1);
    while transfers.len() < transfer_count {
        let (debit, credit) = pick(&mut random);
        let two_phase = transfers.len() % 10 == 0;
        let transfer = Transfer {
            id: TransferId::new(),
            debit_account_id: account_ids[debit],
            credit_account_id: account_ids[credit],
            amount: 1 + random.below(1_000) as i64,
            currency: euro(),
            code: 1,
            kind: if two_phase {
                TransferKind::Pending {
                    timeout_seconds: 3_600,
                }
            } else {
                TransferKind::Single
            },
            linked: false,
        };
        if two_phase {
            let post = Transfer {
                id: TransferId::new(),
                amount: 0,
                kind: TransferKind::PostPending {
                    pending_id: transfer.id,
                },
                ..transfer.clone()
            };
            transfers.push(transfer);
            transfers.push(post);
        } else {
            transfers.push(transfer);
        }
    }
    transfers.truncate(transfer_count);
    transfers
}

/// Applies every transfer to a fresh `ledger` and returns how long the batches took.
fn run(mut ledger: Ledger, account_ids: &[AccountId], transfers: &[Transfer]) -> Duration {
    let accounts: Vec<Account> = account_ids
        .iter()
        .map(|&id| Account::new(id, euro(), 1, BalanceLimit::None, start()))
        .collect();
    ledger.create_accounts(&accounts);
    // One `Applied` reused across batches, as a writer keeps one.
    let mut applied = Applied::default();
    let mut created = 0usize;
    let began = Instant::now();
    for (batch_index, batch) in transfers.chunks(BATCH_TRANSFERS_MAX).enumerate() {
        let now = Timestamp::from_micros(start().as_micros() + batch_index as i64 * 10_000);
        ledger.apply_into(batch, now, &mut applied);
        created += applied
            .results
            .iter()
            .filter(|result| result.is_created())
            .count();
    }
    let elapsed = began.elapsed();
    assert_eq!(created, transfers.len(), "every transfer is created");
    ledger
        .check_invariants()
        .expect("the bench keeps the invariants");
    elapsed
}

/// xorshift64: the bench needs cheap, repeatable choices, not good randomness.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}
