//! Points in the portal: the customer's balance, lots and redeem form (`/points`), and the
//! operator's points administration (`/operator/points`): the rules with a form to add one, and
//! the redemption rate with a form to set it.

use agora_app::secrets::new_secret;
use agora_app::{
    Call, NewPointsRule, PointsEarning, PointsRuleView, PointsSettings, PortalSession, RedeemPoints,
};
use agora_domain::ledger::Currency;
use agora_domain::{Error, OrgId, RequestId};
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::directory::{Directory, OrgOption};
use super::{
    Nav, PortalForm, alert_text, error_page, incomplete, not_operator, page, request_id, session,
    signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// Who funds points in words: a partner's name, or the operator.
fn funder_name(directory: &Directory, funder: Option<OrgId>) -> String {
    funder.map_or_else(|| "the operator".to_owned(), |org| directory.name(org))
}

/// A fresh reference for a redeem form: posting the same form twice redeems once.
fn new_reference() -> String {
    format!("portal-{}", &new_secret()[..32])
}

/// A lot with points left, in words.
struct LotRow {
    remaining: i64,
    points: i64,
    funder: String,
    granted_at: String,
    expires_at: String,
}

#[derive(Template)]
#[template(path = "points.html")]
struct PointsPage {
    nav: Nav,
    spendable: i64,
    liability: i64,
    soonest_expiry: Option<String>,
    lots: Vec<LotRow>,
    partners: Vec<OrgOption>,
    form: RedeemInput,
    notice: Option<String>,
    error: Option<String>,
}

/// What the redeem form last held, to show again with its error.
#[derive(Default, Deserialize)]
pub struct RedeemInput {
    #[serde(default)]
    points: String,
    #[serde(default)]
    at_partner: String,
    #[serde(default)]
    reference: String,
}

impl RedeemInput {
    fn to_redemption(&self) -> Result<RedeemPoints, Error> {
        Ok(RedeemPoints {
            points: self
                .points
                .trim()
                .parse()
                .map_err(|_| Error::invalid("points", "must be a whole number of points"))?,
            at_partner: self.at_partner.trim().parse()?,
            reference: Some(self.reference.clone()),
        })
    }
}

/// Renders the signed-in person's points, with `form` and `error` in the redeem form.
async fn points(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    notice: Option<String>,
    form: RedeemInput,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let balance = state.app.points_balance(&call, session.user.id).await?;
        let directory = Directory::load(&state.app, &call).await?;
        Ok::<_, Error>((balance, directory))
    }
    .await;
    let (balance, directory) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = PointsPage {
        nav: Nav::new(session, "points"),
        spendable: balance.spendable,
        liability: balance.liability,
        soonest_expiry: balance.soonest_expiry.map(|at| at.to_string()),
        lots: balance
            .lots
            .iter()
            .map(|lot| LotRow {
                remaining: lot.remaining,
                points: lot.points,
                funder: funder_name(&directory, lot.funder),
                granted_at: lot.granted_at.to_string(),
                expires_at: lot.expires_at.to_string(),
            })
            .collect(),
        partners: directory.partners(),
        // Every rendering carries a new reference, so a refused form is not tied to the old one.
        form: RedeemInput {
            reference: new_reference(),
            ..form
        },
        notice,
        error,
    };
    page(status, &view)
}

#[derive(Deserialize)]
pub struct PointsParams {
    /// Points redeemed by the form just posted.
    redeemed: Option<i64>,
}

