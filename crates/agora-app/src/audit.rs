//! Reading the audit log and the event feed, signed checkpoints, and verifying the chain.

use agora_domain::audit::{
    AuditEntry, ChainBreak, ChainLink, ChainVerifier, Hash32, checkpoint_message,
};
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::event::Event;
use agora_domain::model::Checkpoint;
use agora_domain::{Error, OrgId, Result, Timestamp};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use agora_store::{AuditFilter, AuditVisitor, Store};

use crate::secrets::verify_signature;
use crate::{App, Call, Page};

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainReport {
    pub entries: i64,
    pub head: Hash32,
    /// Signed checkpoints found consistent with the chain.
    pub checkpoints_checked: usize,
}

/// Called with the number of entries checked so far, for progress bars.
pub type VerifyProgress<'a> = &'a mut dyn FnMut(i64, i64);

/// Verifies the whole chain in the database: every entry's hash and link, that the head
/// matches the last entry (nothing cut from the end), and every stored checkpoint's signature
/// and place in the chain. Streams the entries, so memory stays flat whatever the log's length.
pub async fn verify_chain(
    store: &Store,
    public_key_hex: &str,
    progress: VerifyProgress<'_>,
) -> Result<Result<ChainReport, ChainBreak>> {
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut checkpoints = store.checkpoints(None, u32::MAX).await?;
    checkpoints.sort_by_key(|checkpoint| checkpoint.seq);
    let checked = Arc::new(AtomicI64::new(0));
    let walk = ChainWalk {
        verifier: ChainVerifier::from_genesis(),
        checkpoints: checkpoints.into_iter().collect(),
        public_key_hex: public_key_hex.to_owned(),
        checkpoints_checked: 0,
        outcome: Ok(()),
        checked: checked.clone(),
    };
    // Report progress while the scan runs on its own thread.
    let scan = store.for_each_audit_entry(0, walk);
    tokio::pin!(scan);
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(200));
    let walk = loop {
        tokio::select! {
            walk = &mut scan => break walk?,
            _ = ticker.tick() => progress(checked.load(Ordering::Relaxed), head_seq),
        }
    };
    progress(walk.verifier.last_seq(), head_seq);
    if let Err(chain_break) = walk.outcome {
        return Ok(Err(chain_break));
    }
    let verifier = walk.verifier;
    if verifier.last_seq() != head_seq {
        return Ok(Err(ChainBreak::Missing {
            expected: verifier.last_seq() + 1,
            found: head_seq,
        }));
    }
    if verifier.head() != head_hash {
        return Ok(Err(ChainBreak::Edited { seq: head_seq }));
    }
    if let Some(checkpoint) = walk.checkpoints.front() {
        return Ok(Err(ChainBreak::Missing {
            expected: verifier.last_seq() + 1,
            found: checkpoint.seq,
        }));
    }
    Ok(Ok(ChainReport {
        entries: verifier.last_seq(),
        head: verifier.head(),
        checkpoints_checked: walk.checkpoints_checked,
    }))
}

/// The state of a verification as entries stream past.
struct ChainWalk {
    verifier: ChainVerifier,
    /// Checkpoints not yet reached, oldest first.
    checkpoints: VecDeque<Checkpoint>,
    public_key_hex: String,
    checkpoints_checked: usize,
    outcome: Result<(), ChainBreak>,
    /// Entries checked so far, for the progress report.
    checked: Arc<AtomicI64>,
}

impl AuditVisitor for ChainWalk {
    fn visit(&mut self, entry: AuditEntry) -> ControlFlow<()> {
        let result = self.check(&entry);
        if entry.seq % 1024 == 0 {
            self.checked.store(entry.seq, Ordering::Relaxed);
        }
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(chain_break) => {
                self.outcome = Err(chain_break);
                ControlFlow::Break(())
            }
        }
    }
}

impl ChainWalk {
    fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        self.verifier.push_entry(entry)?;
        while let Some(checkpoint) = self
            .checkpoints
            .front()
            .filter(|checkpoint| checkpoint.seq <= entry.seq)
        {
            if checkpoint.seq != entry.seq || checkpoint.head_hash != entry.entry_hash {
                return Err(ChainBreak::Unlinked {
                    seq: checkpoint.seq.max(1),
                });
            }
            let message = checkpoint_message(checkpoint.seq, &checkpoint.head_hash, checkpoint.at);
            if checkpoint.key_id != self.public_key_hex
                || !verify_signature(&checkpoint.key_id, &message, &checkpoint.signature)
            {
                return Err(ChainBreak::BadSignature {
                    seq: checkpoint.seq,
                });
            }
            self.checkpoints_checked += 1;
            self.checkpoints.pop_front();
        }
        Ok(())
    }
}

