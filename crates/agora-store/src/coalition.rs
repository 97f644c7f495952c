//! Coalitions: the coalition and its charter, members, goals, pledges and their fulfilment
//! reports, delegations, proposals with every ballot, and the statistics proposals published.
//!
//! Records are JSON documents (the app's types, from `agora-coalition`) beside the columns that
//! lookups and ordering need; the store does not read the documents.

use agora_domain::{Error, GoalId, OrgId, PledgeId, ProposalId, Result, Timestamp};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get};

/// A coalition as stored: the organisation it is, and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalitionRecord {
    pub id: OrgId,
    pub founded_by: OrgId,
    pub doc_json: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A member organisation of a coalition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalitionMemberRecord {
    pub coalition_id: OrgId,
    pub org_id: OrgId,
    /// `steward` or `member`.
    pub role: String,
    pub stake: i64,
    pub joined_at: Timestamp,
}

/// A goal, pledge or publication: an id and its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord<Id> {
    pub id: Id,
    pub coalition_id: OrgId,
    pub doc_json: String,
    pub at: Timestamp,
}

/// A fulfilment report on a pledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfilmentRecord {
    pub pledge_id: PledgeId,
    pub quantity: i64,
    pub note: String,
    pub reported_at: Timestamp,
}

/// A delegation: `from` votes through `to` on `topic` ('' for every topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationRecord {
    pub from: OrgId,
    pub topic: String,
    pub to: OrgId,
    pub created_at: Timestamp,
}

/// A proposal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalRecord {
    pub id: ProposalId,
    pub coalition_id: OrgId,
    pub number: i64,
    pub status: String,
    pub closes_at: Timestamp,
    pub revision: i64,
    pub doc_json: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One ballot, in the order ballots were cast on its proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BallotRecord {
    pub seq: i64,
    pub voter: OrgId,
    pub doc_json: String,
    pub cast_at: Timestamp,
}