pub async fn points_page(
    State(state): State<ServerState>,
    Query(params): Query<PointsParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = params
        .redeemed
        .map(|redeemed| format!("Redeemed {redeemed} points."));
    points(
        &state,
        &session,
        request_id,
        notice,
        RedeemInput::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct RedeemForm {
    csrf_token: String,
    #[serde(flatten)]
    redeem: RedeemInput,
}

portal_form!(RedeemForm, incomplete("redeem form"));

/// Redeems the signed-in person's points at a partner, then shows their points.
pub async fn redeem(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RedeemForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let redeemed = match form.redeem.to_redemption() {
        Ok(input) => state.app.redeem_points(&call, session.user.id, input).await,
        Err(error) => Err(error),
    };
    match redeemed {
        Ok(redemption) => {
            Redirect::to(&format!("/points?redeemed={}", redemption.points)).into_response()
        }
        Err(error) => match alert_text(&error) {
            Some(message) => {
                points(
                    &state,
                    &session,
                    request_id,
                    None,
                    form.redeem,
                    Some(message),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}

// -------------------------------------------------------------------------------------------
// The operator's points administration
// -------------------------------------------------------------------------------------------

/// A points rule in words.
struct RuleRow {
    earns: String,
    funder: String,
    expiry_days: u32,
}

impl RuleRow {
    fn new(rule: &PointsRuleView, directory: &Directory) -> Self {
        let earns = match rule.earning {
            PointsEarning::PerAmountSpent => format!(
                "{} points per major unit spent",
                rule.points_per_major_unit.unwrap_or(0)
            ),
            PointsEarning::PerAction => format!(
                "{} points for {}",
                rule.points.unwrap_or(0),
                rule.action.as_deref().unwrap_or("an action")
            ),
        };
        Self {
            earns,
            funder: funder_name(directory, rule.funder),
            expiry_days: rule.expiry_days,
        }
    }
}

#[derive(Template)]
#[template(path = "operator_points.html")]
struct PointsAdminPage {
    nav: Nav,
    rules: Vec<RuleRow>,
    /// The redemption rate in words, when set.
    rate: Option<String>,
    partners: Vec<OrgOption>,
    form: RuleInput,
    rate_form: RateInput,
    notice: Option<String>,
    error: Option<String>,
}

/// What the rule form last held, to show again with its error.
#[derive(Default, Deserialize)]
pub struct RuleInput {
    #[serde(default)]
    earning: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    points: String,
    #[serde(default)]
    points_per_major_unit: String,
    #[serde(default)]
    funder: String,
    #[serde(default)]
    expiry_days: String,
}

impl RuleInput {
    fn to_new_rule(&self) -> Result<NewPointsRule, Error> {
        let whole = |field: &str, text: &str| match text.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| Error::invalid(field, "must be a whole number")),
        };
        let earning = match self.earning.as_str() {
            "per_action" => PointsEarning::PerAction,
            "per_amount_spent" => PointsEarning::PerAmountSpent,
            _ => {
                return Err(Error::invalid(
                    "earning",
                    "must be per_action or per_amount_spent",
                ));
            }
        };
        let action = match self.action.trim() {
            "" => None,
            action => Some(action.to_owned()),
        };
        Ok(NewPointsRule {
            id: None,
            earning,
            points_per_major_unit: whole("points_per_major_unit", &self.points_per_major_unit)?,
            action,
            points: whole("points", &self.points)?,
            funder: match self.funder.trim() {
                "" => None,
                funder => Some(funder.parse()?),
            },
            expiry_days: self.expiry_days.trim().parse().map_err(|_| {
                Error::invalid("expiry_days", "must be a whole number of days, 1 to 3650")
            })?,
        })
    }
}

/// What the rate form last held.
#[derive(Default, Deserialize)]
pub struct RateInput {
    #[serde(default)]
    currency: String,
    #[serde(default)]
    minor_per_point: String,
}

impl RateInput {
    fn to_settings(&self) -> Result<PointsSettings, Error> {
        Ok(PointsSettings {
            currency: Currency::parse(&self.currency.trim().to_ascii_uppercase())?,
            minor_per_point: self.minor_per_point.trim().parse().map_err(|_| {
                Error::invalid(
                    "minor_per_point",
                    "must be a whole number of minor units (cents)",
                )
            })?,
        })
    }
}

/// Renders the points administration, with the forms as last posted and `error` in its alert.
async fn points_admin(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    notice: Option<String>,
    (form, rate_form): (RuleInput, RateInput),
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        // Reading rules is open to everyone signed in; this page is the operator's.
        if !session
            .actor
            .acting
            .is_some_and(|acting| acting.is_operator)
        {
            return Err(not_operator());
        }
        let rules = state.app.points_rules(&call).await?;
        let settings = state.app.points_settings(&call).await?;
        let directory = Directory::load(&state.app, &call).await?;
        Ok::<_, Error>((rules, settings, directory))
    }
    .await;
    let (rules, settings, directory) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = PointsAdminPage {
        nav: Nav::new(session, "operator-points"),
        rules: rules
            .iter()
            .map(|rule| RuleRow::new(rule, &directory))
            .collect(),
        rate: settings.map(|settings| {
            format!(
                "one point is worth {}",
                settings.currency.format(settings.minor_per_point)
            )
        }),
        partners: directory.partners(),
        form: RuleInput {
            earning: if form.earning.is_empty() {
                "per_action".to_owned()
            } else {
                form.earning.clone()
            },
            ..form
        },
        rate_form: RateInput {
            currency: if rate_form.currency.is_empty() {
                "EUR".to_owned()
            } else {
                rate_form.currency.clone()
            },
            ..rate_form
        },
        notice,
        error,
    };
    page(status, &view)
}

#[derive(Deserialize)]
pub struct AdminParams {
    /// What the last form did: `rule` or `rate`.
    done: Option<String>,
}

pub async fn points_admin_page(
    State(state): State<ServerState>,
    Query(params): Query<AdminParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match params.done.as_deref() {
        Some("rule") => Some("The rule is in force.".to_owned()),
        Some("rate") => Some("The redemption rate is set.".to_owned()),
        _ => None,
    };
    points_admin(
        &state,
        &session,
        request_id,
        notice,
        Default::default(),
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct RuleForm {
    csrf_token: String,
    #[serde(flatten)]
    rule: RuleInput,
}

portal_form!(RuleForm, incomplete("points rule form"));

/// Adds a points rule, then shows the rules.
pub async fn add_rule(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RuleForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let set = match form.rule.to_new_rule() {
        Ok(input) => state.app.set_points_rule(&call, input).await,
        Err(error) => Err(error),
    };
    match set {
        Ok(_) => Redirect::to("/operator/points?done=rule").into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                let forms = (form.rule, RateInput::default());
                points_admin(&state, &session, request_id, None, forms, Some(message)).await
            }
            None => error_page(error, request_id),
        },
    }
}

#[derive(Deserialize)]
pub struct RateForm {
    csrf_token: String,
    #[serde(flatten)]
    rate: RateInput,
}

portal_form!(RateForm, incomplete("redemption rate form"));

/// Sets the redemption rate, then shows it.
pub async fn set_rate(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RateForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let set = match form.rate.to_settings() {
        Ok(settings) => state.app.set_points_settings(&call, settings).await,
        Err(error) => Err(error),
    };
    match set {
        Ok(_) => Redirect::to("/operator/points?done=rate").into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                let forms = (RuleInput::default(), form.rate);
                points_admin(&state, &session, request_id, None, forms, Some(message)).await
            }
            None => error_page(error, request_id),
        },
    }
}
