//! The ledger's single writer: one task owns the engine, applies requests in order, and commits
//! whole groups of them in one transaction (group commit), answering nobody before the commit.
//!
//! Clients hold a [`LedgerWriter`], a handle that sends requests over a bounded queue (its bound
//! is the back-pressure) and awaits one reply each. The writer task waits for a request or the
//! next pending expiry, then takes every further queued request without waiting, as long as the
//! group stays within `batch_transfers_max` transfers, applies each request with one engine call
//! (so that a linked chain never spans requests), and persists the whole group in one
//! transaction: the accounts it created, then one ledger batch with every record and failure and
//! the touched accounts' balances. Only after the commit does it answer, so every acknowledged
//! transfer survives a crash; while one group commits, the next one queues up, which is how many
//! concurrent clients share one fsync.
//!
//! Invariant: between groups, the engine holds exactly what storage holds. If persisting fails,
//! the engine ran ahead of storage, so the writer answers the whole group with the error and
//! rebuilds the engine from storage ([`Ledger::restore`]) before it serves again.
//!
//! One writer per database, fenced: a writer claims the ledger when it starts (raising the
//! stored writer epoch) and every append checks, under the head row's lock, that the epoch is
//! still its own. A second writer (another server sharing PostgreSQL, a second process on the
//! same SQLite file) thus fences out the first, whose next append is refused and which then
//! answers every request `Unavailable`: it can never append from a stale engine.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agora_domain::ledger::{
    Account, AccountId, FailedTransfer, Transfer, TransferRecord, TransferResult,
};
use agora_domain::{Error, Result, Timestamp};
use agora_ledger::{AccountResult, Applied, BATCH_TRANSFERS_MAX, Ledger};
use agora_store::{LedgerBatch, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Records read per query when the engine is restored from storage.
const RESTORE_PAGE_ROWS: u32 = 10_000;

/// How the writer groups requests and when it looks for expired reservations.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// The most transfers one group (one transaction) holds, and so the most one request may
    /// carry; a larger request is refused before it is queued. Accounts to create count as
    /// transfers here: each is one row to write. At most [`BATCH_TRANSFERS_MAX`].
    pub batch_transfers_max: usize,
    /// The most requests waiting for the writer; a client sending more waits for room
    /// (back-pressure). At worst the queue holds this many times `batch_transfers_max` transfers.
    pub queue_requests_max: usize,
    /// The longest the idle writer sleeps before looking at the clock again while a pending
    /// transfer waits to expire (it wakes at the expiry itself if that comes sooner), and how
    /// long it waits before retrying an expiry that failed to persist.
    pub expiry_check_ms: u64,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            batch_transfers_max: BATCH_TRANSFERS_MAX,
            queue_requests_max: 256,
            expiry_check_ms: 1_000,
        }
    }
}

impl LedgerOptions {
    fn validate(&self) -> Result<()> {
        if !(1..=BATCH_TRANSFERS_MAX).contains(&self.batch_transfers_max) {
            return Err(Error::invalid(
                "batch_transfers_max",
                format!("must be 1 to {BATCH_TRANSFERS_MAX}"),
            ));
        }
        if self.queue_requests_max == 0 {
            return Err(Error::invalid("queue_requests_max", "must be at least 1"));
        }
        if self.expiry_check_ms == 0 {
            return Err(Error::invalid("expiry_check_ms", "must be at least 1"));
        }
        Ok(())
    }
}

/// What the writer has committed since it started: how well group commit is working.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Transactions committed: one per group that had something to write.
    pub batches_committed: u64,
    /// Transfers of the requests those transactions answered, whatever each answered.
    pub transfers_committed: u64,
    /// The most transfers one committed group held.
    pub batch_transfers_largest: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches_committed: AtomicU64,
    transfers_committed: AtomicU64,
    batch_transfers_largest: AtomicU64,
}

/// A handle to the ledger's single writer task; clones share the task.
#[derive(Debug, Clone)]
pub struct LedgerWriter {
    requests: mpsc::Sender<Request>,
    batch_transfers_max: usize,
    counters: Arc<Counters>,
}

type Reply<T> = oneshot::Sender<Result<T>>;

