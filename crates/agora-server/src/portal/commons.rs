//! The data commons in the portal, for the organisation the signed-in person acts for: its
//! datasets (`/data`, `/data/{name}`), the protocols it is a party to with the steps it may take
//! (`/protocols`, `/protocols/{id}`), the governed query console (`/query`) and the query log,
//! as the consumer that ran them or the provider whose data they used (`/queries`).
//!
//! Every page asks the application, which authorizes; the buttons a page offers only guide.

use agora_app::{
    Call, DatasetView, PortalSession, ProtocolVersionView, ProtocolView, QueryAnswer, QueryInput,
    QueryLogEntry, QueryScope,
};
use agora_domain::{Error, OrgId, ProtocolId, RequestId, Role};
use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::directory::Directory;
use super::{
    CsrfForm, Nav, PortalForm, alert_text, error_page, incomplete, page, request_id, session,
    signed_in_form,
};
use crate::ServerState;
use crate::api::PageParams;
use crate::extract::Query;

/// Rows of a dataset its page shows.
const DATASET_ROWS_SHOWN: u32 = 20;
/// Versions of a dataset its page shows, newest first.
const DATASET_VERSIONS_SHOWN: u32 = 50;
/// Datasets, protocols or queries one page of a list shows.
const LIST_PAGE_SIZE: u32 = 50;
/// Pages of protocols the console reads at most, to say what the organisation may query.
const PROTOCOL_PAGES_MAX: usize = 10;
/// Rows of a result the console shows; the rest are counted, not shown.
const RESULT_ROWS_SHOWN: usize = 500;
/// Characters of a query's SQL the query log shows in its table.
const LOGGED_SQL_SHOWN: usize = 400;

/// The organisation the person acts for, or the refusal to show instead.
fn acting_org(session: &PortalSession) -> Result<OrgId, Error> {
    session
        .actor
        .acting
        .map(|acting| acting.org_id)
        .ok_or_else(|| Error::Forbidden {
            rule: "portal-organisation".to_owned(),
            message: "you act for no organisation, so there are no datasets, protocols or queries to show; organisations add you by e-mail".to_owned(),
        })
}

/// Whether the person's role takes a party's decisions (approve, pause, resume) and, for the
/// provider, its steps (propose, revoke). The application decides; this only picks the buttons.
fn decides(session: &PortalSession) -> bool {
    session
        .actor
        .acting
        .is_some_and(|acting| matches!(acting.role, Role::Owner | Role::Admin))
}

/// A value of a result or dataset row as a cell's text.
fn cell_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn names(directory: &Directory, orgs: &[OrgId]) -> Vec<String> {
    orgs.iter().map(|org| directory.name(*org)).collect()
}

// -------------------------------------------------------------------------------------------
// Datasets
// -------------------------------------------------------------------------------------------

/// A dataset in the list, in words.
struct DatasetRow {
    name: String,
    status: &'static str,
    current_version: i64,
    columns: usize,
    /// Columns without a class, which no protocol can share.
    unclassified: usize,
    updated_at: String,
}

impl From<&DatasetView> for DatasetRow {
    fn from(dataset: &DatasetView) -> Self {
        Self {
            name: dataset.name.to_string(),
            status: dataset.status.as_str(),
            current_version: dataset.current_version,
            columns: dataset.columns.len(),
            unclassified: dataset
                .columns
                .iter()
                .filter(|column| !column.classified)
                .count(),
            updated_at: dataset.updated_at.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "datasets.html")]
struct DatasetsPage {
    nav: Nav,
    org_name: String,
    datasets: Vec<DatasetRow>,
    next_cursor: Option<String>,
}

pub async fn datasets_page(
    State(state): State<ServerState>,
    Query(params): Query<PageParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let org_id = acting_org(&session)?;
        let org = state.app.org(&call, org_id).await?;
        let datasets = state
            .app
            .datasets(
                &call,
                org_id,
                params.cursor.as_deref(),
                Some(params.limit.unwrap_or(LIST_PAGE_SIZE)),
            )
            .await?;
        Ok::<_, Error>((org, datasets))
    }
    .await;
    match loaded {
        Ok((org, datasets)) => page(
            StatusCode::OK,
            &DatasetsPage {
                nav: Nav::new(&session, "data"),
                org_name: org.name.to_string(),
                datasets: datasets.items.iter().map(DatasetRow::from).collect(),
                next_cursor: datasets.next_cursor,
            },
        ),
        Err(error) => error_page(error, request_id),
    }
}

