//! The operator's market administration (`/operator/market`): the commission rules in force and
//! a form to add one, the commission revenue, and buttons to release funds whose hold ended and
//! to run the payouts that are due.

use agora_app::{Call, NewCommissionRule, PortalSession};
use agora_domain::ledger::Currency;
use agora_domain::{Error, RequestId, Timestamp};
use agora_market::commission::{CommissionRule, RuleScope};
use askama::Template;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::orders::parse_amount;
use super::{
    Nav, PortalForm, alert_text, error_page, incomplete, page, request_id, session, signed_in_form,
};
use crate::ServerState;
use crate::extract::Query;

/// A commission rule in words.
struct RuleRow {
    scope: String,
    currency: String,
    rate: String,
    fixed: String,
    floor: String,
    cap: String,
}

impl From<&CommissionRule> for RuleRow {
    fn from(rule: &CommissionRule) -> Self {
        let scope = match &rule.scope {
            RuleScope::Default => "every line".to_owned(),
            RuleScope::Category { category } => format!("category {category}"),
            RuleScope::Seller { seller } => format!("seller {seller}"),
            RuleScope::SellerCategory { seller, category } => {
                format!("seller {seller} in category {category}")
            }
            RuleScope::Listing { listing } => format!("listing {listing}"),
        };
        let terms = &rule.terms;
        let amount = |minor: i64| match rule.currency {
            Some(currency) => currency.format(minor),
            None => minor.to_string(),
        };
        Self {
            scope,
            currency: rule
                .currency
                .map_or_else(|| "any".to_owned(), |currency| currency.code().to_owned()),
            rate: format!("{}.{:02}%", terms.rate_bps / 100, terms.rate_bps % 100),
            fixed: amount(terms.fixed),
            floor: amount(terms.floor),
            cap: terms.cap.map_or_else(|| "none".to_owned(), amount),
        }
    }
}

#[derive(Template)]
#[template(path = "operator_market.html")]
struct MarketAdminPage {
    nav: Nav,
    currency: String,
    revenue: String,
    rules: Vec<RuleRow>,
    notice: Option<String>,
    form: RuleInput,
    error: Option<String>,
}

/// What the rule form last held, to show again with its error.
#[derive(Default, Deserialize)]
pub struct RuleInput {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    scope_value: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    rate_bps: String,
    #[serde(default)]
    fixed: String,
    #[serde(default)]
    floor: String,
    #[serde(default)]
    cap: String,
}

impl RuleInput {
    fn to_new_rule(&self) -> Result<NewCommissionRule, Error> {
        let value = self.scope_value.trim();
        let scope = match self.scope.as_str() {
            "default" => RuleScope::Default,
            "category" => RuleScope::Category {
                category: value.to_owned(),
            },
            "seller" => RuleScope::Seller {
                seller: value.parse()?,
            },
            "listing" => RuleScope::Listing {
                listing: value.parse()?,
            },
            _ => {
                return Err(Error::invalid(
                    "scope",
                    "must be default, category, seller or listing",
                ));
            }
        };
        let currency = match self.currency.trim() {
            "" => None,
            code => Some(Currency::parse(&code.to_ascii_uppercase())?),
        };
        let amount = |field: &str, text: &str| match (text.trim(), currency) {
            ("", _) => Ok(None),
            (text, Some(currency)) => parse_amount(field, text, currency).map(Some),
            (_, None) => Err(Error::invalid(
                field,
                "needs a currency: a rule for any currency is a pure rate",
            )),
        };
        Ok(NewCommissionRule {
            scope,
            currency,
            rate_bps: self.rate_bps.trim().parse().map_err(|_| {
                Error::invalid(
                    "rate_bps",
                    "must be a whole number of basis points (500 is 5%)",
                )
            })?,
            fixed: amount("fixed", &self.fixed)?.unwrap_or(0),
            floor: amount("floor", &self.floor)?.unwrap_or(0),
            cap: amount("cap", &self.cap)?,
        })
    }
}

#[derive(Deserialize)]
pub struct AdminParams {
    currency: Option<String>,
    /// Parts released by the last press of the release button.
    released: Option<u32>,
    /// Payouts made and refused by the last payout run.
    paid_out: Option<u32>,
    refused: Option<u32>,
}