enum Request {
    CreateAccounts {
        accounts: Vec<Account>,
        reply: Reply<Vec<AccountResult>>,
    },
    Transfer {
        transfers: Vec<Transfer>,
        reply: Reply<Vec<TransferResult>>,
    },
    Account {
        id: AccountId,
        reply: Reply<Option<Account>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

impl Request {
    /// How much of a group's `batch_transfers_max` the request takes.
    fn size(&self) -> usize {
        match self {
            Request::CreateAccounts { accounts, .. } => accounts.len(),
            Request::Transfer { transfers, .. } => transfers.len(),
            Request::Account { .. } | Request::Shutdown { .. } => 0,
        }
    }
}

impl LedgerWriter {
    /// Restores the engine from the store (every account, every record a page at a time, every
    /// failure; [`Ledger::restore`] replays them and checks the invariants), and spawns the
    /// writer task. Refuses to start on a history that does not replay.
    pub async fn start(store: Store, options: LedgerOptions) -> Result<Self> {
        options.validate()?;
        // Claim first, then read: whatever an earlier writer committed before the claim is in
        // the restored ledger, and whatever it tries after is refused.
        let epoch = store.claim_ledger_writer().await?;
        let ledger = restore(&store).await?;
        let (sender, receiver) = mpsc::channel(options.queue_requests_max);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            store,
            epoch,
            fenced: None,
            ledger: Some(ledger),
            expiry_check: Duration::from_millis(options.expiry_check_ms),
            batch_transfers_max: options.batch_transfers_max,
            requests: receiver,
            counters: counters.clone(),
            held: None,
            shutdown_replies: Vec::new(),
            expiry_not_before: None,
            applied: Applied::default(),
            records: Vec::new(),
            failures: Vec::new(),
            touched: Vec::new(),
            touched_set: HashSet::new(),
            created: Vec::new(),
        };
        tokio::spawn(writer.run());
        Ok(Self {
            requests: sender,
            batch_transfers_max: options.batch_transfers_max,
            counters,
        })
    }

    /// Creates accounts in order, each answered on its own; answers once they are committed.
    pub async fn create_accounts(&self, accounts: Vec<Account>) -> Result<Vec<AccountResult>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        self.check_size(accounts.len(), "accounts")?;
        self.call(|reply| Request::CreateAccounts { accounts, reply })
            .await
    }

    /// Applies one request's transfers, in order and in one engine call, so that a linked chain
    /// applies whole or not at all; answers after the group that holds them is durably
    /// committed. A request of more than `batch_transfers_max` transfers is refused unqueued.
    pub async fn transfer(&self, transfers: Vec<Transfer>) -> Result<Vec<TransferResult>> {
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        self.check_size(transfers.len(), "transfers")?;
        self.call(|reply| Request::Transfer { transfers, reply })
            .await
    }

    /// The account as the engine holds it now, which is what storage holds: reads are answered
    /// after the group they arrive in commits.
    pub async fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.call(|reply| Request::Account { id, reply }).await
    }

    /// What the writer has committed so far.
    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            batches_committed: self.counters.batches_committed.load(Ordering::Relaxed),
            transfers_committed: self.counters.transfers_committed.load(Ordering::Relaxed),
            batch_transfers_largest: self
                .counters
                .batch_transfers_largest
                .load(Ordering::Relaxed),
        }
    }

    /// Stops taking requests, answers every request queued before this one, and stops the
    /// writer; every handle's later calls answer `Unavailable`.
    pub async fn shutdown(self) {
        let (reply, done) = oneshot::channel();
        if self
            .requests
            .send(Request::Shutdown { reply })
            .await
            .is_ok()
        {
            // An error means the task is gone already, which is what was asked.
            let _ = done.await;
        }
    }

    fn check_size(&self, size: usize, what: &str) -> Result<()> {
        if size > self.batch_transfers_max {
            return Err(Error::limit(
                "batch_transfers_max",
                format!(
                    "a request carries at most {} {what}; this one has {size}",
                    self.batch_transfers_max
                ),
            ));
        }
        Ok(())
    }

    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Unavailable("the ledger writer has stopped".into())
}

/// Reads the whole ledger from storage and rebuilds the engine, on a blocking thread: the replay
/// of a long history is CPU work that must not hold up the runtime.
async fn restore(store: &Store) -> Result<Ledger> {
    let accounts = store.ledger_accounts().await?;
    let mut records = Vec::new();
    let mut after_seq = 0;
    loop {
        let page = store.ledger_records(after_seq, RESTORE_PAGE_ROWS).await?;
        let last_page = page.len() < RESTORE_PAGE_ROWS as usize;
        for (seq, record) in page {
            after_seq = seq;
            records.push(record);
        }
        if last_page {
            break;
        }
    }
    let failures = store.ledger_failures().await?;
    tokio::task::spawn_blocking(move || Ledger::restore(accounts, records, failures))
        .await
        .map_err(|e| Error::Internal(format!("restoring the ledger panicked: {e}")))?
        .map_err(|e| Error::Internal(format!("the ledger's stored history does not restore: {e}")))
}

