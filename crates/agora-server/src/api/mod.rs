//! The JSON API under `/api/v1`. Every route is registered through utoipa's router, so the
//! OpenAPI document and the routes come from the same annotations.

mod audit;
mod coalitions;
mod datasets;
mod ledger;
mod listings;
mod market;
mod miniapps;
mod orgs;
mod points;
mod protocols;
mod settlement;
mod system;

use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ServerState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora API",
        description = "Partners share data under protocols the engine enforces, decide together, and trade through one marketplace. \
                       Errors are RFC 9457 problem documents; requests that create something accept an `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "system", description = "Health, readiness, metrics and this document"),
        (name = "organisations", description = "Organisations, members and API tokens"),
        (name = "audit", description = "The tamper-evident audit log, its chain and signed checkpoints"),
        (name = "events", description = "The event outbox, as a cursor-paginated feed"),
        (name = "datasets", description = "Datasets: streaming uploads of CSV, JSON lines and Parquet, column classes, versions, rows as of any version"),
        (name = "protocols", description = "Data-sharing protocols (drafts, approvals bound to content hashes, pauses, revocation, versions and diffs), governed SQL queries and their log"),
        (name = "ledger", description = "The double-entry ledger: accounts, transfers, balances as of any instant, its hash chain"),
        (name = "marketplace", description = "Listings of products and services, free for every partner; browse, search and bookable slots"),
        (name = "coalitions", description = "Coalitions: goals and sub-goals, pledges (conditional ones too) and their fulfilment, charters, delegations, proposals whose typed actions run when they pass, pooled data under competition-safe rules, and the Popolo register"),
        (name = "points", description = "Points: accrual rules, grants, balances, redemptions soonest-expiring first, expiry into breakage"),
        (name = "settlement", description = "Partner-to-partner clearing: obligations, net debit caps, settlement windows and their reports"),
        (name = "superapp", description = "Mini-apps: manifests and bundles served on their own origins, versions, the operator's review, rollback, figures, and payment requests customers confirm in the portal's cashier"),
        (name = "marketplace", description = "Orders and money: commission rules, seller settings, checkout, fulfilment, refunds, wallets, balances, payouts"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("agora_…")
                    .build(),
            ),
        );
    }
}

/// Cursor pagination: pass the previous page's `next_cursor` to continue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Where to continue, as given by the previous page.
    pub cursor: Option<String>,
    /// Items per page: 1 to `page_size_max` (200 by default).
    pub limit: Option<u32>,
}

/// The API routes with their documentation.
pub fn routes() -> OpenApiRouter<ServerState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi_json))
        .routes(routes!(system::me))
        .routes(routes!(orgs::create_org, orgs::list_orgs))
        .routes(routes!(orgs::get_org, orgs::update_org))
        .routes(routes!(orgs::approve_org))
        .routes(routes!(orgs::list_members, orgs::add_member))
        .routes(routes!(orgs::remove_member))
        .routes(routes!(orgs::list_tokens, orgs::create_token))
        .routes(routes!(orgs::revoke_token))
        .routes(routes!(audit::org_audit))
        .routes(routes!(audit::org_audit_export))
        .routes(routes!(audit::all_audit))
        .routes(routes!(audit::chain))
        .routes(routes!(audit::list_checkpoints, audit::create_checkpoint))
        .routes(routes!(audit::public_key))
        .routes(routes!(audit::org_events))
        .routes(routes!(coalitions::found, coalitions::list))
        .routes(routes!(coalitions::show))
        .routes(routes!(coalitions::add_goal))
        .routes(routes!(coalitions::pledge))
        .routes(routes!(coalitions::fulfil))
        .routes(routes!(coalitions::delegate))
        .routes(routes!(coalitions::propose, coalitions::proposals))
        .routes(routes!(coalitions::proposal))
        .routes(routes!(coalitions::vote))
        .routes(routes!(coalitions::execute))
        .routes(routes!(coalitions::fund))
        .routes(routes!(coalitions::contribute))
        .routes(routes!(coalitions::classify))
        .routes(routes!(coalitions::register))
        .routes(routes!(datasets::list))
        .routes(routes!(datasets::show, datasets::delete))
        .routes(routes!(datasets::upload, datasets::versions))
        .routes(routes!(datasets::rows))
        .routes(routes!(datasets::classify))
        .routes(routes!(protocols::create, protocols::list))
        .routes(routes!(protocols::show, protocols::revise))
        .routes(routes!(protocols::versions))
        .routes(routes!(protocols::diff))
        .routes(routes!(protocols::propose))
        .routes(routes!(protocols::approve))
        .routes(routes!(protocols::pause))
        .routes(routes!(protocols::resume))
        .routes(routes!(protocols::revoke))
        .routes(routes!(protocols::run))
        .routes(routes!(protocols::log))
        .routes(routes!(ledger::create_accounts))
        .routes(routes!(ledger::get_account))
        .routes(routes!(ledger::create_transfers))
        .routes(routes!(ledger::get_transfer))
        .routes(routes!(ledger::verify))
        .routes(routes!(listings::create_listing, listings::list_listings))
        .routes(routes!(listings::get_listing, listings::update_listing))
        .routes(routes!(listings::archive_listing))
        .routes(routes!(listings::add_slot, listings::list_slots))
        .routes(routes!(points::set_rule, points::list_rules))
        .routes(routes!(points::set_settings, points::get_settings))
        .routes(routes!(points::grant))
        .routes(routes!(points::balance))
        .routes(routes!(points::redeem))
        .routes(routes!(points::expire))
        .routes(routes!(settlement::record_obligation))
        .routes(routes!(settlement::set_cap, settlement::get_caps))
        .routes(routes!(settlement::list_windows))
        .routes(routes!(settlement::close_window))
        .routes(routes!(settlement::report))
        .routes(routes!(
            market::list_commission_rules,
            market::set_commission_rule
        ))
        .routes(routes!(
            market::get_seller_settings,
            market::set_seller_settings
        ))
        .routes(routes!(market::customer_orders, market::place_order))
        .routes(routes!(market::get_order))
        .routes(routes!(market::fulfil_order))
        .routes(routes!(market::refund_order))
        .routes(routes!(market::cancel_order))
        .routes(routes!(market::seller_orders))
        .routes(routes!(market::get_wallet))
        .routes(routes!(market::top_up_wallet))
        .routes(routes!(market::seller_balance))
        .routes(routes!(market::list_payouts, market::request_payout))
        .routes(routes!(market::run_payouts))
        .routes(routes!(market::release_due))
        .routes(routes!(market::revenue))
        .routes(routes!(miniapps::register, miniapps::of_org))
        .routes(routes!(miniapps::directory))
        .routes(routes!(miniapps::show))
        .routes(routes!(miniapps::upload_version))
        .routes(routes!(miniapps::review))
        .routes(routes!(miniapps::rollback))
        .routes(routes!(miniapps::review_queue))
        .routes(routes!(miniapps::request_payment))
        .routes(routes!(miniapps::payment_request))
}

/// The OpenAPI document this server serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}
