//! The tamper-evident audit log: what an entry holds, how it is hashed, how a chain is verified.
//!
//! Each entry has a content digest (SHA-256 over its fields, length-prefixed so that no two
//! different entries encode alike) and an entry hash that commits to the previous entry's hash
//! and its own digest. Changing, removing or reordering any entry breaks every later link.
//! A party that may not read an entry's content can still check the chain from the digests,
//! and check the content of the entries it may read against theirs.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{OrgId, RequestId, Timestamp, UserId};

/// A 32-byte SHA-256 value, shown as lower-case hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The hash that the first entry's `prev_hash` holds.
    pub const GENESIS: Hash32 = Hash32([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, crate::Error> {
        let bytes =
            hex::decode(text).map_err(|_| crate::Error::invalid("hash", "not hexadecimal"))?;
        Self::from_slice(&bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, crate::Error> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| crate::Error::invalid("hash", "must be 32 bytes"))?;
        Ok(Self(array))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// Authorized and done.
    Succeeded,
    /// Refused by authorization.
    Denied,
    /// Authorized but refused by a rule of the domain (a conflict, an invalid value).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        match text {
            "succeeded" => Ok(Outcome::Succeeded),
            "denied" => Ok(Outcome::Denied),
            "failed" => Ok(Outcome::Failed),
            other => Err(crate::Error::invalid(
                "outcome",
                format!("unknown outcome `{other}`"),
            )),
        }
    }
}

/// What an audit entry says, before the log gives it a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub at: Timestamp,
    pub request_id: Option<RequestId>,
    /// The user who acted; `None` for the instance itself.
    pub actor_user_id: Option<UserId>,
    /// The organisation the actor acted for.
    pub actor_org_id: Option<OrgId>,
    /// How the actor authenticated: `token:tok_…`, `session:ses_…` or `system`.
    pub credential: String,
    /// The action's name, as in the authorization policies (`org.create`).
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// The organisation whose resource it was, so that it can read this entry too.
    pub subject_org_id: Option<OrgId>,
    pub outcome: Outcome,
    /// JSON text with what else matters (the refusing rule, the role granted). Hashed as stored.
    pub detail: String,
}

impl AuditRecord {
    /// SHA-256 over every field, each length-prefixed, with the entry's sequence number.
    pub fn content_digest(&self, seq: i64) -> Hash32 {
        let mut hasher = Sha256::new();
        hasher.update(b"agora-audit-entry-v1");
        hasher.update(seq.to_be_bytes());
        hasher.update(self.at.as_micros().to_be_bytes());
        let optional = |value: Option<String>| value.unwrap_or_default();
        for field in [
            optional(self.request_id.map(|id| id.to_string())),
            optional(self.actor_user_id.map(|id| id.to_string())),
            optional(self.actor_org_id.map(|id| id.to_string())),
            self.credential.clone(),
            self.action.clone(),
            self.resource_type.clone(),
            self.resource_id.clone(),
            optional(self.subject_org_id.map(|id| id.to_string())),
            self.outcome.as_str().to_owned(),
            self.detail.clone(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        Hash32(hasher.finalize().into())
    }
}

/// The hash that links an entry to the one before it.
pub fn entry_hash(prev_hash: &Hash32, content_digest: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update(b"agora-audit-chain-v1");
    hasher.update(prev_hash.0);
    hasher.update(content_digest.0);
    Hash32(hasher.finalize().into())
}

/// An entry as the log stores it: its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    pub prev_hash: Hash32,
    pub entry_hash: Hash32,
}

/// An entry's place in the chain without its content: what every party may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainLink {
    pub seq: i64,
    pub prev_hash: Hash32,
    pub content_digest: Hash32,
    pub entry_hash: Hash32,
}

impl AuditEntry {
    pub fn link(&self) -> ChainLink {
        ChainLink {
            seq: self.seq,
            prev_hash: self.prev_hash,
            content_digest: self.record.content_digest(self.seq),
            entry_hash: self.entry_hash,
        }
    }
}

/// Where and how a chain stops being valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq} was edited: its content no longer matches its hash")]
    Edited { seq: i64 },
    #[error("entry {expected} is missing: the log jumps from entry {} to entry {found}; entries were removed", expected - 1)]
    Missing { expected: i64, found: i64 },
    #[error("entry {seq} does not link to entry {}: entries were edited, inserted or reordered there", seq - 1)]
    Unlinked { seq: i64 },
    #[error("entry {seq} is out of order: expected entry {expected}")]
    OutOfOrder { seq: i64, expected: i64 },
    #[error("the checkpoint at entry {seq} is not signed by this instance's key")]
    BadSignature { seq: i64 },
}

impl ChainBreak {
    /// The sequence number of the first entry that is not as it was written.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Edited { seq }
            | ChainBreak::Unlinked { seq }
            | ChainBreak::OutOfOrder { seq, .. }
            | ChainBreak::BadSignature { seq } => *seq,
            ChainBreak::Missing { expected, .. } => *expected,
        }
    }
}