/// The writer task's state.
struct Writer {
    store: Store,
    /// The epoch this writer claimed; every append checks that it is still the ledger's.
    epoch: i64,
    /// Set once a later writer claimed the ledger: this one answers everything with it.
    fenced: Option<Error>,
    /// `None` after a failed write whose restore failed too: the next group restores first.
    ledger: Option<Ledger>,
    expiry_check: Duration,
    batch_transfers_max: usize,
    requests: mpsc::Receiver<Request>,
    counters: Arc<Counters>,
    /// A request taken off the queue that did not fit in the group before: it starts the next.
    held: Option<Request>,
    shutdown_replies: Vec<oneshot::Sender<()>>,
    /// After an expiry failed to persist, the timer does not fire again before this instant.
    expiry_not_before: Option<Instant>,
    // Buffers of one group, kept between groups so that their room is reused.
    applied: Applied,
    records: Vec<TransferRecord>,
    failures: Vec<FailedTransfer>,
    touched: Vec<AccountId>,
    touched_set: HashSet<AccountId>,
    created: Vec<Account>,
}

/// What woke the idle writer.
enum Wake {
    Request(Request),
    Expiry,
}

/// An answer decided while applying a group, sent once the group is committed (or failed).
enum Answer {
    Accounts(Reply<Vec<AccountResult>>, Vec<AccountResult>),
    Transfers(Reply<Vec<TransferResult>>, Vec<TransferResult>),
    Account(Reply<Option<Account>>, AccountId),
}

impl Writer {
    async fn run(mut self) {
        loop {
            let first = match self.held.take() {
                Some(request) => Some(request),
                None => match self.wait().await {
                    Some(Wake::Request(request)) => Some(request),
                    Some(Wake::Expiry) => None,
                    // Every handle is gone, or shutdown was asked and the queue is drained.
                    None => break,
                },
            };
            let mut group = Vec::new();
            let mut group_size = 0;
            if let Some(first) = first {
                group_size += first.size();
                group.push(first);
            }
            while let Ok(request) = self.requests.try_recv() {
                if group_size + request.size() > self.batch_transfers_max {
                    self.held = Some(request);
                    break;
                }
                group_size += request.size();
                group.push(request);
            }
            self.process(group).await;
        }
        for reply in self.shutdown_replies.drain(..) {
            let _ = reply.send(());
        }
    }