impl App {
    /// Entries that concern `org_id`, or all entries when `org_id` is `None` (operator auditors).
    pub async fn audit_entries(
        &self,
        call: &Call<'_>,
        org_id: Option<OrgId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEntry>> {
        match org_id {
            Some(org_id) => {
                self.authorize(
                    call,
                    Action::AuditRead,
                    &Resource::Organisation(org_id),
                    &Context::default(),
                )
                .await?
            }
            None => {
                self.authorize(
                    call,
                    Action::AuditReadAll,
                    &Resource::Instance,
                    &Context::default(),
                )
                .await?
            }
        }
        let limit = self.page_limit(limit)?;
        let after_seq = parse_seq_cursor(cursor)?;
        let entries = self
            .store()
            .audit_entries(AuditFilter {
                org_id,
                after_seq,
                limit: limit + 1,
            })
            .await?;
        Ok(Page::from_overfetch(entries, limit, |entry| {
            entry.seq.to_string()
        }))
    }

    /// The chain without contents: every party may check it, and check its own entries against it.
    pub async fn audit_chain(
        &self,
        call: &Call<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ChainLink>> {
        self.authorize(
            call,
            Action::AuditChainRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let limit = match limit {
            // Verifiers read the chain in big pages; the entries are small.
            Some(limit) if limit > 10_000 => {
                return Err(Error::invalid(
                    "limit",
                    "must be at most 10000 for the chain",
                ));
            }
            Some(0) => return Err(Error::invalid("limit", "must be at least 1")),
            Some(limit) => limit,
            None => 1_000,
        };
        let after_seq = parse_seq_cursor(cursor)?;
        let entries = self
            .store()
            .audit_entries(AuditFilter {
                org_id: None,
                after_seq,
                limit: limit + 1,
            })
            .await?;
        let links = entries.iter().map(AuditEntry::link).collect();
        Ok(Page::from_overfetch(links, limit, |link: &ChainLink| {
            link.seq.to_string()
        }))
    }

    pub async fn checkpoints(
        &self,
        call: &Call<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Checkpoint>> {
        self.authorize(
            call,
            Action::AuditChainRead,
            &Resource::Instance,
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let before = cursor
            .map(|cursor| parse_seq_cursor(Some(cursor)))
            .transpose()?;
        let checkpoints = self.store().checkpoints(before, limit + 1).await?;
        Ok(Page::from_overfetch(checkpoints, limit, |checkpoint| {
            checkpoint.seq.to_string()
        }))
    }

    /// Appends its own audit entry, then signs the chain's head, which includes that entry.
    pub async fn create_checkpoint(&self, call: &Call<'_>) -> Result<Checkpoint> {
        let action = Action::AuditCheckpoint;
        self.authorize(call, action, &Resource::Instance, &Context::default())
            .await?;
        let mut tx = self.store().write().await?;
        // The checkpoint's own audit entry comes first, so that the checkpoint covers it.
        let resource = Resource::Instance;
        let record = crate::audit_record(
            call,
            action.as_str(),
            &resource,
            agora_domain::audit::Outcome::Succeeded,
            &serde_json::json!({}),
        );
        tx.append_audit(&record).await?;
        let (seq, head_hash) = tx.audit_head().await?;
        let at = Timestamp::now();
        let signature = self.key().sign(&checkpoint_message(seq, &head_hash, at));
        let checkpoint = Checkpoint {
            seq,
            head_hash,
            at,
            key_id: self.key().public_hex(),
            signature: hex::encode(signature),
        };
        tx.insert_checkpoint(&checkpoint, &signature).await?;
        let data = serde_json::json!({ "seq": seq, "head_hash": head_hash });
        tx.insert_event(&crate::event("audit.checkpointed", seq, None, data), at)
            .await?;
        tx.commit().await?;
        Ok(checkpoint)
    }

    /// Signs a checkpoint if entries were appended since the last one (for the periodic task).
    pub async fn checkpoint_if_moved(&self) -> Result<Option<Checkpoint>> {
        let (head_seq, _) = self.store().audit_head().await?;
        let last = self.store().checkpoints(None, 1).await?;
        if last
            .first()
            .is_some_and(|checkpoint| checkpoint.seq >= head_seq)
            || head_seq == 0
        {
            return Ok(None);
        }
        let system = agora_domain::Actor::system();
        self.create_checkpoint(&Call::new(&system, agora_domain::RequestId::new()))
            .await
            .map(Some)
    }

    /// Events in one organisation's feed, after the cursor. Unlike listings, the feed's
    /// `next_cursor` is never empty: poll with it to get the events that arrive later.
    pub async fn events(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Event>> {
        self.authorize(
            call,
            Action::EventRead,
            &Resource::Organisation(org_id),
            &Context::default(),
        )
        .await?;
        let limit = self.page_limit(limit)?;
        let after_seq = parse_seq_cursor(cursor)?;
        let events = self.store().events(Some(org_id), after_seq, limit).await?;
        // A feed always gives a cursor, even at its end, so that a poller can ask for what comes next.
        let next_cursor = Some(
            events
                .last()
                .map_or(after_seq, |event| event.seq)
                .to_string(),
        );
        Ok(Page {
            items: events,
            next_cursor,
        })
    }

    /// Verifies the chain in this instance's database with its own key.
    pub async fn verify_chain(
        &self,
        progress: VerifyProgress<'_>,
    ) -> Result<Result<ChainReport, ChainBreak>> {
        verify_chain(self.store(), &self.key().public_hex(), progress).await
    }
}

fn parse_seq_cursor(cursor: Option<&str>) -> Result<i64> {
    match cursor {
        None => Ok(0),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq >= 0)
            .ok_or_else(|| Error::invalid("cursor", "is not a cursor this listing gave out")),
    }
}
