//! Short-lived copies of what every authenticated read needs: the actor behind a token or a
//! portal session, and organisations by id.
//!
//! Each entry lives at most `cache_ttl_ms` and every identity change made through this `App`
//! clears the cache at once, so on one server (always the case with SQLite) a revocation or a
//! role change takes effect on the next request. Several servers sharing PostgreSQL do not see
//! each other's clears: there a change takes effect everywhere within `cache_ttl_ms`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use agora_domain::authz::{Action, Context, Resource};
use agora_domain::model::Organisation;
use agora_domain::{Actor, OrgId, Timestamp};
use agora_policy::Decision;

/// Entries kept at most per map; past it the map starts afresh (a cache, not a store).
const ENTRIES_MAX: usize = 100_000;

#[derive(Clone)]
struct CachedToken {
    secret_hash: Vec<u8>,
    actor: Actor,
    expires_at: Option<Timestamp>,
    cached_at: Instant,
}

/// What a decision depends on: Cedar decides from these alone, with policies fixed for the process.
type DecisionKey = (Actor, Action, Resource, Context);

pub(crate) struct Cache {
    ttl: Duration,
    /// Decisions never go stale: policies are loaded once at start-up and the key holds every
    /// input. Kept apart from the TTL entries and never cleared by changes.
    decisions: RwLock<HashMap<DecisionKey, Decision>>,
    tokens: RwLock<HashMap<String, CachedToken>>,
    orgs: RwLock<HashMap<OrgId, (Organisation, Instant)>>,
    /// Portal sessions by the SHA-256 of their cookie secret.
    sessions: RwLock<HashMap<Vec<u8>, (crate::PortalSession, Instant)>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            decisions: RwLock::default(),
            tokens: RwLock::default(),
            orgs: RwLock::default(),
            sessions: RwLock::default(),
        }
    }

    /// The session behind a cookie secret's hash, if cached, fresh and unexpired at `now`.
    pub(crate) fn session(
        &self,
        secret_hash: &[u8],
        now: Timestamp,
    ) -> Option<crate::PortalSession> {
        if !self.enabled() {
            return None;
        }
        let sessions = self
            .sessions
            .read()
            .expect("cache lock is never poisoned: no panics while held");
        let (session, cached_at) = sessions.get(secret_hash)?;
        (cached_at.elapsed() < self.ttl
            && session.record.revoked_at.is_none()
            && now < session.record.expires_at)
            .then(|| session.clone())
    }

    pub(crate) fn put_session(&self, secret_hash: Vec<u8>, session: &crate::PortalSession) {
        if !self.enabled() {
            return;
        }
        let mut sessions = self
            .sessions
            .write()
            .expect("cache lock is never poisoned: no panics while held");
        if sessions.len() >= ENTRIES_MAX {
            sessions.clear();
        }
        sessions.insert(secret_hash, (session.clone(), Instant::now()));
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The actor for a token with this prefix, if cached, fresh, unexpired and of this secret hash.
    pub(crate) fn token(&self, prefix: &str, secret_hash: &[u8], now: Timestamp) -> Option<Actor> {
        if !self.enabled() {
            return None;
        }
        let tokens = self
            .tokens
            .read()
            .expect("cache lock is never poisoned: no panics while held");
        let cached = tokens.get(prefix)?;
        let fresh = cached.cached_at.elapsed() < self.ttl
            && cached.expires_at.is_none_or(|expiry| now < expiry);
        (fresh && crate::secrets::hashes_equal(&cached.secret_hash, secret_hash))
            .then(|| cached.actor.clone())
    }

    pub(crate) fn put_token(
        &self,
        prefix: &str,
        secret_hash: Vec<u8>,
        actor: Actor,
        expires_at: Option<Timestamp>,
    ) {
        if !self.enabled() {
            return;
        }
        let mut tokens = self
            .tokens
            .write()
            .expect("cache lock is never poisoned: no panics while held");
        if tokens.len() >= ENTRIES_MAX {
            tokens.clear();
        }
        tokens.insert(
            prefix.to_owned(),
            CachedToken {
                secret_hash,
                actor,
                expires_at,
                cached_at: Instant::now(),
            },
        );
    }

    pub(crate) fn org(&self, org_id: OrgId) -> Option<Organisation> {
        if !self.enabled() {
            return None;
        }
        let orgs = self
            .orgs
            .read()
            .expect("cache lock is never poisoned: no panics while held");
        orgs.get(&org_id)
            .filter(|(_, cached_at)| cached_at.elapsed() < self.ttl)
            .map(|(org, _)| org.clone())
    }

    pub(crate) fn put_org(&self, org: &Organisation) {
        if !self.enabled() {
            return;
        }
        let mut orgs = self
            .orgs
            .write()
            .expect("cache lock is never poisoned: no panics while held");
        if orgs.len() >= ENTRIES_MAX {
            orgs.clear();
        }
        orgs.insert(org.id, (org.clone(), Instant::now()));
    }

    /// Decides through `decide` once per distinct input, then from memory.
    pub(crate) fn decision(&self, key: DecisionKey, decide: impl FnOnce() -> Decision) -> Decision {
        if let Some(decision) = self
            .decisions
            .read()
            .expect("cache lock is never poisoned: no panics while held")
            .get(&key)
        {
            return decision.clone();
        }
        let decision = decide();
        let mut decisions = self
            .decisions
            .write()
            .expect("cache lock is never poisoned: no panics while held");
        if decisions.len() >= ENTRIES_MAX {
            decisions.clear();
        }
        decisions.insert(key, decision.clone());
        decision
    }

    /// Forgets everything: called after any change to organisations, memberships or tokens.
    pub(crate) fn clear(&self) {
        self.tokens
            .write()
            .expect("cache lock is never poisoned: no panics while held")
            .clear();
        self.orgs
            .write()
            .expect("cache lock is never poisoned: no panics while held")
            .clear();
        self.sessions
            .write()
            .expect("cache lock is never poisoned: no panics while held")
            .clear();
    }
}