/// Checks links one at a time, in order, so that a chain of any length verifies in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    head: Hash32,
}

impl ChainVerifier {
    /// Starts at the beginning of the log.
    pub fn from_genesis() -> Self {
        Self {
            next_seq: 1,
            head: Hash32::GENESIS,
        }
    }

    /// Starts after a trusted point, such as a signed checkpoint: entry `seq` had hash `head`.
    pub fn from_trusted(seq: i64, head: Hash32) -> Self {
        Self {
            next_seq: seq + 1,
            head,
        }
    }

    /// Checks one link whose content digest was computed by the caller from the stored fields.
    pub fn push(
        &mut self,
        link: &ChainLink,
        stored_digest_matches: bool,
    ) -> Result<(), ChainBreak> {
        if link.seq < self.next_seq {
            return Err(ChainBreak::OutOfOrder {
                seq: link.seq,
                expected: self.next_seq,
            });
        }
        if link.seq > self.next_seq {
            return Err(ChainBreak::Missing {
                expected: self.next_seq,
                found: link.seq,
            });
        }
        if !stored_digest_matches
            || entry_hash(&link.prev_hash, &link.content_digest) != link.entry_hash
        {
            return Err(ChainBreak::Edited { seq: link.seq });
        }
        if link.prev_hash != self.head {
            return Err(ChainBreak::Unlinked { seq: link.seq });
        }
        self.head = link.entry_hash;
        self.next_seq += 1;
        Ok(())
    }

    /// Checks a full entry: recomputes its digest from its fields.
    pub fn push_entry(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        self.push(&entry.link(), true)
    }

    /// The number of the last entry checked (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.next_seq - 1
    }

    pub fn head(&self) -> Hash32 {
        self.head
    }
}

/// The message an instance signs for a checkpoint of its chain head.
pub fn checkpoint_message(seq: i64, head: &Hash32, at: Timestamp) -> Vec<u8> {
    format!(
        "agora-audit-checkpoint-v1\n{seq}\n{}\n{}\n",
        head.to_hex(),
        at.as_micros()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> AuditRecord {
        AuditRecord {
            at: Timestamp::from_micros(1_000),
            request_id: None,
            actor_user_id: None,
            actor_org_id: None,
            credential: "system".into(),
            action: action.into(),
            resource_type: "instance".into(),
            resource_id: "instance".into(),
            subject_org_id: None,
            outcome: Outcome::Succeeded,
            detail: "{}".into(),
        }
    }

    fn chain(count: i64) -> Vec<AuditEntry> {
        let mut prev = Hash32::GENESIS;
        (1..=count)
            .map(|seq| {
                let record = record(&format!("action.{seq}"));
                let hash = entry_hash(&prev, &record.content_digest(seq));
                let entry = AuditEntry {
                    seq,
                    record,
                    prev_hash: prev,
                    entry_hash: hash,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn verify(entries: &[AuditEntry]) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::from_genesis();
        for entry in entries {
            verifier.push_entry(entry)?;
        }
        Ok(verifier.last_seq())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(10)), Ok(10));
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut entries = chain(10);
        entries[4].record.action = "forged".into();
        assert_eq!(verify(&entries), Err(ChainBreak::Edited { seq: 5 }));
    }

    #[test]
    fn an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() {
        let mut entries = chain(10);
        entries[4].record.action = "forged".into();
        entries[4].entry_hash =
            entry_hash(&entries[4].prev_hash, &entries[4].record.content_digest(5));
        assert_eq!(verify(&entries), Err(ChainBreak::Unlinked { seq: 6 }));
    }

    #[test]
    fn a_removed_entry_is_named() {
        let mut entries = chain(10);
        entries.remove(6);
        assert_eq!(
            verify(&entries),
            Err(ChainBreak::Missing {
                expected: 7,
                found: 8
            })
        );
    }

    #[test]
    fn reordered_entries_are_caught() {
        let mut entries = chain(10);
        entries.swap(2, 3);
        assert_eq!(
            verify(&entries),
            Err(ChainBreak::Missing {
                expected: 3,
                found: 4
            })
        );
        // Swapping contents while keeping the numbers is an edit at the first swapped place.
        let mut entries = chain(10);
        let (third, fourth) = (entries[2].clone(), entries[3].clone());
        entries[2] = AuditEntry { seq: 3, ..fourth };
        entries[3] = AuditEntry { seq: 4, ..third };
        assert_eq!(verify(&entries), Err(ChainBreak::Edited { seq: 3 }));
    }

    #[test]
    fn digests_separate_fields() {
        let mut one = record("ab");
        one.resource_type = "c".into();
        let mut two = record("a");
        two.resource_type = "bc".into();
        assert_ne!(one.content_digest(1), two.content_digest(1));
    }
}
