//! The marketplace's orders and money over HTTP: the worked example of `docs/marketplace-orders.md`
//! (a 33.00 cart from two sellers, 5% commission, a 10.00 refund, release and payout) with its
//! balances, an idempotent checkout, who may do what (the refusing rule named), and bad input
//! answered with problems that name the field.
//!
//! Customers cannot call the API (the `customer-self` policy admits no token for a person's own
//! purse), so the operator checks out for them, as the cash desk would; listings are inserted into
//! the store directly, as this branch has no listings API yet.

use agora_domain::listing::{Category, Description, Listing, ListingKind, ListingStatus, Title};
use agora_domain::{ListingId, OrgId, RequestId, Timestamp, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

/// The operator, two sellers with an admin each, and a customer with no API access.
struct Shop {
    api: TestApi,
    fresh: String,
    bright: String,
    fresh_admin: String,
    bright_admin: String,
    customer: UserId,
    milk: ListingId,
    coffee: ListingId,
}

impl Shop {
    async fn open(backend: crate::harness::Backend) -> Self {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let bright = api.partner("Brightbrew").await;
        let fresh_admin = api
            .member_token(&fresh, "ana@freshmart.example", "admin")
            .await;
        let bright_admin = api
            .member_token(&bright, "bo@brightbrew.example", "admin")
            .await;
        let customer = api
            .app
            .sign_up(
                "cleo@example.org",
                "Cleo",
                "a long enough password",
                RequestId::new(),
            )
            .await
            .unwrap()
            .user
            .id;
        let milk = listing(&api, &fresh, "Whole milk", 1_250).await;
        let coffee = listing(&api, &bright, "Cold brew", 800).await;
        Self {
            api,
            fresh,
            bright,
            fresh_admin,
            bright_admin,
            customer,
            milk,
            coffee,
        }
    }

    fn op(&self) -> &str {
        &self.api.operator_token
    }

    /// Sets the 5% default rule and a hold of 0 days with manual payouts above 1.00 for both sellers.
    async fn rules(&self) {
        let (status, rule) = self
            .api
            .post(
                "/api/v1/commission-rules",
                self.op(),
                json!({ "scope": { "scope": "default" }, "rate_bps": 500 }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rule}");
        for seller in [&self.fresh, &self.bright] {
            let (status, settings) = self
                .api
                .call(
                    Method::PUT,
                    &format!("/api/v1/orgs/{seller}/seller-settings"),
                    self.op(),
                    Some(settings()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{settings}");
        }
    }

    async fn checkout(&self, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self
            .api
            .client
            .post(format!(
                "{}/api/v1/customers/{}/orders",
                self.api.url, self.customer
            ))
            .bearer_auth(self.op())
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    fn cart(&self) -> Value {
        json!({
            "lines": [
                { "listing_id": self.milk, "quantity": 2 },
                { "listing_id": self.coffee, "quantity": 1 },
            ],
            "pay_with": { "method": "wallet" },
        })
    }

    async fn top_up(&self, amount: i64) -> (StatusCode, Value) {
        self.api
            .post(
                &format!("/api/v1/customers/{}/wallet/top-ups", self.customer),
                self.op(),
                json!({ "currency": "EUR", "amount": amount }),
            )
            .await
    }

    async fn balance(&self, seller: &str) -> Value {
        let (status, balance) = self
            .api
            .get(
                &format!("/api/v1/orgs/{seller}/balance?currency=EUR"),
                self.op(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{balance}");
        balance
    }

    /// A paid order of the cart; returns it.
    async fn paid_order(&self) -> Value {
        self.rules().await;
        assert_eq!(self.top_up(10_000).await.0, StatusCode::OK);
        let (status, order) = self.checkout(None, &self.cart()).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order
    }
}

fn settings() -> Value {
    json!({
        "hold_days": 0,
        "schedule": { "every": "manual" },
        "minimum": 100,
        "refund_policy": "proportional",
        "net_debit_cap": 0,
    })
}

async fn listing(api: &TestApi, seller: &str, title: &str, price: i64) -> ListingId {
    let now = Timestamp::now();
    let seller: OrgId = seller.parse().unwrap();
    let listing = Listing {
        id: ListingId::new(),
        seller,
        kind: ListingKind::Product { stock: Some(5) },
        title: Title::parse(title).unwrap(),
        description: Description::parse("").unwrap(),
        category: Category::parse("groceries").unwrap(),
        price,
        currency: "EUR".parse().unwrap(),
        status: ListingStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let mut tx = api.app.store().write().await.unwrap();
    tx.insert_listing(&listing).await.unwrap();
    tx.commit().await.unwrap();
    listing.id
}

fn line_of(order: &Value, listing: ListingId) -> String {
    order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["listing"] == listing.to_string())
        .unwrap_or_else(|| panic!("no line for {listing} in {order}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[track_caller]
fn assert_problem(answer: &(StatusCode, Value), status: StatusCode, key: &str, value: &str) {
    let (actual, problem) = answer;
    assert_eq!(*actual, status, "{problem}");
    assert_eq!(problem[key], value, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("urn:agora:problem:")),
        "{problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_over_http_leaves_the_balances_of_the_docs() {
    for backend in backends() {
        let shop = Shop::open(backend).await;
        let (api, op) = (&shop.api, shop.op());
        shop.rules().await;
        let (status, rules) = api.get("/api/v1/commission-rules", op).await;
        assert_eq!(status, StatusCode::OK, "{rules}");
        assert_eq!(rules[0]["terms"]["rate_bps"], 500, "{rules}");
        let (_, settings) = api
            .get(
                &format!("/api/v1/orgs/{}/seller-settings", shop.fresh),
                &shop.fresh_admin,
            )
            .await;
        assert_eq!(settings["hold_days"], 0, "a seller reads its settings");

        let (status, wallet) = shop.top_up(10_000).await;
        assert_eq!(status, StatusCode::OK, "{wallet}");
        assert_eq!(wallet["formatted"], "100.00 EUR");

        // 2 × 12.50 + 1 × 8.00 = 33.00, paid from the wallet; the retry answers the same order.
        let (status, order) = shop.checkout(Some("cart-1"), &shop.cart()).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(order["total_formatted"], "33.00 EUR");
        assert_eq!(order["status"], "paid");
        let (status, retried) = shop.checkout(Some("cart-1"), &shop.cart()).await;
        assert_eq!(status, StatusCode::CREATED, "{retried}");
        assert_eq!(retried["id"], order["id"]);
        let order_id = order["id"].as_str().unwrap();
        let (_, wallet) = api
            .get(
                &format!("/api/v1/customers/{}/wallet?currency=EUR", shop.customer),
                op,
            )
            .await;
        assert_eq!(wallet["formatted"], "67.00 EUR", "paid once: {wallet}");

        // Each seller's admin fulfils its own part; `{}` means the organisation the token acts for.
        let fulfil = format!("/api/v1/orders/{order_id}/fulfil");
        let (status, _) = api.post(&fulfil, &shop.fresh_admin, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, fulfilled) = api.post(&fulfil, &shop.bright_admin, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{fulfilled}");
        assert_eq!(fulfilled["status"], "fulfilled");
        let fresh = shop.balance(&shop.fresh).await;
        assert_eq!(
            (&fresh["pending"], &fresh["available"]),
            (&json!(2_375), &json!(0))
        );
        assert_eq!(shop.balance(&shop.bright).await["pending"], 760);

        // 10.00 of the milk back: 0.50 of commission reversed, 9.50 from FreshMart.
        let milk_line = line_of(&fulfilled, shop.milk);
        let (status, refund) = api
            .post(
                &format!("/api/v1/orders/{order_id}/refunds"),
                &shop.fresh_admin,
                json!({ "line_id": milk_line, "amount": 1_000, "reason": "one bottle broken" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{refund}");
        assert_eq!(
            (&refund["commission_reversed"], &refund["seller_share"]),
            (&json!(50), &json!(950))
        );
        assert_eq!(shop.balance(&shop.fresh).await["pending"], 1_425);

        let (status, released) = api.post("/api/v1/market/release-due", op, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{released}");
        assert_eq!(released["released"], 2);
        let (_, completed) = api.get(&format!("/api/v1/orders/{order_id}"), op).await;
        assert_eq!(completed["status"], "completed", "{completed}");
        let fresh = shop.balance(&shop.fresh).await;
        assert_eq!(fresh["available_formatted"], "14.25 EUR", "{fresh}");
        assert_eq!(fresh["pending"], 0);

        let (status, payout) = api
            .post(
                &format!("/api/v1/orgs/{}/payouts", shop.fresh),
                &shop.fresh_admin,
                json!({ "currency": "EUR", "reference": "FreshMart week 47" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{payout}");
        assert_eq!(payout["amount"], 1_425);
        let fresh = shop.balance(&shop.fresh).await;
        assert_eq!(
            (&fresh["available"], &fresh["paid_out"]),
            (&json!(0), &json!(1_425))
        );
        let (_, payouts) = api
            .get(
                &format!("/api/v1/orgs/{}/payouts", shop.fresh),
                &shop.fresh_admin,
            )
            .await;
        assert_eq!(payouts.as_array().unwrap().len(), 1, "{payouts}");
        // Brightbrew is on a manual schedule: the run pays nobody and refuses nobody.
        let (status, run) = api
            .post("/api/v1/payouts/run", op, json!({ "currency": "EUR" }))
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["payouts"], json!([]), "{run}");

        let (_, revenue) = api.get("/api/v1/market/revenue?currency=EUR", op).await;
        assert_eq!(revenue["formatted"], "1.15 EUR", "{revenue}");
        let (_, wallet) = api
            .get(
                &format!("/api/v1/customers/{}/wallet?currency=EUR", shop.customer),
                op,
            )
            .await;
        assert_eq!(wallet["formatted"], "77.00 EUR");

        let (_, sold) = api
            .get(
                &format!("/api/v1/orgs/{}/orders", shop.bright),
                &shop.bright_admin,
            )
            .await;
        assert_eq!(sold["items"].as_array().unwrap().len(), 1, "{sold}");
        let (_, bought) = api
            .get(&format!("/api/v1/customers/{}/orders", shop.customer), op)
            .await;
        assert_eq!(bought["items"][0]["id"], order["id"], "{bought}");
        let (_, verified) = api.get("/api/v1/ledger/verify", op).await;
        assert_eq!(verified["intact"], true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_partner_cannot_touch_an_order_and_customers_cannot_use_tokens() {
    for backend in backends() {
        let shop = Shop::open(backend).await;
        let api = &shop.api;
        let order = shop.paid_order().await;
        let order_id = order["id"].as_str().unwrap();
        let nosy = api.partner("Nosy Goods").await;
        let nosy_admin = api.member_token(&nosy, "nia@nosy.example", "admin").await;
        let milk_line = line_of(&order, shop.milk);

        let refused = [
            api.get(&format!("/api/v1/orders/{order_id}"), &nosy_admin)
                .await,
            api.post(
                &format!("/api/v1/orders/{order_id}/fulfil"),
                &nosy_admin,
                json!({ "seller": shop.fresh }),
            )
            .await,
            api.post(
                &format!("/api/v1/orders/{order_id}/refunds"),
                &nosy_admin,
                json!({ "line_id": milk_line, "amount": 100, "reason": "mine now" }),
            )
            .await,
            api.post(
                &format!("/api/v1/orders/{order_id}/cancel"),
                &nosy_admin,
                json!({}),
            )
            .await,
            api.get(
                &format!("/api/v1/orgs/{}/balance?currency=EUR", shop.fresh),
                &nosy_admin,
            )
            .await,
            api.post(
                &format!("/api/v1/orgs/{}/payouts", shop.fresh),
                &nosy_admin,
                json!({ "currency": "EUR", "reference": "x" }),
            )
            .await,
            api.post(
                "/api/v1/commission-rules",
                &nosy_admin,
                json!({ "scope": { "scope": "default" }, "rate_bps": 0 }),
            )
            .await,
            api.post("/api/v1/market/release-due", &nosy_admin, json!({}))
                .await,
            api.get("/api/v1/market/revenue?currency=EUR", &shop.fresh_admin)
                .await,
        ];
        for answer in &refused {
            assert_problem(answer, StatusCode::FORBIDDEN, "rule", "no-permit");
        }
        // A seller's analyst reads its orders but does not fulfil them.
        let analyst = api
            .member_token(&shop.fresh, "ali@freshmart.example", "analyst")
            .await;
        let (status, _) = api
            .get(&format!("/api/v1/orders/{order_id}"), &analyst)
            .await;
        assert_eq!(status, StatusCode::OK);
        let answer = api
            .post(
                &format!("/api/v1/orders/{order_id}/fulfil"),
                &analyst,
                json!({}),
            )
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "rule", "no-permit");

        // A person's own purse is never reached through an API token, even their own.
        let (_, me) = api.get("/api/v1/me", &nosy_admin).await;
        let nia = me["user_id"].as_str().unwrap();
        let answer = api
            .get(
                &format!("/api/v1/customers/{nia}/wallet?currency=EUR"),
                &nosy_admin,
            )
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "rule", "no-permit");

        // Nothing moved: FreshMart's part is still only paid.
        let (_, unchanged) = api
            .get(&format!("/api/v1/orders/{order_id}"), &shop.fresh_admin)
            .await;
        assert_eq!(unchanged["status"], "paid", "{unchanged}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_with_problems_that_name_the_field() {
    for backend in backends() {
        let shop = Shop::open(backend).await;
        let (api, op) = (&shop.api, shop.op());
        shop.rules().await;

        // A cart with a listing that does not exist, or an empty wallet to pay it: nothing kept.
        let ghost = ListingId::new();
        let (status, problem) = shop
            .checkout(
                None,
                &json!({ "lines": [{ "listing_id": ghost, "quantity": 1 }], "pay_with": { "method": "wallet" } }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains(&ghost.to_string()),
            "{problem}"
        );
        let (status, problem) = shop.checkout(Some("k"), &shop.cart()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("the wallet cannot pay 33.00 EUR"),
            "{problem}"
        );
        // The refused checkout gave its key back: after a top-up the same key places the order,
        // and the key with another cart is refused.
        assert_eq!(shop.top_up(10_000).await.0, StatusCode::OK);
        let (status, order) = shop.checkout(Some("k"), &shop.cart()).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        let (status, problem) = shop
            .checkout(
                Some("k"),
                &json!({ "lines": [{ "listing_id": shop.milk, "quantity": 1 }], "pay_with": { "method": "wallet" } }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("different request body"),
            "{problem}"
        );

        let order_id = order["id"].as_str().unwrap();
        let refunds = format!("/api/v1/orders/{order_id}/refunds");
        let milk_line = line_of(&order, shop.milk);
        let unknown_line = api
            .post(
                &refunds,
                op,
                json!({ "line_id": agora_domain::OrderLineId::new(), "amount": 100, "reason": "?" }),
            )
            .await;
        assert_eq!(unknown_line.0, StatusCode::NOT_FOUND, "{}", unknown_line.1);
        assert!(
            unknown_line.1["detail"]
                .as_str()
                .unwrap()
                .contains(order_id),
            "{}",
            unknown_line.1
        );
        // Negative, zero, and one cent beyond the line's 25.00.
        for amount in [-500, 0, 2_501] {
            let answer = api
                .post(
                    &refunds,
                    op,
                    json!({ "line_id": milk_line, "amount": amount, "reason": "too much" }),
                )
                .await;
            assert_problem(&answer, StatusCode::BAD_REQUEST, "field", "amount");
        }
        assert_problem(
            &shop.top_up(-100).await,
            StatusCode::BAD_REQUEST,
            "field",
            "amount",
        );
        for currency in ["euro", "eur", ""] {
            let answer = api
                .get(
                    &format!("/api/v1/orgs/{}/balance?currency={currency}", shop.fresh),
                    op,
                )
                .await;
            assert_problem(&answer, StatusCode::BAD_REQUEST, "field", "currency");
        }
        let (status, problem) = api
            .post(
                &format!("/api/v1/customers/{}/wallet/top-ups", shop.customer),
                op,
                json!({ "currency": "euro", "amount": 100 }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("ISO 4217"),
            "{problem}"
        );

        // Path ids are checked before anything else, and the problem names the field.
        let answer = api.get("/api/v1/orders/ord_nope", op).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "field", "order_id");
        let answer = api
            .get(
                "/api/v1/orgs/usr_0196f1d0a3c27d3e8f5a9b1c2d3e4f51/orders",
                op,
            )
            .await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "field", "org_id");
        let answer = api
            .get("/api/v1/customers/nobody/wallet?currency=EUR", op)
            .await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "field", "user_id");
        // The operator acts for no seller on this order: its part is named as missing.
        let (status, problem) = api
            .post(&format!("/api/v1/orders/{order_id}/fulfil"), op, json!({}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("seller org_"),
            "{problem}"
        );
    }
}