/// A column in words: its type, and its class as its owner gave it.
struct ColumnRow {
    name: String,
    column_type: &'static str,
    class: &'static str,
    classified: bool,
}

/// A version of a dataset in words.
struct DatasetVersionRow {
    version: i64,
    rows_added: i64,
    bytes: i64,
    format: &'static str,
    created_at: String,
}

#[derive(Template)]
#[template(path = "dataset.html")]
struct DatasetPage {
    nav: Nav,
    org_name: String,
    name: String,
    status: &'static str,
    current_version: i64,
    updated_at: String,
    columns: Vec<ColumnRow>,
    versions: Vec<DatasetVersionRow>,
    /// The first rows of the current version: the column names, then each row's cells.
    sample_columns: Vec<String>,
    sample_rows: Vec<Vec<String>>,
}

pub async fn dataset_page(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let org_id = acting_org(&session)?;
        let org = state.app.org(&call, org_id).await?;
        let dataset = state.app.dataset(&call, org_id, &name).await?;
        let versions = state
            .app
            .dataset_versions(&call, org_id, &name, None, Some(DATASET_VERSIONS_SHOWN))
            .await?;
        let rows = state
            .app
            .dataset_rows(&call, org_id, &name, None, Some(DATASET_ROWS_SHOWN))
            .await?;
        Ok::<_, Error>((org, dataset, versions, rows))
    }
    .await;
    let (org, dataset, versions, rows) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let view = DatasetPage {
        nav: Nav::new(&session, "data"),
        org_name: org.name.to_string(),
        name: dataset.name.to_string(),
        status: dataset.status.as_str(),
        current_version: dataset.current_version,
        updated_at: dataset.updated_at.to_string(),
        columns: dataset
            .columns
            .iter()
            .map(|column| ColumnRow {
                name: column.name.clone(),
                column_type: column.column_type.as_str(),
                class: column.class.as_str(),
                classified: column.classified,
            })
            .collect(),
        versions: versions
            .items
            .iter()
            .map(|version| DatasetVersionRow {
                version: version.version,
                rows_added: version.rows_added,
                bytes: version.bytes,
                format: version.format.as_str(),
                created_at: version.created_at.to_string(),
            })
            .collect(),
        sample_columns: rows.columns,
        sample_rows: rows
            .rows
            .iter()
            .map(|row| row.iter().map(cell_text).collect())
            .collect(),
    };
    page(StatusCode::OK, &view)
}

// -------------------------------------------------------------------------------------------
// Protocols
// -------------------------------------------------------------------------------------------

/// A protocol in the list, in words.
struct ProtocolRow {
    id: String,
    name: String,
    provider: String,
    /// The acting organisation is its provider.
    ours: bool,
    latest_version: i64,
    state: String,
    active_version: Option<i64>,
    /// Parties whose approval the latest version awaits, while it is proposed.
    awaiting: Vec<String>,
    /// The acting organisation's approval is among those awaited.
    awaits_us: bool,
}

impl ProtocolRow {
    fn new(protocol: &ProtocolView, us: OrgId, directory: &Directory) -> Self {
        let proposed = protocol.latest.state == "proposed";
        Self {
            id: protocol.id.to_string(),
            name: protocol.name.clone(),
            provider: directory.name(protocol.provider),
            ours: protocol.provider == us,
            latest_version: protocol.latest_version,
            state: protocol.latest.state.clone(),
            active_version: protocol.active_version,
            awaiting: if proposed {
                names(directory, &protocol.latest.awaiting)
            } else {
                vec![]
            },
            awaits_us: proposed && protocol.latest.awaiting.contains(&us),
        }
    }
}

#[derive(Template)]
#[template(path = "protocols.html")]
struct ProtocolsPage {
    nav: Nav,
    org_name: String,
    protocols: Vec<ProtocolRow>,
    next_cursor: Option<String>,
}

