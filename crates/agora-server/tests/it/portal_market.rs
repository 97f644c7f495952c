//! The portal's marketplace pages over HTTP with cookies, on each backend: a customer signs up,
//! buys from a listing page with the wallet the operator topped up, and follows the order; the
//! seller's owner fulfils it and refunds part of a line; another customer learns nothing of it.

use agora_app::{Call, NewCommissionRule, NewListing, NewMember};
use agora_domain::ledger::Currency;
use agora_domain::listing::ListingKind;
use agora_domain::{Actor, Email, Password, RequestId, Role};
use agora_market::commission::RuleScope;
use reqwest::StatusCode;

use crate::harness::{TestApi, backends};

/// A person in a browser: the session cookie and the session's CSRF token.
pub struct Visitor<'a> {
    api: &'a TestApi,
    pub session_secret: String,
    pub csrf_token: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
}

impl<'a> Visitor<'a> {
    /// Signs up over HTTP, as a person does: the sign-up page's double-submit CSRF, then the form.
    pub async fn sign_up(api: &'a TestApi, name: &str, email: &str) -> Self {
        let page = api
            .client
            .get(format!("{}/signup", api.url))
            .send()
            .await
            .unwrap();
        let csrf_cookie = set_cookie(&page, "agora_csrf");
        let csrf = csrf_in(&page.text().await.unwrap());
        let response = api
            .client
            .post(format!("{}/signup", api.url))
            .header("cookie", format!("agora_csrf={csrf_cookie}"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("display_name", name),
                ("email", email),
                ("password", "a long enough password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let session_secret = set_cookie(&response, "agora_session");
        let mut visitor = Self {
            api,
            session_secret,
            csrf_token: String::new(),
        };
        visitor.csrf_token = csrf_in(&visitor.get("/").await.html);
        visitor
    }

    /// Signs in a member whose password was set when they were added.
    pub async fn sign_in(api: &'a TestApi, email: &str, password: &str) -> Self {
        let signed_in = api
            .app
            .sign_in(email, password, RequestId::new())
            .await
            .unwrap();
        Self {
            api,
            session_secret: signed_in.session_secret,
            csrf_token: signed_in.csrf_token,
        }
    }

    pub async fn actor(&self) -> Actor {
        self.api
            .app
            .authenticate_session(&self.session_secret)
            .await
            .unwrap()
            .actor
    }

    async fn answer(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status(),
            location: response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_owned()),
            html: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .api
            .client
            .get(format!("{}{path}", self.api.url))
            .header("cookie", format!("agora_session={}", self.session_secret))
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }

    /// Posts a form with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = vec![("csrf_token", self.csrf_token.as_str())];
        form.extend_from_slice(fields);
        let response = self
            .api
            .client
            .post(format!("{}{path}", self.api.url))
            .header("cookie", format!("agora_session={}", self.session_secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        Self::answer(response).await
    }
}

fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .unwrap_or_else(|| panic!("the response sets {name}"))
        .to_owned()
}

fn csrf_in(html: &str) -> String {
    html.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_owned()
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// Adds a member with a password to `org_id`, as the instance does.
pub async fn add_member(api: &TestApi, org_id: agora_domain::OrgId, email: &str, role: Role) {
    let system = Actor::system();
    let member = NewMember {
        email: Email::parse(email).unwrap(),
        role,
        display_name: None,
        password: Some(Password::parse("the right password").unwrap()),
    };
    api.app
        .add_member(&Call::new(&system, RequestId::new()), org_id, member)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_buys_with_the_wallet_and_the_seller_fulfils_and_refunds_from_the_portal() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let operator = api
            .app
            .authenticate_token(&api.operator_token)
            .await
            .unwrap();
        let fresh: agora_domain::OrgId = api.partner("FreshMart").await.parse().unwrap();
        add_member(&api, fresh, "ana@freshmart.example", Role::Owner).await;
        let ana = Visitor::sign_in(&api, "ana@freshmart.example", "the right password").await;
        let milk = api
            .app
            .create_listing(
                &Call::new(&ana.actor().await, RequestId::new()),
                NewListing {
                    seller: None,
                    kind: ListingKind::Product { stock: Some(10) },
                    title: "Organic whole milk".to_owned(),
                    description: String::new(),
                    category: "groceries/dairy".to_owned(),
                    price: 129,
                    currency: "EUR".to_owned(),
                },
            )
            .await
            .unwrap()
            .id;
        api.app
            .set_commission_rule(
                &Call::new(&operator, RequestId::new()),
                NewCommissionRule {
                    scope: RuleScope::Default,
                    currency: None,
                    rate_bps: 1000,
                    fixed: 0,
                    floor: 0,
                    cap: None,
                },
            )
            .await
            .unwrap();

        let cleo = Visitor::sign_up(&api, "Cleo", "cleo@customer.example").await;
        let cleo_id = cleo.actor().await.user_id.unwrap();
        api.app
            .top_up_wallet(
                &Call::new(&operator, RequestId::new()),
                cleo_id,
                eur(),
                2000,
                None,
            )
            .await
            .unwrap();
        let wallet = cleo.get("/wallet").await;
        assert_eq!(wallet.status, 200);
        assert!(wallet.html.contains("20.00 EUR"), "{}", wallet.html);
        // A customer's navigation offers the market, their orders and their wallet, not a shop.
        assert!(
            wallet.html.contains("href=\"/orders\"") && !wallet.html.contains("href=\"/shop\"")
        );

        let listing = cleo.get(&format!("/market/listings/{milk}")).await;
        assert_eq!(listing.status, 200);
        assert!(listing.html.contains("id=\"buy\""), "{}", listing.html);
        let buy = format!("/market/listings/{milk}/buy");
        let bought = cleo
            .post(&buy, &[("quantity", "2"), ("pay_with", "wallet")])
            .await;
        assert_eq!(bought.status, 303, "{}", bought.html);
        let order_path = bought.location.unwrap();
        assert!(order_path.starts_with("/orders/ord_"), "{order_path}");
        let order_id = order_path.trim_start_matches("/orders/").to_owned();

        let order = cleo.get(&order_path).await;
        assert_eq!(order.status, 200);
        assert!(
            order.html.contains("Organic whole milk")
                && order.html.contains("<span id=\"order-status\">paid</span>")
                && order.html.contains("2.58 EUR")
                && order.html.contains("id=\"cancel-order\""),
            "{}",
            order.html
        );
        // The commission is the seller's business, not the customer's.
        assert!(
            !order.html.to_lowercase().contains("commission"),
            "{}",
            order.html
        );
        let history = cleo.get("/orders").await;
        assert!(history.html.contains(&order_id), "{}", history.html);
        assert!(cleo.get("/wallet").await.html.contains("17.42 EUR"));

        // The seller sees the order with its Fulfil button and the commission of each line.
        let sales = ana.get("/shop/orders").await;
        assert_eq!(sales.status, 200);
        assert!(
            sales.html.contains(&order_id) && sales.html.contains("Fulfil"),
            "{}",
            sales.html
        );
        assert!(sales.html.contains("href=\"/shop/balance\""));
        let shop_order = format!("/shop/orders/{order_id}");
        let page = ana.get(&shop_order).await;
        assert!(
            page.html
                .contains("<td class=\"amount commission\">0.25 EUR</td>"),
            "{}",
            page.html
        );
        let fulfilled = ana.post(&format!("{shop_order}/fulfil"), &[]).await;
        assert_eq!(
            (fulfilled.status.as_u16(), fulfilled.location.as_deref()),
            (303, Some(shop_order.as_str()))
        );
        let page = ana.get(&shop_order).await;
        assert!(page.html.contains("fulfilled, on hold"), "{}", page.html);
        let line_id = page
            .html
            .split("data-line=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let refund = format!("{shop_order}/refund");
        let too_much = ana
            .post(
                &refund,
                &[
                    ("line_id", &line_id),
                    ("currency", "EUR"),
                    ("amount", "9.00"),
                    ("reason", "too much"),
                ],
            )
            .await;
        assert!(too_much.status.is_client_error(), "{}", too_much.html);
        assert!(
            too_much.html.contains("role=\"alert\""),
            "{}",
            too_much.html
        );
        let refunded = ana
            .post(
                &refund,
                &[
                    ("line_id", &line_id),
                    ("currency", "EUR"),
                    ("amount", "1.00"),
                    ("reason", "one carton leaked"),
                ],
            )
            .await;
        assert_eq!(refunded.status, 303, "{}", refunded.html);
        let page = ana.get(&shop_order).await;
        assert!(
            page.html
                .contains("<td class=\"amount refunded\">1.00 EUR</td>"),
            "{}",
            page.html
        );
        let balance = ana.get("/shop/balance").await;
        assert_eq!(balance.status, 200);
        assert!(
            balance.html.contains("id=\"request-payout\""),
            "{}",
            balance.html
        );

        let order = cleo.get(&order_path).await;
        assert!(
            order.html.contains("partially refunded")
                && order
                    .html
                    .contains("<td class=\"amount\" id=\"order-refunded\">1.00 EUR</td>")
                && !order.html.contains("id=\"cancel-order\""),
            "{}",
            order.html
        );
        assert!(cleo.get("/wallet").await.html.contains("18.42 EUR"));

        // Another customer cannot see or cancel the order, and learns nothing of it.
        let bob = Visitor::sign_up(&api, "Bob", "bob@customer.example").await;
        let theirs = bob.get(&order_path).await;
        assert_eq!(theirs.status, 404, "{}", theirs.html);
        assert!(
            !theirs.html.contains("Organic whole milk"),
            "{}",
            theirs.html
        );
        let cancelled = bob.post(&format!("{order_path}/cancel"), &[]).await;
        assert_eq!(cancelled.status, 404);
        // Nor does a customer reach a shop's pages.
        assert_eq!(bob.get(&shop_order).await.status, 403);
        // An empty wallet is said on the listing page, with what to do next.
        let refused = bob
            .post(&buy, &[("quantity", "1"), ("pay_with", "wallet")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.html);
        assert!(
            refused.html.contains("role=\"alert\"") && refused.html.contains("top it up"),
            "{}",
            refused.html
        );
        // A form from elsewhere is refused.
        let forged = api
            .client
            .post(format!("{}{buy}", api.url))
            .header("cookie", format!("agora_session={}", bob.session_secret))
            .form(&[("csrf_token", "forged"), ("pay_with", "wallet")])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_adds_a_commission_rule_and_runs_the_market_from_the_portal() {
    let api = TestApi::start(crate::harness::Backend::Sqlite).await;
    let operator_org = api
        .app
        .authenticate_token(&api.operator_token)
        .await
        .unwrap()
        .acting
        .unwrap()
        .org_id;
    add_member(&api, operator_org, "ops@agora.localhost", Role::Admin).await;
    let ops = Visitor::sign_in(&api, "ops@agora.localhost", "the right password").await;
    let page = ops.get("/operator/market").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html
            .contains("href=\"/operator/market\" aria-current=\"page\"")
    );
    assert!(page.html.contains("0.00 EUR") && page.html.contains("No rules"));

    let added = ops
        .post(
            "/operator/market/rules",
            &[
                ("scope", "category"),
                ("scope_value", "groceries"),
                ("rate_bps", "500"),
                ("currency", "EUR"),
                ("cap", "2.00"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let page = ops.get("/operator/market").await;
    assert!(
        page.html.contains("category groceries")
            && page.html.contains("5.00%")
            && page.html.contains("2.00 EUR"),
        "{}",
        page.html
    );
    let refused = ops
        .post(
            "/operator/market/rules",
            &[("scope", "default"), ("rate_bps", "20000")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.html.contains("role=\"alert\"") && refused.html.contains("basis points"),
        "{}",
        refused.html
    );

    let released = ops
        .post("/operator/market/release", &[("currency", "EUR")])
        .await;
    assert_eq!(
        released.location.as_deref(),
        Some("/operator/market?released=0&currency=EUR")
    );
    let run = ops
        .post("/operator/market/payouts", &[("currency", "EUR")])
        .await;
    assert_eq!(run.status, 303);
    assert!(
        ops.get(run.location.as_deref().unwrap())
            .await
            .html
            .contains("Paid out 0 seller(s)")
    );

    // A customer is refused the operator's page.
    let cleo = Visitor::sign_up(&api, "Cleo", "cleo@customer.example").await;
    assert_eq!(cleo.get("/operator/market").await.status, 403);
}
