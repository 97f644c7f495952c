//! The organisations a page names and offers in its selects, from the public directory.

use agora_app::{App, Call};
use agora_domain::model::{OrgKind, OrgStatus, Organisation};
use agora_domain::{Error, OrgId};

/// Pages of the directory a page reads at most; beyond them, organisations are shown by id.
const DIRECTORY_PAGES_MAX: usize = 10;

/// An organisation in a select: its id as the value, its name as the label.
pub struct OrgOption {
    pub id: String,
    pub name: String,
}

/// Every organisation a page may name, read once per page.
pub struct Directory {
    orgs: Vec<Organisation>,
}

impl Directory {
    /// Reads the directory (public to everyone signed in) page by page, up to a bound.
    pub async fn load(app: &App, call: &Call<'_>) -> Result<Self, Error> {
        let mut orgs = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..DIRECTORY_PAGES_MAX {
            let page = app
                .orgs(call, cursor.as_deref(), Some(app.config().page_size_max))
                .await?;
            orgs.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(Self { orgs })
    }

    /// An organisation's name, or its id when it is not in the directory read.
    pub fn name(&self, id: OrgId) -> String {
        self.orgs
            .iter()
            .find(|org| org.id == id)
            .map_or_else(|| id.to_string(), |org| org.name.to_string())
    }

    /// The admitted partners, by name, for the selects.
    pub fn partners(&self) -> Vec<OrgOption> {
        let mut partners: Vec<OrgOption> = self
            .partner_ids()
            .map(|id| OrgOption {
                id: id.to_string(),
                name: self.name(id),
            })
            .collect();
        partners.sort_by(|a, b| a.name.cmp(&b.name));
        partners
    }

    /// The ids of the admitted partners.
    pub fn partner_ids(&self) -> impl Iterator<Item = OrgId> + '_ {
        self.orgs
            .iter()
            .filter(|org| org.kind == OrgKind::Partner && org.status == OrgStatus::Active)
            .map(|org| org.id)
    }
}
