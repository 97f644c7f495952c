//! Points and settlement over HTTP: who may grant, redeem and read, refusals that name their
//! rule or limit, and retries that answer the first result.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

impl TestApi {
    async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    /// A user id from a token, as `GET /api/v1/me` answers.
    async fn user_of(&self, token: &str) -> String {
        let (status, me) = self.get("/api/v1/me", token).await;
        assert_eq!(status, 200, "{me}");
        me["user_id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_grant_redeem_and_read_only_what_is_theirs() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let operator = api.operator_token.clone();
        let bakery = api.partner("Bakery").await;
        let books = api.partner("Books").await;
        let bakery_owner = api
            .member_token(&bakery, "owner@bakery.example", "admin")
            .await;
        let books_owner = api
            .member_token(&books, "owner@books.example", "admin")
            .await;
        let customer = api.user_of(&books_owner).await;

        let (status, rule) = api
            .post(
                "/api/v1/points/rules",
                &operator,
                json!({ "earning": "per_action", "action": "review_written", "points": 30,
                        "funder": bakery, "expiry_days": 10 }),
            )
            .await;
        assert_eq!(status, 200, "{rule}");
        let (status, rules) = api.get("/api/v1/points/rules", &books_owner).await;
        assert_eq!(
            (status, rules.as_array().unwrap().len()),
            (StatusCode::OK, 1)
        );
        let (status, settings) = api
            .put(
                "/api/v1/points/settings",
                &operator,
                json!({ "currency": "EUR", "minor_per_point": 2 }),
            )
            .await;
        assert_eq!(status, 200, "{settings}");

        // Books cannot grant points the bakery funds: the refusal names the rule.
        let grant =
            json!({ "customer": customer, "action": "review_written", "reference": "review-1" });
        let (status, problem) = api
            .post(
                &format!("/api/v1/orgs/{bakery}/points/grants"),
                &books_owner,
                grant.clone(),
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["rule"], "no-permit");

        // The bakery grants, and a retry with the same Idempotency-Key answers the same lot.
        let no_reference = json!({ "customer": customer, "action": "review_written" });
        let mut lots = Vec::new();
        for _ in 0..2 {
            let response = api
                .client
                .post(format!("{}/api/v1/orgs/{bakery}/points/grants", api.url))
                .bearer_auth(&bakery_owner)
                .header("Idempotency-Key", "grant-0001")
                .json(&no_reference)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            lots.push(body["lot"]["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(lots[0], lots[1]);

        // A customer's points are read and redeemed by the customer through the portal, not
        // through a token, and never by a partner.
        let (status, problem) = api
            .get(
                &format!("/api/v1/customers/{customer}/points"),
                &bakery_owner,
            )
            .await;
        assert_eq!(
            (status, problem["rule"].as_str()),
            (StatusCode::FORBIDDEN, Some("no-permit"))
        );
        let redeem = json!({ "points": 10, "at_partner": books, "reference": "receipt-1" });
        let (status, problem) = api
            .post(
                &format!("/api/v1/customers/{customer}/points/redemptions"),
                &books_owner,
                redeem.clone(),
            )
            .await;
        assert_eq!(
            (status, problem["rule"].as_str()),
            (StatusCode::FORBIDDEN, Some("no-permit"))
        );
        // The operator acts for the customer (a desk refund of points, support).
        let (status, redemption) = api
            .post(
                &format!("/api/v1/customers/{customer}/points/redemptions"),
                &operator,
                redeem,
            )
            .await;
        assert_eq!(status, 201, "{redemption}");
        assert_eq!(redemption["obligations"][0]["debtor"], json!(bakery));
        assert_eq!(redemption["obligations"][0]["amount"], 20);
        let (status, balance) = api
            .get(&format!("/api/v1/customers/{customer}/points"), &operator)
            .await;
        assert_eq!(
            (status, balance["liability"].as_i64()),
            (StatusCode::OK, Some(20))
        );

        // Obligations: a partner records only its own debts, and reads only its own positions.
        let (status, problem) = api
            .post(
                &format!("/api/v1/orgs/{bakery}/obligations"),
                &books_owner,
                json!({ "creditor": books, "amount": 100, "currency": "EUR", "reference": "inv-1" }),
            )
            .await;
        assert_eq!(
            (status, problem["rule"].as_str()),
            (StatusCode::FORBIDDEN, Some("no-permit"))
        );
        let (status, cap) = api
            .put(
                &format!("/api/v1/orgs/{bakery}/net-debit-cap"),
                &operator,
                json!({ "currency": "EUR", "cap": 100 }),
            )
            .await;
        assert_eq!(status, 200, "{cap}");
        let (status, problem) = api
            .put(
                &format!("/api/v1/orgs/{bakery}/net-debit-cap"),
                &bakery_owner,
                json!({ "currency": "EUR", "cap": 1000000 }),
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        // 20 owed from the redemption, 81 more would pass the cap of 1.00 EUR.
        let (status, problem) = api
            .post(
                &format!("/api/v1/orgs/{bakery}/obligations"),
                &bakery_owner,
                json!({ "creditor": books, "amount": 81, "currency": "EUR", "reference": "inv-1" }),
            )
            .await;
        assert_eq!(
            (status, problem["limit"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("net_debit_cap")),
            "{problem}"
        );
        let (status, obligation) = api
            .post(
                &format!("/api/v1/orgs/{bakery}/obligations"),
                &bakery_owner,
                json!({ "creditor": books, "amount": 80, "currency": "EUR", "reference": "inv-1" }),
            )
            .await;
        assert_eq!(status, 201, "{obligation}");
        let window = obligation["window"].as_str().unwrap().to_owned();

        let (status, own) = api
            .get(
                &format!("/api/v1/settlement/windows/{window}"),
                &books_owner,
            )
            .await;
        assert_eq!(status, 200, "{own}");
        assert_eq!(
            own["positions"],
            json!([{ "partner": books, "currency": "EUR", "net": 100 }])
        );
        let (status, problem) = api
            .get(
                &format!("/api/v1/orgs/{bakery}/net-debit-cap"),
                &books_owner,
            )
            .await;
        assert_eq!(status, 403, "{problem}");
        let (status, problem) = api
            .post(
                &format!("/api/v1/settlement/windows/{window}/close"),
                &bakery_owner,
                json!({}),
            )
            .await;
        assert_eq!(status, 403, "{problem}");

        let (status, report) = api
            .post(
                "/api/v1/settlement/windows/current/close",
                &operator,
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["totals"], json!({ "EUR": 0 }));
        assert_eq!(report["positions"].as_array().unwrap().len(), 2);
        let (status, again) = api
            .post(
                &format!("/api/v1/settlement/windows/{window}/close"),
                &operator,
                json!({}),
            )
            .await;
        assert_eq!((status, &again), (StatusCode::OK, &report));
        let (status, windows) = api.get("/api/v1/settlement/windows", &books_owner).await;
        assert_eq!(status, 200, "{windows}");
        assert_eq!(windows["items"][0]["status"], "closed");
    }
}