/// Renders the market administration in `currency`, with `form` and `error` in the rule form.
async fn market_admin(
    state: &ServerState,
    session: &PortalSession,
    request_id: RequestId,
    currency: Result<Currency, Error>,
    notice: Option<String>,
    form: RuleInput,
    error: Option<String>,
) -> Response {
    let call = Call::new(&session.actor, request_id);
    let loaded = async {
        let currency = currency?;
        let revenue = state.app.revenue(&call, currency).await?;
        let rules = state.app.commission_rules(&call).await?;
        Ok::<_, Error>((revenue, rules))
    }
    .await;
    let (revenue, rules) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return error_page(error, request_id),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let view = MarketAdminPage {
        nav: Nav::new(session, "operator"),
        currency: revenue.currency.code().to_owned(),
        revenue: revenue.formatted,
        rules: rules.iter().map(RuleRow::from).collect(),
        notice,
        form: RuleInput {
            scope: if form.scope.is_empty() {
                "default".to_owned()
            } else {
                form.scope.clone()
            },
            ..form
        },
        error,
    };
    page(status, &view)
}

fn currency_of(code: Option<&str>) -> Result<Currency, Error> {
    match code.map(str::trim) {
        None | Some("") => Currency::parse("EUR"),
        Some(code) => Currency::parse(&code.to_ascii_uppercase()),
    }
}

pub async fn market_admin_page(
    State(state): State<ServerState>,
    Query(params): Query<AdminParams>,
    request: Request,
) -> Response {
    let request_id = request_id(request.extensions());
    let session = match session(&state, request.headers()).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let notice = match (params.released, params.paid_out, params.refused) {
        (Some(released), _, _) => Some(format!(
            "Released {released} fulfilled part(s) whose hold had ended."
        )),
        (None, Some(paid_out), refused) => Some(format!(
            "Paid out {paid_out} seller(s); {} refused.",
            refused.unwrap_or(0)
        )),
        _ => None,
    };
    market_admin(
        &state,
        &session,
        request_id,
        currency_of(params.currency.as_deref()),
        notice,
        RuleInput::default(),
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

portal_form!(RuleForm, incomplete("commission rule form"));

/// Adds a commission rule, then shows the rules.
pub async fn add_rule(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RuleForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let set = match form.rule.to_new_rule() {
        Ok(input) => state.app.set_commission_rule(&call, input).await,
        Err(error) => Err(error),
    };
    match set {
        Ok(_) => Redirect::to("/operator/market").into_response(),
        Err(error) => match alert_text(&error) {
            Some(message) => {
                let currency = currency_of(Some(&form.rule.currency));
                market_admin(
                    &state,
                    &session,
                    request_id,
                    currency,
                    None,
                    form.rule,
                    Some(message),
                )
                .await
            }
            None => error_page(error, request_id),
        },
    }
}

#[derive(Deserialize)]
pub struct RunForm {
    csrf_token: String,
    #[serde(default)]
    currency: String,
}

portal_form!(RunForm, incomplete("form"));

/// Releases every fulfilled part whose hold ended by now.
pub async fn release_due(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RunForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    match state.app.release_due(&call, Timestamp::now()).await {
        Ok(released) => {
            let currency = currency_of(Some(&form.currency))
                .map_or_else(|_| "EUR".to_owned(), |currency| currency.code().to_owned());
            Redirect::to(&format!(
                "/operator/market?released={released}&currency={currency}"
            ))
            .into_response()
        }
        Err(error) => error_page(error, request_id),
    }
}

/// Pays every seller whose payout is due now, in the page's currency.
pub async fn run_payouts(State(state): State<ServerState>, request: Request) -> Response {
    let request_id = request_id(request.extensions());
    let (session, form): (_, RunForm) = match signed_in_form(&state, request).await {
        Ok(posted) => posted,
        Err(response) => return response,
    };
    let call = Call::new(&session.actor, request_id);
    let run = match currency_of(Some(&form.currency)) {
        Ok(currency) => state
            .app
            .run_payouts(&call, currency, Timestamp::now())
            .await
            .map(|run| (currency, run)),
        Err(error) => Err(error),
    };
    match run {
        Ok((currency, run)) => {
            for refusal in &run.refused {
                tracing::info!(%refusal, "a due payout was refused");
            }
            Redirect::to(&format!(
                "/operator/market?paid_out={}&refused={}&currency={}",
                run.payouts.len(),
                run.refused.len(),
                currency.code()
            ))
            .into_response()
        }
        Err(error) => error_page(error, request_id),
    }
}