pub async fn protocols_page(
    State(state): State<ServerState>,
    Query(params): Query<PageParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let org_id = acting_org(&session)?;
        let protocols = state
            .app
            .protocols(
                &call,
                org_id,
                params.cursor.as_deref(),
                Some(params.limit.unwrap_or(LIST_PAGE_SIZE)),
            )
            .await?;
        let directory = Directory::load(&state.app, &call).await?;
        Ok::<_, Error>((org_id, protocols, directory))
    }
    .await;
    match loaded {
        Ok((org_id, protocols, directory)) => page(
            StatusCode::OK,
            &ProtocolsPage {
                nav: Nav::new(&session, "protocols"),
                org_name: directory.name(org_id),
                protocols: protocols
                    .items
                    .iter()
                    .map(|protocol| ProtocolRow::new(protocol, org_id, &directory))
                    .collect(),
                next_cursor: protocols.next_cursor,
            },
        ),
        Err(error) => error_page(error, request_id),
    }
}

/// A version of a protocol in the versions list, in words.
struct ProtocolVersionRow {
    version: i64,
    state: String,
    content_hash: String,
    approvals: Vec<String>,
    paused_by: Vec<String>,
    created_at: String,
}

/// A line of a diff: `add` (only in the newer version), `del` (only in the older) or `same`.
struct DiffLine {
    kind: &'static str,
    sign: char,
    text: String,
}

/// A version in the diff form's selects, and whether each select shows it.
struct VersionOption {
    version: i64,
    from: bool,
    to: bool,
}

struct DiffView {
    from: i64,
    to: i64,
    lines: Vec<DiffLine>,
    /// Lines that differ.
    changes: usize,
}

/// The steps the acting organisation may take now, as far as the page can tell.
#[derive(Default)]
struct Steps {
    propose: bool,
    approve: bool,
    pause: bool,
    resume: bool,
    revoke: bool,
}

impl Steps {
    fn any(&self) -> bool {
        self.propose || self.approve || self.pause || self.resume || self.revoke
    }
}

/// The version pausing and resuming act on: the one in force while a revision of it awaits
/// approval, otherwise the latest (as the application chooses).
fn decided_version<'a>(
    protocol: &'a ProtocolView,
    versions: &'a [ProtocolVersionView],
) -> &'a ProtocolVersionView {
    let pending = matches!(protocol.latest.state.as_str(), "draft" | "proposed");
    match protocol.active_version {
        Some(active) if pending && active != protocol.latest_version => versions
            .iter()
            .find(|version| version.version == active)
            .unwrap_or(&protocol.latest),
        _ => &protocol.latest,
    }
}

fn steps_for(
    protocol: &ProtocolView,
    versions: &[ProtocolVersionView],
    us: OrgId,
    decides: bool,
) -> Steps {
    if !decides {
        return Steps::default();
    }
    let latest = &protocol.latest;
    let provider = protocol.provider == us;
    let party = provider || latest.approvals.contains(&us) || latest.awaiting.contains(&us);
    let decided = decided_version(protocol, versions);
    let live = |state: &str| matches!(state, "draft" | "proposed" | "active" | "paused");
    Steps {
        propose: provider && latest.state == "draft",
        approve: latest.state == "proposed" && latest.awaiting.contains(&us),
        pause: party
            && matches!(decided.state.as_str(), "active" | "paused")
            && !decided.paused_by.contains(&us),
        resume: party && decided.state == "paused" && decided.paused_by.contains(&us),
        revoke: provider && versions.iter().any(|version| live(&version.state)),
    }
}

#[derive(Template)]
#[template(path = "protocol.html")]
struct ProtocolPage {
    nav: Nav,
    id: String,
    name: String,
    provider: String,
    we_provide: bool,
    latest_version: i64,
    active_version: Option<i64>,
    state: String,
    content_hash: String,
    /// The latest version's document, pretty-printed JSON.
    document: String,
    consumers: Vec<String>,
    approvals: Vec<String>,
    awaiting: Vec<String>,
    paused_by: Vec<String>,
    suspended_reason: Option<String>,
    versions: Vec<ProtocolVersionRow>,
    diff: Option<DiffView>,
    /// The versions the diff form offers, newest first.
    version_options: Vec<VersionOption>,
    steps: Steps,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ProtocolParams {
    /// The older version of the diff.
    from: Option<String>,
    /// The newer version of the diff.
    to: Option<String>,
    /// The step just taken, for the notice.
    done: Option<String>,
}

fn parse_version(field: &str, text: &str) -> Result<i64, Error> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid(field, "must be a version number"))
}

