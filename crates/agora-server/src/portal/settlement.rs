//! Settlement in the portal: a partner's positions, past reports and obligation form
//! (`/shop/settlement`), and the operator's windows, positions, Close button and net debit caps
//! (`/operator/settlement`).

use agora_app::{
    Call, NewObligation, PortalSession, SetNetDebitCap, SettlementReport, SettlementWindowStatus,
    SettlementWindowSummary,
};
use agora_domain::ledger::Currency;
use agora_domain::{Error, OrgId, RequestId, Role, WindowId};
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::directory::{Directory, OrgOption};
use super::orders::parse_amount;
use super::{
    Nav, PortalForm, alert_text, error_page, incomplete, not_operator, page, request_id, session,
    signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// Pages of windows a page reads at most, to find the newest.
const WINDOW_PAGES_MAX: usize = 20;
/// Windows the operator's list shows, newest first.
const WINDOWS_SHOWN: usize = 25;
/// Past windows whose reports a partner's page shows, newest first.
const PAST_REPORTS_SHOWN: usize = 10;

/// The settlement windows, newest first, at most `WINDOW_PAGES_MAX` pages of them.
async fn windows_newest_first(
    state: &ServerState,
    call: &Call<'_>,
) -> Result<Vec<SettlementWindowSummary>, Error> {
    let mut windows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..WINDOW_PAGES_MAX {
        let page = state
            .app
            .settlement_windows(
                call,
                cursor.as_deref(),
                Some(state.app.config().page_size_max),
            )
            .await?;
        windows.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    windows.reverse();
    Ok(windows)
}

fn status_text(status: SettlementWindowStatus) -> &'static str {
    match status {
        SettlementWindowStatus::Open => "open",
        SettlementWindowStatus::Closed => "closed",
    }
}

/// A net position in words.
struct PositionRow {
    partner: String,
    currency: String,
    net: String,
    /// Owed (positive) or owes (negative).
    side: &'static str,
}

/// A window's report in words.
struct ReportView {
    window: String,
    status: &'static str,
    opened_at: String,
    closed_at: Option<String>,
    obligations: u64,
    positions: Vec<PositionRow>,
    /// Per currency: the code and the sum of every position, which is zero.
    totals: Vec<(String, String)>,
}

impl ReportView {
    fn new(report: &SettlementReport, directory: &Directory) -> Self {
        Self {
            window: report.window.to_string(),
            status: status_text(report.status),
            opened_at: report.opened_at.to_string(),
            closed_at: report.closed_at.map(|at| at.to_string()),
            obligations: report.obligations,
            positions: report
                .positions
                .iter()
                .map(|position| PositionRow {
                    partner: directory.name(position.partner),
                    currency: position.currency.code().to_owned(),
                    net: position.currency.format(position.net),
                    side: if position.net < 0 { "owes" } else { "is owed" },
                })
                .collect(),
            totals: report
                .totals
                .iter()
                .map(|(code, total)| {
                    let text = Currency::parse(code)
                        .map_or_else(|_| format!("{total} {code}"), |c| c.format(*total));
                    (code.clone(), text)
                })
                .collect(),
        }
    }
}

/// A window in a list, in words.
struct WindowRow {
    id: String,
    status: &'static str,
    opened_at: String,
    closed_at: String,
    obligations: u64,
}

impl From<&SettlementWindowSummary> for WindowRow {
    fn from(window: &SettlementWindowSummary) -> Self {
        Self {
            id: window.id.to_string(),
            status: status_text(window.status),
            opened_at: window.opened_at.to_string(),
            closed_at: window
                .closed_at
                .map_or_else(String::new, |at| at.to_string()),
            obligations: window.obligations,
        }
    }
}

/// A net debit cap in words.
struct CapRow {
    partner: String,
    cap: String,
}

// -------------------------------------------------------------------------------------------
// The partner's settlement
// -------------------------------------------------------------------------------------------

/// The partner organisation the person acts for, or the refusal to show instead.
fn partner_of(session: &PortalSession) -> Result<OrgId, Error> {
    match session.actor.acting {
        Some(acting) if !acting.is_operator => Ok(acting.org_id),
        _ => Err(Error::Forbidden {
            rule: "portal-partner".to_owned(),
            message: "you act for no partner organisation, so it has no settlement to show"
                .to_owned(),
        }),
    }
}

#[derive(Template)]
#[template(path = "shop_settlement.html")]
struct ShopSettlementPage {
    nav: Nav,
    org_name: String,
    current: Option<ReportView>,
    past: Vec<ReportView>,
    caps: Vec<CapRow>,
    creditors: Vec<OrgOption>,
    may_record: bool,
    form: ObligationInput,
    notice: Option<String>,
    error: Option<String>,
}

/// What the obligation form last held, to show again with its error.
#[derive(Default, Deserialize)]
pub struct ObligationInput {
    #[serde(default)]
    creditor: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    reference: String,
}

impl ObligationInput {
    fn to_obligation(&self) -> Result<NewObligation, Error> {
        let currency = Currency::parse(&self.currency.trim().to_ascii_uppercase())?;
        Ok(NewObligation {
            creditor: self.creditor.trim().parse()?,
            amount: parse_amount("amount", &self.amount, currency)?,
            currency,
            reference: self.reference.trim().to_owned(),
        })
    }
}

/// Renders the partner's settlement, with `form` and `error` in the obligation form.
async fn shop_settlement(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    notice: Option<String>,
    form: ObligationInput,
    error: Option<String>,
) -> Response {
    let partner = match partner_of(session) {
        Ok(partner) => partner,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let directory = Directory::load(&state.app, &call).await?;
        let windows = windows_newest_first(state, &call).await?;
        let mut current = None;
        let mut past = Vec::new();
        for window in &windows {
            match window.status {
                SettlementWindowStatus::Open => {
                    let report = state.app.settlement_report(&call, window.id).await?;
                    current = Some(ReportView::new(&report, &directory));
                }
                SettlementWindowStatus::Closed if past.len() < PAST_REPORTS_SHOWN => {
                    let report = state.app.settlement_report(&call, window.id).await?;
                    past.push(ReportView::new(&report, &directory));
                }
                SettlementWindowStatus::Closed => {}
            }
        }
        let caps = state.app.net_debit_caps(&call, partner).await?;
        Ok::<_, Error>((directory, current, past, caps))
    }
    .await;
    let (directory, current, past, caps) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = ShopSettlementPage {
        nav: Nav::new(session, "settlement"),
        org_name: directory.name(partner),
        current,
        past,
        caps: caps
            .iter()
            .map(|cap| CapRow {
                partner: directory.name(cap.partner),
                cap: cap.currency.format(cap.cap),
            })
            .collect(),
        creditors: directory
            .partners()
            .into_iter()
            .filter(|option| option.id != partner.to_string())
            .collect(),
        may_record: session
            .actor
            .acting
            .is_some_and(|acting| matches!(acting.role, Role::Owner | Role::Admin)),
        form: ObligationInput {
            currency: if form.currency.is_empty() {
                "EUR".to_owned()
            } else {
                form.currency.clone()
            },
            ..form
        },
        notice,
        error,
    };
    page(status, &view)
}

#[derive(Deserialize)]
pub struct ShopParams {
    /// The reference of the obligation just recorded.
    recorded: Option<String>,
}

pub async fn shop_settlement_page(
    State(state): State<ServerState>,
    Query(params): Query<ShopParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = params
        .recorded
        .map(|reference| format!("Recorded obligation {reference} in the open window."));
    shop_settlement(
        &state,
        &session,
        request_id,
        notice,
        ObligationInput::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct ObligationForm {
    csrf_token: String,
    #[serde(flatten)]
    obligation: ObligationInput,
}

portal_form!(ObligationForm, incomplete("obligation form"));

/// Records that the partner owes another, then shows its settlement.
pub async fn record_obligation(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, ObligationForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let partner = match partner_of(&session) {
        Ok(partner) => partner,
        Err(error) => return error_page(error, request_id),
    };
    let call = Call::new(&session.actor, request_id);
    let recorded = match form.obligation.to_obligation() {
        Ok(input) => state.app.record_obligation(&call, partner, input).await,
        Err(error) => Err(error),
    };
    match recorded {
        Ok(obligation) => {
            let reference = url_component(&obligation.reference);
            Redirect::to(&format!("/shop/settlement?recorded={reference}")).into_response()
        }
        Err(error) => match alert_text(&error) {
            Some(message) => {
                shop_settlement(
                    &state,
                    &session,
                    request_id,
                    None,
                    form.obligation,
                    Some(message),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}

/// Percent-encodes everything but unreserved characters, for a query value.
fn url_component(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// The operator's settlement
// -------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "operator_settlement.html")]
struct SettlementAdminPage {
    nav: Nav,
    windows: Vec<WindowRow>,
    /// The report shown: the window asked for, else the open window's positions so far.
    report: Option<ReportView>,
    caps: Vec<CapRow>,
    partners: Vec<OrgOption>,
    form: CapInput,
    notice: Option<String>,
    error: Option<String>,
}

/// What the cap form last held, to show again with its error.
#[derive(Default, Deserialize)]
pub struct CapInput {
    #[serde(default)]
    partner: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    cap: String,
}

impl CapInput {
    fn to_cap(&self) -> Result<(OrgId, SetNetDebitCap), Error> {
        let currency = Currency::parse(&self.currency.trim().to_ascii_uppercase())?;
        Ok((
            self.partner.trim().parse()?,
            SetNetDebitCap {
                currency,
                cap: parse_amount("cap", &self.cap, currency)?,
            },
        ))
    }
}

/// Renders the operator's settlement with the report of `window` (the open one when `None`).
async fn settlement_admin(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    window: Option<&str>,
    notice: Option<String>,
    form: CapInput,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        // A partner may read windows (its own lines); this page shows every partner's.
        if !session
            .actor
            .acting
            .is_some_and(|acting| acting.is_operator)
        {
            return Err(not_operator());
        }
        let directory = Directory::load(&state.app, &call).await?;
        let windows = windows_newest_first(state, &call).await?;
        let shown = match window {
            Some(id) => Some(id.parse::<WindowId>()?),
            None => windows
                .iter()
                .find(|window| window.status == SettlementWindowStatus::Open)
                .map(|window| window.id),
        };
        let report = match shown {
            Some(id) => Some(state.app.settlement_report(&call, id).await?),
            None => None,
        };
        let mut caps = Vec::new();
        for partner in directory.partner_ids() {
            for cap in state.app.net_debit_caps(&call, partner).await? {
                caps.push(CapRow {
                    partner: directory.name(cap.partner),
                    cap: cap.currency.format(cap.cap),
                });
            }
        }
        Ok::<_, Error>((directory, windows, report, caps))
    }
    .await;
    let (directory, windows, report, caps) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = SettlementAdminPage {
        nav: Nav::new(session, "operator-settlement"),
        windows: windows
            .iter()
            .take(WINDOWS_SHOWN)
            .map(WindowRow::from)
            .collect(),
        report: report.map(|report| ReportView::new(&report, &directory)),
        caps,
        partners: directory.partners(),
        form: CapInput {
            currency: if form.currency.is_empty() {
                "EUR".to_owned()
            } else {
                form.currency.clone()
            },
            ..form
        },
        notice,
        error,
    };
    page(status, &view)
}

#[derive(Deserialize)]
pub struct AdminParams {
    /// The window whose report to show; the open one when absent.
    window: Option<String>,
    /// Set when the window was just closed.
    closed: Option<u8>,
    /// Set when a cap was just set.
    capped: Option<u8>,
}

pub async fn settlement_admin_page(
    State(state): State<ServerState>,
    Query(params): Query<AdminParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match (params.closed, params.capped) {
        (Some(_), _) => Some(
            "The window is closed: every position is settled, and the next obligation opens a new window."
                .to_owned(),
        ),
        (None, Some(_)) => Some("The net debit cap is set.".to_owned()),
        _ => None,
    };
    settlement_admin(
        &state,
        &session,
        request_id,
        params.window.as_deref(),
        notice,
        CapInput::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct CloseForm {
    csrf_token: String,
}

portal_form!(CloseForm, incomplete("form"));

/// Closes the open window, then shows its report.
pub async fn close_window(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, _form): (_, CloseForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    match state.app.close_settlement_window(&call, None).await {
        Ok(report) => Redirect::to(&format!(
            "/operator/settlement?window={}&closed=1",
            report.window
        ))
        .into_response(),
        Err(error) => error_page(error, request_id),
    }
}

#[derive(Deserialize)]
pub struct CapForm {
    csrf_token: String,
    #[serde(flatten)]
    cap: CapInput,
}

portal_form!(CapForm, incomplete("net debit cap form"));

/// Sets a partner's net debit cap in a currency, then shows the caps.
pub async fn set_cap(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, CapForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let set = match form.cap.to_cap() {
        Ok((partner, input)) => state.app.set_net_debit_cap(&call, partner, input).await,
        Err(error) => Err(error),
    };
    match set {
        Ok(_) => Redirect::to("/operator/settlement?capped=1").into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                settlement_admin(
                    &state,
                    &session,
                    request_id,
                    None,
                    None,
                    form.cap,
                    Some(message),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}