    /// Waits for the next request, or for the next pending transfer to expire.
    async fn wait(&mut self) -> Option<Wake> {
        let deadline = self
            .ledger
            .as_ref()
            .and_then(Ledger::next_expiry)
            .map(|expires_at| {
                let until_expiry = expires_at.as_micros() - Timestamp::now().as_micros();
                let sleep = Duration::from_micros(until_expiry.max(0).unsigned_abs())
                    .min(self.expiry_check);
                let deadline = Instant::now() + sleep;
                self.expiry_not_before
                    .map_or(deadline, |not_before| deadline.max(not_before))
            });
        tokio::select! {
            biased;
            request = self.requests.recv() => request.map(Wake::Request),
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Some(Wake::Expiry)
            }
        }
    }

    /// Applies a group in order, persists it in one transaction, then answers every request.
    async fn process(&mut self, group: Vec<Request>) {
        if let Some(fenced) = self.fenced.clone() {
            self.answer_requests_with(group, &fenced);
            return;
        }
        let mut ledger = match self.ledger.take() {
            Some(ledger) => ledger,
            None => match restore(&self.store).await {
                Ok(ledger) => ledger,
                Err(error) => {
                    tracing::error!(%error, "the ledger writer cannot restore the ledger");
                    let error = Error::Unavailable(format!(
                        "the ledger cannot be read back from storage: {error}"
                    ));
                    self.answer_requests_with(group, &error);
                    return;
                }
            },
        };

        self.records.clear();
        self.failures.clear();
        self.touched.clear();
        self.touched_set.clear();
        self.created.clear();
        // One instant for the whole group: expiries due now are swept first, as the engine does
        // for every batch; a timer wake with no transfer request needs this call alone.
        let now = Timestamp::now();
        ledger.expire_into(now, &mut self.applied);
        self.collect_applied();
        let mut answers = Vec::with_capacity(group.len());
        let mut transfer_count = 0;
        for request in group {
            match request {
                Request::CreateAccounts { accounts, reply } => {
                    let results = ledger.create_accounts(&accounts);
                    self.created.extend(
                        accounts
                            .into_iter()
                            .zip(&results)
                            .filter(|(_, result)| **result == AccountResult::Created)
                            .map(|(account, _)| account),
                    );
                    answers.push(Answer::Accounts(reply, results));
                }
                Request::Transfer { transfers, reply } => {
                    transfer_count += transfers.len();
                    ledger.apply_into(&transfers, now, &mut self.applied);
                    let results = std::mem::take(&mut self.applied.results);
                    self.collect_applied();
                    answers.push(Answer::Transfers(reply, results));
                }
                Request::Account { id, reply } => answers.push(Answer::Account(reply, id)),
                Request::Shutdown { reply } => {
                    // Requests queued before the close are still received: they drain.
                    self.requests.close();
                    self.shutdown_replies.push(reply);
                }
            }
        }

        let unchanged =
            self.created.is_empty() && self.records.is_empty() && self.failures.is_empty();
        let outcome = if unchanged {
            // Nothing changed (replays, refusals that do not stay failed, reads): nothing to make durable.
            Ok(false)
        } else {
            self.persist(&ledger).await.map(|()| true)
        };
        match outcome {
            Ok(committed) => {
                if committed {
                    self.count_commit(transfer_count);
                }
                self.expiry_not_before = None;
                answer(answers, &Ok(()), Some(&ledger));
                self.ledger = Some(ledger);
            }
            Err(Error::Conflict(reason)) if reason.contains("another ledger writer claimed") => {
                tracing::error!(%reason, "the ledger writer was fenced out by a later one and stops writing");
                let fenced = Error::Unavailable(reason);
                self.fenced = Some(fenced.clone());
                self.ledger = None;
                answer(answers, &Err(fenced), None);
            }
            Err(error) => {
                tracing::error!(%error, "the ledger writer could not persist a group; restoring from storage");
                drop(ledger);
                self.expiry_not_before = Some(Instant::now() + self.expiry_check);
                self.ledger = match restore(&self.store).await {
                    Ok(restored) => Some(restored),
                    Err(restore_error) => {
                        tracing::error!(error = %restore_error, "the ledger writer cannot restore the ledger");
                        None
                    }
                };
                answer(answers, &Err(error), self.ledger.as_ref());
            }
        }
    }

    /// Moves what the last engine call produced into the group's buffers.
    fn collect_applied(&mut self) {
        self.records.append(&mut self.applied.records);
        self.failures.append(&mut self.applied.failures);
        for &id in &self.applied.touched {
            if self.touched_set.insert(id) {
                self.touched.push(id);
            }
        }
    }

    /// Writes the group: its new accounts, then one ledger batch with the touched accounts' final state.
    async fn persist(&mut self, ledger: &Ledger) -> Result<()> {
        let accounts: Vec<Account> = self
            .touched
            .iter()
            .map(|&id| {
                ledger
                    .account(id)
                    .expect("the engine touches only accounts it holds")
                    .clone()
            })
            .collect();
        let mut tx = self.store.write_ledger().await?;
        tx.fence_ledger_writer(self.epoch).await?;
        if !self.created.is_empty() {
            tx.insert_ledger_accounts(&self.created).await?;
        }
        if !self.records.is_empty() || !self.failures.is_empty() {
            tx.append_ledger_batch(&LedgerBatch {
                records: &self.records,
                failures: &self.failures,
                accounts: &accounts,
            })
            .await?;
        }
        tx.commit().await
    }

    fn count_commit(&self, transfer_count: usize) {
        let size = transfer_count as u64;
        self.counters
            .batches_committed
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .transfers_committed
            .fetch_add(size, Ordering::Relaxed);
        self.counters
            .batch_transfers_largest
            .fetch_max(size, Ordering::Relaxed);
    }

    /// Answers requests that were never applied.
    fn answer_requests_with(&mut self, group: Vec<Request>, error: &Error) {
        for request in group {
            match request {
                Request::CreateAccounts { reply, .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
                Request::Transfer { reply, .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
                Request::Account { reply, .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
                Request::Shutdown { reply } => {
                    self.requests.close();
                    self.shutdown_replies.push(reply);
                }
            }
        }
    }
}

/// Sends every answer of a group: its results if the group committed, else the error. Reads
/// are answered from `ledger` either way (after a failure, the restored one), or with the
/// error when there is none.
fn answer(answers: Vec<Answer>, outcome: &Result<()>, ledger: Option<&Ledger>) {
    // A client that stopped waiting dropped its receiver; its answer has nowhere to go.
    for answer in answers {
        match answer {
            Answer::Accounts(reply, results) => {
                let _ = reply.send(outcome.clone().map(|()| results));
            }
            Answer::Transfers(reply, results) => {
                let _ = reply.send(outcome.clone().map(|()| results));
            }
            Answer::Account(reply, id) => {
                let account = match ledger {
                    Some(ledger) => Ok(ledger.account(id).cloned()),
                    // Only a failed group comes without a ledger.
                    None => Err(outcome.clone().err().unwrap_or_else(stopped)),
                };
                let _ = reply.send(account);
            }
        }
    }
}