/// What a person reads after taking a step.
fn done_notice(done: &str, protocol: &ProtocolView) -> Option<String> {
    let version = protocol.latest_version;
    Some(match done {
        "propose" => {
            format!("Version {version} is proposed: each party now reviews and approves it.")
        }
        "approve" if protocol.active_version == Some(version) => format!(
            "Your approval is recorded, and every party has approved: version {version} is in force."
        ),
        "approve" => format!(
            "Your approval of version {version} is recorded; it is in force once every party approved it."
        ),
        "pause" => {
            "Paused: no query runs under it until every party that paused it resumes.".to_owned()
        }
        "resume" => "Resumed for your organisation.".to_owned(),
        "revoke" => "Revoked: no version of it runs again.".to_owned(),
        _ => return None,
    })
}

/// Renders a protocol with its versions, the diff asked for, and the acting organisation's steps.
async fn protocol_view(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    id: &str,
    params: ProtocolParams,
    error: Option<(StatusCode, String)>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let us = acting_org(session)?;
        let id: ProtocolId = id.parse()?;
        let protocol = state.app.protocol(&call, id).await?;
        let versions = state.app.protocol_versions(&call, id).await?;
        let directory = Directory::load(&state.app, &call).await?;
        Ok::<_, Error>((us, protocol, versions, directory))
    }
    .await;
    let (us, protocol, versions, directory) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    // The diff asked for, else what the latest version changed.
    let asked = match (params.from.as_deref(), params.to.as_deref()) {
        (Some(from), Some(to)) if !from.is_empty() && !to.is_empty() => {
            match (parse_version("from", from), parse_version("to", to)) {
                (Ok(from), Ok(to)) => Ok(Some((from, to))),
                (Err(error), _) | (_, Err(error)) => Err(error),
            }
        }
        _ if protocol.latest_version > 1 => {
            Ok(Some((protocol.latest_version - 1, protocol.latest_version)))
        }
        _ => Ok(None),
    };
    let mut error = error;
    let diff = match asked {
        Ok(Some((from, to))) => match state.app.protocol_diff(&call, protocol.id, from, to).await {
            Ok(diff) => Some(diff),
            Err(diff_error) => {
                if let (None, Some(text)) = (&error, diff_alert(&diff_error)) {
                    error = Some((crate::error::status_of(&diff_error), text));
                }
                None
            }
        },
        Ok(None) => None,
        Err(parse_error) => {
            if let (None, Some(text)) = (&error, alert_text(&parse_error)) {
                error = Some((StatusCode::BAD_REQUEST, text));
            }
            None
        }
    };
    let diff = diff.map(|diff| {
        let lines: Vec<DiffLine> = diff
            .lines
            .iter()
            .map(|line| {
                let mut chars = line.chars();
                let sign = chars.next().unwrap_or(' ');
                let kind = match sign {
                    '+' => "add",
                    '-' => "del",
                    _ => "same",
                };
                DiffLine {
                    kind,
                    sign,
                    text: chars.as_str().to_owned(),
                }
            })
            .collect();
        DiffView {
            from: diff.from,
            to: diff.to,
            changes: lines.iter().filter(|line| line.kind != "same").count(),
            lines,
        }
    });
    let steps = steps_for(&protocol, &versions, us, decides(session));
    let latest = &protocol.latest;
    let consumers = latest
        .approvals
        .iter()
        .chain(&latest.awaiting)
        .copied()
        .filter(|org| *org != protocol.provider)
        .collect::<Vec<_>>();
    let (diff_from, diff_to) = match &diff {
        Some(diff) => (diff.from, diff.to),
        None => (
            (protocol.latest_version - 1).max(1),
            protocol.latest_version,
        ),
    };
    let (status, error) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    let view = ProtocolPage {
        nav: Nav::new(session, "protocols"),
        id: protocol.id.to_string(),
        name: protocol.name.clone(),
        provider: directory.name(protocol.provider),
        we_provide: protocol.provider == us,
        latest_version: protocol.latest_version,
        active_version: protocol.active_version,
        state: latest.state.clone(),
        content_hash: latest.content_hash.clone(),
        document: serde_json::to_string_pretty(&latest.document)
            .unwrap_or_else(|_| latest.document.to_string()),
        consumers: names(&directory, &consumers),
        approvals: names(&directory, &latest.approvals),
        awaiting: names(&directory, &latest.awaiting),
        paused_by: names(&directory, &latest.paused_by),
        suspended_reason: latest.suspended_reason.clone(),
        version_options: versions
            .iter()
            .map(|version| VersionOption {
                version: version.version,
                from: version.version == diff_from,
                to: version.version == diff_to,
            })
            .collect(),
        versions: versions
            .iter()
            .map(|version| ProtocolVersionRow {
                version: version.version,
                state: version.state.clone(),
                content_hash: version.content_hash.clone(),
                approvals: names(&directory, &version.approvals),
                paused_by: names(&directory, &version.paused_by),
                created_at: version.created_at.to_string(),
            })
            .collect(),
        diff,
        steps,
        notice: params
            .done
            .as_deref()
            .and_then(|done| done_notice(done, &protocol)),
        error,
    };
    page(status, &view)
}