fn coalition_from_row(row: &AnyRow) -> Result<CoalitionRecord> {
    Ok(CoalitionRecord {
        id: column(row, "org_id")?,
        founded_by: column(row, "founded_by")?,
        doc_json: get(row, "doc_json")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn member_from_row(row: &AnyRow) -> Result<CoalitionMemberRecord> {
    Ok(CoalitionMemberRecord {
        coalition_id: column(row, "coalition_id")?,
        org_id: column(row, "org_id")?,
        role: get(row, "role")?,
        stake: get(row, "stake")?,
        joined_at: Timestamp::from_micros(get(row, "joined_at_us")?),
    })
}

fn proposal_from_row(row: &AnyRow) -> Result<ProposalRecord> {
    Ok(ProposalRecord {
        id: column(row, "id")?,
        coalition_id: column(row, "coalition_id")?,
        number: get(row, "number")?,
        status: get(row, "status")?,
        closes_at: Timestamp::from_micros(get(row, "closes_at_us")?),
        revision: get(row, "revision")?,
        doc_json: get(row, "doc_json")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn delegation_from_row(row: &AnyRow) -> Result<DelegationRecord> {
    Ok(DelegationRecord {
        from: column(row, "from_org_id")?,
        topic: get(row, "topic")?,
        to: column(row, "to_org_id")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
    })
}

/// A goal, pledge or publication row: `id`, `coalition_id`, `doc_json` and the time in `at_column`.
fn doc_from_row<Id: std::str::FromStr<Err = Error>>(
    row: &AnyRow,
    at_column: &str,
) -> Result<DocRecord<Id>> {
    Ok(DocRecord {
        id: column(row, "id")?,
        coalition_id: column(row, "coalition_id")?,
        doc_json: get(row, "doc_json")?,
        at: Timestamp::from_micros(get(row, at_column)?),
    })
}

const PROPOSAL_COLUMNS: &str = "id, coalition_id, number, status, closes_at_us, revision, doc_json, created_at_us, updated_at_us";

impl Store {
    pub async fn coalition(&self, id: OrgId) -> Result<Option<CoalitionRecord>> {
        let row = sqlx::query(
            "SELECT org_id, founded_by, doc_json, created_at_us, updated_at_us FROM coalitions WHERE org_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(coalition_from_row).transpose()
    }

    /// Every coalition, oldest first.
    pub async fn coalitions(&self) -> Result<Vec<CoalitionRecord>> {
        let rows = sqlx::query(
            "SELECT org_id, founded_by, doc_json, created_at_us, updated_at_us FROM coalitions ORDER BY org_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(coalition_from_row).collect()
    }

    pub async fn coalition_members(&self, coalition: OrgId) -> Result<Vec<CoalitionMemberRecord>> {
        let rows = sqlx::query(
            "SELECT coalition_id, org_id, role, stake, joined_at_us FROM coalition_members \
             WHERE coalition_id = $1 ORDER BY joined_at_us, org_id",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(member_from_row).collect()
    }

    pub async fn coalition_member(
        &self,
        coalition: OrgId,
        org_id: OrgId,
    ) -> Result<Option<CoalitionMemberRecord>> {
        let row = sqlx::query(
            "SELECT coalition_id, org_id, role, stake, joined_at_us FROM coalition_members \
             WHERE coalition_id = $1 AND org_id = $2",
        )
        .bind(coalition.to_string())
        .bind(org_id.to_string())
        .fetch_optional(self.pool())
        .await
        .map_err(db_error)?;
        row.as_ref().map(member_from_row).transpose()
    }

    /// The coalitions an organisation is a member of.
    pub async fn coalitions_of_member(&self, org_id: OrgId) -> Result<Vec<OrgId>> {
        let rows = sqlx::query(
            "SELECT coalition_id FROM coalition_members WHERE org_id = $1 ORDER BY coalition_id",
        )
        .bind(org_id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| column(row, "coalition_id")).collect()
    }

    pub async fn coalition_goals(&self, coalition: OrgId) -> Result<Vec<DocRecord<GoalId>>> {
        let rows = sqlx::query(
            "SELECT id, coalition_id, doc_json, created_at_us FROM coalition_goals WHERE coalition_id = $1 ORDER BY id",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| doc_from_row(row, "created_at_us"))
            .collect()
    }

    pub async fn coalition_pledges(&self, coalition: OrgId) -> Result<Vec<DocRecord<PledgeId>>> {
        let rows = sqlx::query(
            "SELECT id, coalition_id, doc_json, updated_at_us FROM coalition_pledges WHERE coalition_id = $1 ORDER BY id",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| doc_from_row(row, "updated_at_us"))
            .collect()
    }

    pub async fn coalition_fulfilments(&self, coalition: OrgId) -> Result<Vec<FulfilmentRecord>> {
        let rows = sqlx::query(
            "SELECT pledge_id, quantity, note, reported_at_us FROM coalition_fulfilments \
             WHERE coalition_id = $1 ORDER BY reported_at_us",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(FulfilmentRecord {
                    pledge_id: column(row, "pledge_id")?,
                    quantity: get(row, "quantity")?,
                    note: get(row, "note")?,
                    reported_at: Timestamp::from_micros(get(row, "reported_at_us")?),
                })
            })
            .collect()
    }

    pub async fn coalition_delegations(&self, coalition: OrgId) -> Result<Vec<DelegationRecord>> {
        let rows = sqlx::query(
            "SELECT from_org_id, topic, to_org_id, created_at_us FROM coalition_delegations \
             WHERE coalition_id = $1 ORDER BY from_org_id, topic",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(delegation_from_row).collect()
    }

    pub async fn proposal(&self, id: ProposalId) -> Result<Option<ProposalRecord>> {
        let sql = format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    /// A coalition's proposals, newest first.
    pub async fn proposals(&self, coalition: OrgId) -> Result<Vec<ProposalRecord>> {
        let sql = format!(
            "SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE coalition_id = $1 ORDER BY number DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(coalition.to_string())
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(proposal_from_row).collect()
    }

    /// Proposals in `status` whose voting closed before `now` (for housekeeping), oldest first.
    pub async fn proposals_due(&self, status: &str, now: Timestamp) -> Result<Vec<ProposalId>> {
        let rows = sqlx::query(
            "SELECT id FROM proposals WHERE status = $1 AND closes_at_us <= $2 ORDER BY closes_at_us LIMIT 100",
        )
        .bind(status)
        .bind(now.as_micros())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| column(row, "id")).collect()
    }

    pub async fn coalition_publications(&self, coalition: OrgId) -> Result<Vec<DocRecord<String>>> {
        let rows = sqlx::query(
            "SELECT id, coalition_id, doc_json, published_at_us FROM coalition_publications \
             WHERE coalition_id = $1 ORDER BY published_at_us DESC",
        )
        .bind(coalition.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(DocRecord {
                    id: get(row, "id")?,
                    coalition_id: column(row, "coalition_id")?,
                    doc_json: get(row, "doc_json")?,
                    at: Timestamp::from_micros(get(row, "published_at_us")?),
                })
            })
            .collect()
    }
}

impl WriteTx {
    pub async fn insert_coalition(&mut self, coalition: &CoalitionRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalitions (org_id, founded_by, doc_json, created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(coalition.id.to_string())
        .bind(coalition.founded_by.to_string())
        .bind(&coalition.doc_json)
        .bind(coalition.created_at.as_micros())
        .bind(coalition.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Replaces the coalition's document, provided it was last changed at `expected_updated_at`.
    pub async fn update_coalition(
        &mut self,
        id: OrgId,
        expected_updated_at: Timestamp,
        doc_json: &str,
        at: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE coalitions SET doc_json = $1, updated_at_us = $2 WHERE org_id = $3 AND updated_at_us = $4",
        )
        .bind(doc_json)
        .bind(at.as_micros())
        .bind(id.to_string())
        .bind(expected_updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict(
                "the coalition changed meanwhile; read it again and retry".into(),
            ));
        }
        Ok(())
    }

    pub async fn upsert_coalition_member(&mut self, member: &CoalitionMemberRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalition_members (coalition_id, org_id, role, stake, joined_at_us) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (coalition_id, org_id) DO UPDATE SET role = excluded.role, stake = excluded.stake",
        )
        .bind(member.coalition_id.to_string())
        .bind(member.org_id.to_string())
        .bind(&member.role)
        .bind(member.stake)
        .bind(member.joined_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Removes a member and the delegations from or to it. Answers whether it was a member.
    pub async fn delete_coalition_member(
        &mut self,
        coalition: OrgId,
        org_id: OrgId,
    ) -> Result<bool> {
        sqlx::query(
            "DELETE FROM coalition_delegations WHERE coalition_id = $1 AND (from_org_id = $2 OR to_org_id = $2)",
        )
        .bind(coalition.to_string())
        .bind(org_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        let done =
            sqlx::query("DELETE FROM coalition_members WHERE coalition_id = $1 AND org_id = $2")
                .bind(coalition.to_string())
                .bind(org_id.to_string())
                .execute(self.conn())
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_coalition_goal(&mut self, goal: &DocRecord<GoalId>) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalition_goals (id, coalition_id, doc_json, created_at_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(goal.id.to_string())
        .bind(goal.coalition_id.to_string())
        .bind(&goal.doc_json)
        .bind(goal.at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_coalition_pledge(
        &mut self,
        pledge: &DocRecord<PledgeId>,
        member: OrgId,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalition_pledges (id, coalition_id, member_org_id, doc_json, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(pledge.id.to_string())
        .bind(pledge.coalition_id.to_string())
        .bind(member.to_string())
        .bind(&pledge.doc_json)
        .bind(pledge.at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Reads a pledge inside the transaction, after locking its row by touching it.
    pub async fn lock_coalition_pledge(
        &mut self,
        id: PledgeId,
    ) -> Result<Option<DocRecord<PledgeId>>> {
        sqlx::query("UPDATE coalition_pledges SET updated_at_us = updated_at_us WHERE id = $1")
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        let row = sqlx::query(
            "SELECT id, coalition_id, doc_json, updated_at_us FROM coalition_pledges WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.conn())
        .await
        .map_err(db_error)?;
        row.as_ref()
            .map(|row| doc_from_row(row, "updated_at_us"))
            .transpose()
    }

    pub async fn update_coalition_pledge(
        &mut self,
        id: PledgeId,
        doc_json: &str,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query("UPDATE coalition_pledges SET doc_json = $1, updated_at_us = $2 WHERE id = $3")
            .bind(doc_json)
            .bind(at.as_micros())
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_coalition_fulfilment(
        &mut self,
        coalition: OrgId,
        fulfilment: &FulfilmentRecord,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalition_fulfilments (pledge_id, coalition_id, quantity, note, reported_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(fulfilment.pledge_id.to_string())
        .bind(coalition.to_string())
        .bind(fulfilment.quantity)
        .bind(&fulfilment.note)
        .bind(fulfilment.reported_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// The coalition's delegations, read inside the transaction (to refuse a cycle).
    pub async fn coalition_delegations(
        &mut self,
        coalition: OrgId,
    ) -> Result<Vec<DelegationRecord>> {
        let rows = sqlx::query(
            "SELECT from_org_id, topic, to_org_id, created_at_us FROM coalition_delegations \
             WHERE coalition_id = $1 ORDER BY from_org_id, topic",
        )
        .bind(coalition.to_string())
        .fetch_all(self.conn())
        .await
        .map_err(db_error)?;
        rows.iter().map(delegation_from_row).collect()
    }

    /// Sets (or, with `to` = None, removes) `from`'s delegation on `topic`.
    pub async fn set_coalition_delegation(
        &mut self,
        coalition: OrgId,
        from: OrgId,
        topic: &str,
        to: Option<OrgId>,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM coalition_delegations WHERE coalition_id = $1 AND from_org_id = $2 AND topic = $3",
        )
        .bind(coalition.to_string())
        .bind(from.to_string())
        .bind(topic)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if let Some(to) = to {
            sqlx::query(
                "INSERT INTO coalition_delegations (coalition_id, from_org_id, topic, to_org_id, created_at_us) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(coalition.to_string())
            .bind(from.to_string())
            .bind(topic)
            .bind(to.to_string())
            .bind(at.as_micros())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }

    /// The next proposal number of a coalition.
    pub async fn next_proposal_number(&mut self, coalition: OrgId) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(number), 0) + 1 AS next FROM proposals WHERE coalition_id = $1",
        )
        .bind(coalition.to_string())
        .fetch_one(self.conn())
        .await
        .map_err(db_error)?;
        get(&row, "next")
    }

    pub async fn insert_proposal(&mut self, proposal: &ProposalRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO proposals (id, coalition_id, number, status, closes_at_us, revision, doc_json, created_at_us, updated_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(proposal.id.to_string())
        .bind(proposal.coalition_id.to_string())
        .bind(proposal.number)
        .bind(&proposal.status)
        .bind(proposal.closes_at.as_micros())
        .bind(proposal.revision)
        .bind(&proposal.doc_json)
        .bind(proposal.created_at.as_micros())
        .bind(proposal.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Locks a proposal's row for the rest of the transaction (by bumping its revision) and
    /// reads it, so that concurrent votes and closes on one proposal run one after the other.
    pub async fn lock_proposal(&mut self, id: ProposalId) -> Result<Option<ProposalRecord>> {
        sqlx::query("UPDATE proposals SET revision = revision + 1 WHERE id = $1")
            .bind(id.to_string())
            .execute(self.conn())
            .await
            .map_err(db_error)?;
        let sql = format!("SELECT {PROPOSAL_COLUMNS} FROM proposals WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    pub async fn update_proposal(&mut self, proposal: &ProposalRecord) -> Result<()> {
        sqlx::query(
            "UPDATE proposals SET status = $1, closes_at_us = $2, doc_json = $3, updated_at_us = $4 WHERE id = $5",
        )
        .bind(&proposal.status)
        .bind(proposal.closes_at.as_micros())
        .bind(&proposal.doc_json)
        .bind(proposal.updated_at.as_micros())
        .bind(proposal.id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Every ballot on a proposal, in the order cast.
    pub async fn proposal_ballots(&mut self, id: ProposalId) -> Result<Vec<BallotRecord>> {
        let rows = sqlx::query(
            "SELECT seq, voter_org_id, doc_json, cast_at_us FROM proposal_ballots WHERE proposal_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(self.conn())
        .await
        .map_err(db_error)?;
        rows.iter().map(ballot_from_row).collect()
    }

    pub async fn insert_ballot(
        &mut self,
        proposal: ProposalId,
        ballot: &BallotRecord,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO proposal_ballots (proposal_id, seq, voter_org_id, doc_json, cast_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(proposal.to_string())
        .bind(ballot.seq)
        .bind(ballot.voter.to_string())
        .bind(&ballot.doc_json)
        .bind(ballot.cast_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn insert_coalition_publication(
        &mut self,
        publication: &DocRecord<String>,
        proposal: ProposalId,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO coalition_publications (id, coalition_id, proposal_id, doc_json, published_at_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&publication.id)
        .bind(publication.coalition_id.to_string())
        .bind(proposal.to_string())
        .bind(&publication.doc_json)
        .bind(publication.at.as_micros())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

fn ballot_from_row(row: &AnyRow) -> Result<BallotRecord> {
    Ok(BallotRecord {
        seq: get(row, "seq")?,
        voter: column(row, "voter_org_id")?,
        doc_json: get(row, "doc_json")?,
        cast_at: Timestamp::from_micros(get(row, "cast_at_us")?),
    })
}

impl Store {
    /// Every ballot on a proposal, in the order cast.
    pub async fn proposal_ballots(&self, id: ProposalId) -> Result<Vec<BallotRecord>> {
        let rows = sqlx::query(
            "SELECT seq, voter_org_id, doc_json, cast_at_us FROM proposal_ballots WHERE proposal_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await
        .map_err(db_error)?;
        rows.iter().map(ballot_from_row).collect()
    }
}
