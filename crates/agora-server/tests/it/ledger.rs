//! The ledger's raw door over HTTP: only the operator writes and reads it; transfers answer
//! one by one, retries move nothing, balance limits hold, balances read as of any instant, and
//! the chain verifies.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

fn transfer(id: &str, debit: &str, credit: &str, amount: i64, linked: bool) -> Value {
    json!({
        "id": id,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "EUR",
        "code": 1,
        "kind": { "kind": "single" },
        "linked": linked,
    })
}

fn results(answer: &Value) -> Vec<&str> {
    answer
        .as_array()
        .unwrap_or_else(|| panic!("expected an array, got {answer}"))
        .iter()
        .map(|outcome| outcome["result"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_moves_money_and_reads_it_back_as_of_any_instant() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let op = &api.operator_token;
        let funding = "acc_0196f1d0a3c27d3e8f5a9b1c2d3e4f01";
        let wallet = "acc_0196f1d0a3c27d3e8f5a9b1c2d3e4f02";
        let (status, answer) = api
            .post(
                "/api/v1/ledger/accounts",
                op,
                json!([
                    { "id": funding, "currency": "EUR", "code": 8 },
                    { "id": wallet, "currency": "EUR", "code": 7, "limit": "debits_must_not_exceed_credits" },
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(results(&answer), ["created", "created"]);
        // The same accounts again: nothing new; one with another code is named as different.
        let (_, answer) = api
            .post(
                "/api/v1/ledger/accounts",
                op,
                json!([
                    { "id": funding, "currency": "EUR", "code": 8 },
                    { "id": wallet, "currency": "EUR", "code": 9 },
                ]),
            )
            .await;
        assert_eq!(results(&answer), ["exists", "exists_with_different_code"]);

        let top_up = "trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f11";
        let (status, answer) = api
            .post(
                "/api/v1/ledger/transfers",
                op,
                json!([transfer(top_up, funding, wallet, 5_000, false)]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(results(&answer), ["created"]);
        let (_, after_top_up) = api.get("/api/v1/ledger/verify", op).await;
        assert_eq!(after_top_up["intact"], true, "{after_top_up}");
        let between = agora_domain::Timestamp::now().to_string();

        // A retry moves nothing; a linked chain whose second leg overdraws the wallet moves nothing at all.
        let (_, answer) = api
            .post(
                "/api/v1/ledger/transfers",
                op,
                json!([
                    transfer(top_up, funding, wallet, 5_000, false),
                    transfer(
                        "trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f12",
                        funding,
                        wallet,
                        100,
                        true
                    ),
                    transfer(
                        "trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f13",
                        wallet,
                        funding,
                        9_999,
                        false
                    ),
                ]),
            )
            .await;
        assert_eq!(
            results(&answer),
            ["exists", "linked_event_failed", "exceeds_credits"]
        );
        let (_, answer) = api
            .post(
                "/api/v1/ledger/transfers",
                op,
                json!([transfer(
                    "trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f14",
                    wallet,
                    funding,
                    1_250,
                    false
                )]),
            )
            .await;
        assert_eq!(results(&answer), ["created"]);

        let (status, now) = api
            .get(&format!("/api/v1/ledger/accounts/{wallet}"), op)
            .await;
        assert_eq!(status, StatusCode::OK, "{now}");
        assert_eq!(now["credit_balance"], 3_750);
        assert_eq!(now["formatted"], "37.50 EUR");
        let (_, then) = api
            .get(
                &format!("/api/v1/ledger/accounts/{wallet}?as_of={between}"),
                op,
            )
            .await;
        assert_eq!(then["credit_balance"], 5_000, "{then}");
        assert_eq!(then["as_of"], between.as_str());

        let (status, record) = api
            .get(&format!("/api/v1/ledger/transfers/{top_up}"), op)
            .await;
        assert_eq!(status, StatusCode::OK, "{record}");
        assert_eq!(record["amount"], 5_000);
        let (status, _) = api
            .get(
                "/api/v1/ledger/transfers/trf_0196f1d0a3c27d3e8f5a9b1c2d3e4f13",
                op,
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "a refused transfer was never applied"
        );

        let (_, report) = api.get("/api/v1/ledger/verify", op).await;
        assert_eq!(report["intact"], true, "{report}");
        assert!(report["batch"].as_i64().unwrap() >= 3, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partners_neither_read_nor_write_the_ledger_and_bad_requests_name_the_problem() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let owner = api
            .member_token(&fresh, "ana@freshmart.example", "owner")
            .await;
        let (status, problem) = api
            .post(
                "/api/v1/ledger/accounts",
                &owner,
                json!([{ "currency": "EUR", "code": 1 }]),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert_eq!(problem["rule"], "no-permit");
        let (status, _) = api.get("/api/v1/ledger/verify", &owner).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let op = &api.operator_token;
        let (status, problem) = api.post("/api/v1/ledger/transfers", op, json!([])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        let (status, problem) = api
            .post(
                "/api/v1/ledger/accounts",
                op,
                json!([{ "currency": "EURO", "code": 1 }]),
            )
            .await;
        assert!(status.is_client_error(), "{status} {problem}");
        let (status, problem) = api
            .get(
                "/api/v1/ledger/accounts/acc_0196f1d0a3c27d3e8f5a9b1c2d3e4f99?as_of=yesterday",
                op,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        let (status, _) = api
            .get(
                "/api/v1/ledger/accounts/acc_0196f1d0a3c27d3e8f5a9b1c2d3e4f99",
                op,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // Refusals are audited with the rule.
        let (_, audit) = api.get("/api/v1/audit?limit=200", op).await;
        let denied = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["action"] == "ledger.write" && entry["outcome"] == "denied");
        assert!(denied, "{audit}");
    }
}