/// A diff that cannot be shown, in words: a missing version is the person's to fix.
fn diff_alert(error: &Error) -> Option<String> {
    match error {
        Error::NotFound { what } => Some(format!("There is no {what} to compare.")),
        other => alert_text(other),
    }
}

pub async fn protocol_page(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    Query(params): Query<ProtocolParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    protocol_view(&state, &session, request_id, &id, params, None).await
}

/// A lifecycle step a party takes from the protocol's page.
#[derive(Clone, Copy)]
enum Step {
    Propose,
    Approve,
    Pause,
    Resume,
    Revoke,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Propose => "propose",
            Step::Approve => "approve",
            Step::Pause => "pause",
            Step::Resume => "resume",
            Step::Revoke => "revoke",
        }
    }
}

/// The approval form: the content hash the page showed, so that the approval binds to the
/// version the person reviewed and not to one that replaced it meanwhile.
#[derive(Deserialize)]
pub struct ApproveForm {
    csrf_token: String,
    content_hash: String,
}

portal_form!(ApproveForm, incomplete("approval form"));

/// Takes `step` for the acting organisation, then shows the protocol with a notice, or with
/// the application's reason when it refused.
async fn take_step(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    id: &str,
    step: Step,
    content_hash: Option<&str>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let taken = match id.parse::<ProtocolId>() {
        Ok(protocol_id) => match step {
            Step::Propose => state.app.propose_protocol(&call, protocol_id).await,
            Step::Approve => {
                state
                    .app
                    .approve_protocol(&call, protocol_id, content_hash.unwrap_or_default())
                    .await
            }
            Step::Pause => state.app.pause_protocol(&call, protocol_id).await,
            Step::Resume => state.app.resume_protocol(&call, protocol_id).await,
            Step::Revoke => state.app.revoke_protocol(&call, protocol_id).await,
        },
        Err(error) => Err(error),
    };
    match taken {
        Ok(protocol) => Redirect::to(&format!(
            "/protocols/{}?done={}",
            protocol.id,
            step.as_str()
        ))
        .into_response(),
        Err(error @ Error::NotFound { .. }) => error_page(error, request_id),
        Err(error) => match alert_text(&error) {
            Some(text) => {
                let status = crate::error::status_of(&error);
                let text = format!("Could not {}: {text}", step.as_str());
                protocol_view(
                    state,
                    session,
                    request_id,
                    id,
                    ProtocolParams::default(),
                    Some((status, text)),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}

async fn simple_step(state: ServerState, id: String, request: Request, step: Step) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CsrfForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    take_step(&state, &session, request_id, &id, step, None).await
}

pub async fn propose(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    simple_step(state, id, request, Step::Propose).await
}

pub async fn approve(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, ApproveForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    take_step(
        &state,
        &session,
        request_id,
        &id,
        Step::Approve,
        Some(form.content_hash.trim()),
    )
    .await
}

pub async fn pause(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    simple_step(state, id, request, Step::Pause).await
}

pub async fn resume(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    simple_step(state, id, request, Step::Resume).await
}

pub async fn revoke(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    simple_step(state, id, request, Step::Revoke).await
}

// -------------------------------------------------------------------------------------------
// The query console
// -------------------------------------------------------------------------------------------

/// A column a protocol shares, with its class there.
struct SharedColumn {
    name: String,
    class: String,
}

/// A dataset the organisation may query: its own, or one a protocol in force shares with it.
struct QueryableTable {
    name: String,
    /// Whose it is, and under which protocol, in words.
    source: String,
    columns: Vec<SharedColumn>,
    /// What the protocol requires of every output, in words (empty for the organisation's own).
    rules: Vec<String>,
}

/// What the console offers: the tables and the purposes the protocols in force allow.
#[derive(Default)]
struct Catalogue {
    tables: Vec<QueryableTable>,
    purposes: Vec<String>,
}

/// Reads what a protocol document shares with a consumer, from its canonical JSON.
fn shared_tables(
    document: &serde_json::Value,
    protocol_name: &str,
    provider: &str,
) -> Vec<QueryableTable> {
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let mut rules = Vec::new();
    if let Some(analysis) = document["analysis"].as_str() {
        rules.push(format!("analysis: {analysis}"));
    }
    if let Some(output) = document["output"].as_object() {
        for (name, value) in output {
            if !value.is_null() {
                rules.push(format!("{name} = {}", cell_text(value)));
            }
        }
    }
    document["datasets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|dataset| QueryableTable {
            name: text(&dataset["name"]),
            source: format!("{provider}'s, under {protocol_name}"),
            columns: dataset["columns"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|column| column["allowed"].as_bool() != Some(false))
                .map(|column| SharedColumn {
                    name: text(&column["name"]),
                    class: text(&column["class"]),
                })
                .collect(),
            rules: rules.clone(),
        })
        .collect()
}

impl Catalogue {
    /// The organisation's own datasets (when the person may read them) and what the protocols
    /// in force share with it as a consumer.
    async fn load(
        state: &ServerState,
        call: &Call<'_>,
        us: OrgId,
        directory: &Directory,
    ) -> Result<Self, Error> {
        let mut catalogue = Self::default();
        match state
            .app
            .datasets(call, us, None, Some(state.app.config().page_size_max))
            .await
        {
            Ok(own) => {
                for dataset in own.items {
                    catalogue.tables.push(QueryableTable {
                        name: dataset.name.to_string(),
                        source: "yours: full SQL".to_owned(),
                        columns: dataset
                            .columns
                            .iter()
                            .map(|column| SharedColumn {
                                name: column.name.clone(),
                                class: column.class.as_str().to_owned(),
                            })
                            .collect(),
                        rules: vec![],
                    });
                }
            }
            // Someone who may query but not read the datasets still sees what is shared.
            Err(Error::Forbidden { .. }) => {}
            Err(error) => return Err(error),
        }
        let mut cursor: Option<String> = None;
        for _ in 0..PROTOCOL_PAGES_MAX {
            let found = state
                .app
                .protocols(
                    call,
                    us,
                    cursor.as_deref(),
                    Some(state.app.config().page_size_max),
                )
                .await?;
            for protocol in &found.items {
                let Some(active) = protocol.active_version else {
                    continue;
                };
                let in_force = if active == protocol.latest_version {
                    protocol.latest.clone()
                } else {
                    let versions = state.app.protocol_versions(call, protocol.id).await?;
                    match versions
                        .into_iter()
                        .find(|version| version.version == active)
                    {
                        Some(version) => version,
                        None => continue,
                    }
                };
                let consumers: Vec<OrgId> =
                    serde_json::from_value(in_force.document["consumers"].clone())
                        .unwrap_or_default();
                let consumes = consumers.contains(&us);
                if in_force.state != "active" || !consumes {
                    continue;
                }
                for purpose in in_force.document["purposes"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if let Some(purpose) = purpose.as_str()
                        && !catalogue.purposes.iter().any(|known| known == purpose)
                    {
                        catalogue.purposes.push(purpose.to_owned());
                    }
                }
                catalogue.tables.extend(shared_tables(
                    &in_force.document,
                    &protocol.name,
                    &directory.name(protocol.provider),
                ));
            }
            match found.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(catalogue)
    }
}

/// A protocol a query ran under, in words.
struct UsedProtocol {
    id: String,
    name: String,
    version: i64,
    provider: String,
}

/// An answered query, in words.
struct ResultView {
    id: String,
    columns: Vec<(String, String)>,
    rows: Vec<Vec<String>>,
    /// Rows the answer had beyond those shown.
    rows_not_shown: usize,
    rows_suppressed: u64,
    rows_suppressed_by_differencing: u64,
    rules_applied: Vec<String>,
    datasets: Vec<String>,
    own_data_only: bool,
    protocols: Vec<UsedProtocol>,
}

impl ResultView {
    async fn new(
        state: &ServerState,
        call: &Call<'_>,
        answer: QueryAnswer,
        directory: &Directory,
    ) -> Self {
        let mut protocols = Vec::new();
        for used in &answer.protocols {
            // The name is a courtesy: a protocol the person may not read is shown by id.
            let name = match state.app.protocol(call, used.protocol_id).await {
                Ok(protocol) => protocol.name,
                Err(_) => used.protocol_id.to_string(),
            };
            protocols.push(UsedProtocol {
                id: used.protocol_id.to_string(),
                name,
                version: used.version,
                provider: directory.name(used.provider),
            });
        }
        Self {
            id: answer.id.to_string(),
            columns: answer
                .columns
                .iter()
                .map(|column| (column.name.clone(), column.data_type.clone()))
                .collect(),
            rows_not_shown: answer.rows.len().saturating_sub(RESULT_ROWS_SHOWN),
            rows: answer
                .rows
                .iter()
                .take(RESULT_ROWS_SHOWN)
                .map(|row| row.iter().map(cell_text).collect())
                .collect(),
            rows_suppressed: answer.report.rows_suppressed,
            rows_suppressed_by_differencing: answer.report.rows_suppressed_by_differencing,
            rules_applied: answer.report.rules_applied,
            datasets: answer.report.datasets,
            own_data_only: answer.report.own_data_only,
            protocols,
        }
    }
}

/// A refused query: the rule, the part of the query at fault and how to fix it.
struct RefusalView {
    rule: String,
    expression: String,
    message: String,
}

#[derive(Template)]
#[template(path = "query.html")]
struct QueryPage {
    nav: Nav,
    org_name: String,
    purpose: String,
    sql: String,
    catalogue: Catalogue,
    result: Option<ResultView>,
    refusal: Option<RefusalView>,
    error: Option<String>,
}

/// What the console's form last held.
#[derive(Deserialize, Default)]
pub struct ConsoleInput {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    sql: String,
}

/// Renders the console with the form's last input and what running it gave.
async fn console(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    input: ConsoleInput,
    ran: Option<Result<QueryAnswer, Error>>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let us = acting_org(session)?;
        let directory = Directory::load(&state.app, &call).await?;
        let catalogue = Catalogue::load(state, &call, us, &directory).await?;
        Ok::<_, Error>((us, directory, catalogue))
    }
    .await;
    let (us, directory, catalogue) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let mut view = QueryPage {
        nav: Nav::new(session, "query"),
        org_name: directory.name(us),
        purpose: if input.purpose.is_empty() {
            catalogue.purposes.first().cloned().unwrap_or_default()
        } else {
            input.purpose
        },
        sql: input.sql,
        catalogue,
        result: None,
        refusal: None,
        error: None,
    };
    let status = match ran {
        None => StatusCode::OK,
        Some(Ok(answer)) => {
            view.result = Some(ResultView::new(state, &call, answer, &directory).await);
            StatusCode::OK
        }
        Some(Err(Error::Refused {
            rule,
            expression,
            message,
        })) => {
            view.refusal = Some(RefusalView {
                rule,
                expression,
                message,
            });
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(Err(error)) => match alert_text(&error) {
            Some(text) => {
                view.error = Some(text);
                crate::error::status_of(&error)
            }
            None => return error_page(error, request_id),
        },
    };
    page(status, &view)
}

pub async fn query_page(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    console(&state, &session, request_id, ConsoleInput::default(), None).await
}

#[derive(Deserialize)]
pub struct QueryForm {
    csrf_token: String,
    #[serde(flatten)]
    input: ConsoleInput,
}

portal_form!(QueryForm, incomplete("query form"));

/// Runs a governed query as the acting organisation and shows its answer or refusal. A post,
/// not a link: every query is recorded, audited and counted against the protocols' quotas.
pub async fn run_query(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, QueryForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let us = match acting_org(&session) {
        Ok(us) => us,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let ran = state
        .app
        .run_query(
            &call,
            us,
            QueryInput {
                purpose: form.input.purpose.trim().to_owned(),
                sql: form.input.sql.clone(),
                as_of: Default::default(),
            },
        )
        .await;
    console(&state, &session, request_id, form.input, Some(ran)).await
}

// -------------------------------------------------------------------------------------------
// The query log
// -------------------------------------------------------------------------------------------

/// A recorded query in words.
struct QueryRow {
    id: String,
    created_at: String,
    consumer: String,
    purpose: String,
    outcome: String,
    /// `succeeded`, `denied` or `failed`, for the outcome's colour.
    outcome_class: &'static str,
    rule: String,
    message: String,
    rows_returned: i64,
    rows_suppressed: i64,
    sql: String,
    protocols: Vec<String>,
}

impl QueryRow {
    fn new(
        entry: &QueryLogEntry,
        directory: &Directory,
        protocol_names: &[(ProtocolId, String)],
    ) -> Self {
        let mut sql: String = entry.sql.chars().take(LOGGED_SQL_SHOWN).collect();
        if entry.sql.chars().count() > LOGGED_SQL_SHOWN {
            sql.push('…');
        }
        Self {
            id: entry.id.to_string(),
            created_at: entry.created_at.to_string(),
            consumer: directory.name(entry.consumer),
            purpose: entry.purpose.clone(),
            outcome: entry.outcome.clone(),
            outcome_class: match entry.outcome.as_str() {
                "answered" => "succeeded",
                "refused" => "denied",
                _ => "failed",
            },
            rule: entry.rule.clone().unwrap_or_default(),
            message: entry.message.clone().unwrap_or_default(),
            rows_returned: entry.rows_returned,
            rows_suppressed: entry.rows_suppressed,
            sql,
            protocols: entry
                .protocols
                .iter()
                .map(|used| {
                    let name = protocol_names
                        .iter()
                        .find(|(id, _)| *id == used.protocol_id)
                        .map_or_else(|| used.protocol_id.to_string(), |(_, name)| name.clone());
                    format!("{name} v{}", used.version)
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "queries.html")]
struct QueriesPage {
    nav: Nav,
    org_name: String,
    /// `ran` or `against_our_data`.
    scope: &'static str,
    queries: Vec<QueryRow>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct QueriesParams {
    /// `ran` (the default) or `against_our_data`.
    scope: Option<QueryScope>,
    cursor: Option<String>,
}

pub async fn queries_page(
    State(state): State<ServerState>,
    Query(params): Query<QueriesParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let scope = params.scope.unwrap_or(QueryScope::Ran);
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let us = acting_org(&session)?;
        let queries = state
            .app
            .queries(
                &call,
                us,
                scope,
                params.cursor.as_deref(),
                Some(LIST_PAGE_SIZE),
            )
            .await?;
        let directory = Directory::load(&state.app, &call).await?;
        // Names for the protocols the queries used: those the organisation is a party to.
        let protocol_names: Vec<(ProtocolId, String)> = state
            .app
            .protocols(&call, us, None, Some(state.app.config().page_size_max))
            .await?
            .items
            .into_iter()
            .map(|protocol| (protocol.id, protocol.name))
            .collect();
        Ok::<_, Error>((us, queries, directory, protocol_names))
    }
    .await;
    match loaded {
        Ok((us, queries, directory, protocol_names)) => page(
            StatusCode::OK,
            &QueriesPage {
                nav: Nav::new(&session, "queries"),
                org_name: directory.name(us),
                scope: match scope {
                    QueryScope::Ran => "ran",
                    QueryScope::AgainstOurData => "against_our_data",
                },
                queries: queries
                    .items
                    .iter()
                    .map(|entry| QueryRow::new(entry, &directory, &protocol_names))
                    .collect(),
                next_cursor: queries.next_cursor,
            },
        ),
        Err(error) => error_page(error, request_id),
    }
}
