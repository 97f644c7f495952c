//! The data commons through the API on each backend: a provider uploads and classes a dataset,
//! drafts a protocol, both parties approve the exact version, the consumer's governed query
//! returns only groups that meet the threshold, a query that would leak is refused naming its
//! rule, both are audited and shown to the provider; pauses, quotas, revision, outsiders and
//! the deletion of a dataset behave as documented.

use std::fmt::Write as _;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

/// 60 customers in the north, 55 in the south, 3 in the east; two stores per region.
fn sales_csv() -> String {
    let mut csv = String::from("store,region,units,revenue,customer_id,day\n");
    let mut customer = 0;
    for (region, customers) in [("north", 60), ("south", 55), ("east", 3)] {
        for i in 0..customers {
            customer += 1;
            let store = format!("{region}-{}", i % 2);
            // Two purchases per customer, well before the minimum data age.
            for day in ["2026-01-05", "2026-02-10"] {
                writeln!(csv, "{store},{region},2,3.5,c{customer},{day}").unwrap();
            }
        }
    }
    csv
}

fn protocol_toml(provider: &str, consumer: &str, version: u32, quota: u32) -> String {
    format!(
        r#"
name = "freshmart-sales-for-brands"
version = {version}
provider = "{provider}"
consumers = ["{consumer}"]
purposes = ["assortment"]
analysis = "aggregate"

[[datasets]]
name = "sales"
columns = [
  {{ name = "store", class = "dimension" }},
  {{ name = "region", class = "dimension" }},
  {{ name = "units", class = "metric" }},
  {{ name = "revenue", class = "metric" }},
  {{ name = "customer_id", class = "entity_id" }},
  {{ name = "day", class = "timestamp" }},
]

[output]
min_entities_per_row = 50

[quotas]
queries_per_day_max = {quota}

[validity]
not_before = "2026-01-01T00:00:00Z"
not_after = "2099-01-01T00:00:00Z"
"#
    )
}

impl TestApi {
    async fn query(&self, token: &str, purpose: &str, sql: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/queries",
            token,
            json!({ "purpose": purpose, "sql": sql }),
        )
        .await
    }

    async fn query_as(
        &self,
        token: &str,
        sql: &str,
        accept: &str,
    ) -> (StatusCode, String, Vec<u8>) {
        let response = self
            .client
            .post(format!("{}/api/v1/queries", self.url))
            .bearer_auth(token)
            .header("accept", accept)
            .json(&json!({ "purpose": "assortment", "sql": sql }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let media_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, media_type, response.bytes().await.unwrap().to_vec())
    }
}

fn regions(answer: &Value) -> Vec<(String, i64)> {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row[0].as_str().unwrap().to_owned(),
                row[1].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_approve_query_refuse_audit_pause_and_delete() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let brand = api.partner("Brightbrew").await;
        let outsider = api.partner("Nosy Corp").await;
        let fresh_owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let brand_owner = api.member_token(&brand, "bo@brand.example", "owner").await;
        let brand_analyst = api
            .member_token(&brand, "al@brand.example", "analyst")
            .await;
        let outsider_owner = api
            .member_token(&outsider, "no@nosy.example", "owner")
            .await;

        // The provider uploads and classes its sales.
        let response = api
            .client
            .post(format!(
                "{}/api/v1/orgs/{fresh}/datasets/sales/versions",
                api.url
            ))
            .bearer_auth(&fresh_owner)
            .header("content-type", "text/csv")
            .body(sales_csv())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let (status, classified) = api
            .call(
                Method::PUT,
                &format!("/api/v1/orgs/{fresh}/datasets/sales/classes"),
                &fresh_owner,
                Some(json!([
                    { "column": "store", "class": "dimension" },
                    { "column": "region", "class": "dimension" },
                    { "column": "units", "class": "metric" },
                    { "column": "revenue", "class": "metric" },
                    { "column": "customer_id", "class": "entity_id" },
                    { "column": "day", "class": "timestamp" },
                ])),
            )
            .await;
        assert_eq!(status, 200, "{classified}");

        // A document that loosens a class is refused naming the column.
        let loose = protocol_toml(&fresh, &brand, 1, 100).replace(
            r#"{ name = "customer_id", class = "entity_id" }"#,
            r#"{ name = "customer_id", class = "dimension" }"#,
        );
        let (status, problem) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/protocols"),
                &fresh_owner,
                json!({ "document": loose }),
            )
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], "datasets.sales.columns.customer_id");

        // The consumer cannot draft over the provider's data, and nothing is shared yet.
        let (status, _) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/protocols"),
                &brand_owner,
                json!({ "document": protocol_toml(&fresh, &brand, 1, 100) }),
            )
            .await;
        assert_eq!(status, 403);
        let (status, problem) = api
            .query(
                &brand_analyst,
                "assortment",
                "SELECT region, SUM(units) FROM sales GROUP BY region",
            )
            .await;
        assert_eq!(
            status, 400,
            "no protocol yet: the table does not exist for the brand: {problem}"
        );

        // Draft, propose, and approve by both parties, bound to the content hash.
        let (status, drafted) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/protocols"),
                &fresh_owner,
                json!({ "document": protocol_toml(&fresh, &brand, 1, 100), "format": "toml" }),
            )
            .await;
        assert_eq!(status, 201, "{drafted}");
        assert_eq!(drafted["latest"]["state"], "draft");
        let id = drafted["id"].as_str().unwrap().to_owned();
        let hash = drafted["latest"]["content_hash"]
            .as_str()
            .unwrap()
            .to_owned();
        let base = format!("/api/v1/protocols/{id}");

        let (status, _) = api
            .post(&format!("{base}/propose"), &brand_owner, json!(null))
            .await;
        assert_eq!(status, 403, "only the provider proposes");
        let (status, proposed) = api
            .post(&format!("{base}/propose"), &fresh_owner, json!(null))
            .await;
        assert_eq!(status, 200, "{proposed}");
        assert_eq!(proposed["latest"]["state"], "proposed");

        let (status, problem) = api
            .post(
                &format!("{base}/approve"),
                &brand_owner,
                json!({ "content_hash": "0".repeat(64) }),
            )
            .await;
        assert_eq!(
            status, 409,
            "an approval of other content is refused: {problem}"
        );
        let (status, _) = api
            .post(
                &format!("{base}/approve"),
                &outsider_owner,
                json!({ "content_hash": hash }),
            )
            .await;
        assert_eq!(status, 403, "an outsider cannot approve");
        let (status, _) = api
            .post(
                &format!("{base}/approve"),
                &api.operator_token,
                json!({ "content_hash": hash }),
            )
            .await;
        assert_eq!(status, 403, "nor can the operator, for a party");
        let (status, _) = api.get(&base, &outsider_owner).await;
        assert_eq!(status, 403, "an outsider cannot read the protocol");

        let (status, half) = api
            .post(
                &format!("{base}/approve"),
                &brand_owner,
                json!({ "content_hash": hash }),
            )
            .await;
        assert_eq!(status, 200, "{half}");
        assert_eq!(half["latest"]["state"], "proposed");
        assert_eq!(half["latest"]["awaiting"], json!([fresh]));
        let (status, active) = api
            .post(
                &format!("{base}/approve"),
                &fresh_owner,
                json!({ "content_hash": hash }),
            )
            .await;
        assert_eq!(status, 200, "{active}");
        assert_eq!(active["latest"]["state"], "active");
        assert_eq!(active["active_version"], 1);

        // A governed query: the east (3 customers) is suppressed, the others are exact.
        let sql = "SELECT region, SUM(units) AS units FROM sales GROUP BY region ORDER BY region";
        let (status, answer) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            regions(&answer),
            [("north".to_owned(), 240), ("south".to_owned(), 220)],
            "{answer}"
        );
        assert_eq!(answer["protocols"][0]["protocol_id"], id);
        assert_eq!(answer["protocols"][0]["version"], 1);
        assert_eq!(answer["report"]["rows_suppressed"], 1, "the east: {answer}");
        assert_eq!(answer["report"]["rows_suppressed_by_entity_threshold"], 1);
        assert!(
            !answer["report"]["rules_applied"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{answer}"
        );

        // The same result as CSV and as an Arrow IPC stream.
        let (status, media_type, csv) = api.query_as(&brand_analyst, sql, "text/csv").await;
        assert_eq!(status, 200);
        assert!(media_type.starts_with("text/csv"), "{media_type}");
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "region,units\nnorth,240\nsouth,220\n"
        );
        let (status, media_type, arrow) = api
            .query_as(&brand_analyst, sql, "application/vnd.apache.arrow.stream")
            .await;
        assert_eq!(status, 200);
        assert_eq!(media_type, "application/vnd.apache.arrow.stream");
        assert_eq!(
            &arrow[..4],
            &[0xff, 0xff, 0xff, 0xff],
            "an IPC stream starts with a continuation marker"
        );

        // A query that would output customer ids is refused, naming the rule and the expression.
        let (status, refusal) = api
            .query(
                &brand_analyst,
                "assortment",
                "SELECT customer_id, SUM(units) FROM sales GROUP BY customer_id",
            )
            .await;
        assert_eq!(status, 422, "{refusal}");
        assert!(
            refusal["rule"]
                .as_str()
                .is_some_and(|rule| !rule.is_empty()),
            "{refusal}"
        );
        assert!(
            refusal["expression"]
                .as_str()
                .unwrap()
                .contains("customer_id"),
            "{refusal}"
        );
        // An undeclared purpose finds no protocol, so the shared table is not there.
        let (status, _) = api.query(&brand_analyst, "marketing", sql).await;
        assert_eq!(status, 400);

        // Both queries are audit entries of the brand, with their SQL and outcome.
        let (status, audit) = api
            .get(
                &format!("/api/v1/orgs/{brand}/audit?limit=200"),
                &brand_owner,
            )
            .await;
        assert_eq!(status, 200, "{audit}");
        let entries: Vec<(String, Value)> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "query.run")
            .map(|e| {
                (
                    e["outcome"].as_str().unwrap().to_owned(),
                    serde_json::from_str(e["detail"].as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        let (_, answered) = entries
            .iter()
            .find(|(outcome, detail)| outcome == "succeeded" && detail["sql"] == sql)
            .unwrap_or_else(|| panic!("the answered query is audited: {audit}"));
        assert_eq!(answered["protocols"][0]["protocol_id"], id);
        assert_eq!(answered["rows_suppressed"], 1, "{answered}");
        assert!(
            entries.iter().any(|(outcome, detail)| outcome == "denied"
                && detail["sql"].as_str().unwrap().contains("customer_id")
                && detail["rule"] == refusal["rule"]),
            "the refused query is audited with its rule: {audit}"
        );

        // The provider sees the queries that ran against its data; the outsider sees none.
        let (status, log) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/queries?scope=against_our_data"),
                &fresh_owner,
            )
            .await;
        assert_eq!(status, 200, "{log}");
        let outcomes: Vec<&str> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert!(
            outcomes.contains(&"answered") && outcomes.contains(&"refused"),
            "{log}"
        );
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["consumer"] == brand)
        );
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["actor"].is_null()),
            "a provider sees which organisation asked, not who: {log}"
        );
        let (status, _) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/queries?scope=against_our_data"),
                &outsider_owner,
            )
            .await;
        assert_eq!(status, 403);

        // A pause by the consumer stops queries until it resumes.
        let (status, paused) = api
            .post(&format!("{base}/pause"), &brand_owner, json!(null))
            .await;
        assert_eq!(status, 200, "{paused}");
        assert_eq!(paused["latest"]["state"], "paused");
        let (status, _) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 400, "paused: nothing is shared");
        let (status, _) = api
            .post(&format!("{base}/resume"), &fresh_owner, json!(null))
            .await;
        assert_eq!(status, 403, "only a party that paused lifts its pause");
        let (status, resumed) = api
            .post(&format!("{base}/resume"), &brand_owner, json!(null))
            .await;
        assert_eq!(status, 200, "{resumed}");
        assert_eq!(resumed["latest"]["state"], "active");
        let (status, _) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 200);

        // A revision needs every approval again; the version in force stays in force meanwhile.
        let (status, revised) = api
            .call(
                Method::PUT,
                &base,
                &fresh_owner,
                Some(json!({ "document": protocol_toml(&fresh, &brand, 2, 100).replace("min_entities_per_row = 50", "min_entities_per_row = 58") })),
            )
            .await;
        assert_eq!(status, 200, "{revised}");
        assert_eq!(revised["latest_version"], 2);
        assert_eq!(revised["active_version"], 1);
        let (status, diff) = api
            .get(&format!("{base}/diff?from=1&to=2"), &brand_owner)
            .await;
        assert_eq!(status, 200, "{diff}");
        let changed: Vec<&str> = diff["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l.as_str())
            .filter(|l| l.starts_with('+') || l.starts_with('-'))
            .collect();
        assert!(changed.iter().any(|l| l.contains("58")), "{diff}");
        let (status, answer) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 200);
        assert_eq!(
            regions(&answer).len(),
            2,
            "version 1 still applies: {answer}"
        );
        let hash2 = revised["latest"]["content_hash"]
            .as_str()
            .unwrap()
            .to_owned();
        api.post(&format!("{base}/propose"), &fresh_owner, json!(null))
            .await;
        for token in [&brand_owner, &fresh_owner] {
            let (status, body) = api
                .post(
                    &format!("{base}/approve"),
                    token,
                    json!({ "content_hash": hash2 }),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, answer) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 200);
        assert_eq!(
            regions(&answer),
            [("north".to_owned(), 240)],
            "version 2 (at least 58 customers) drops the south: {answer}"
        );
        let (_, versions) = api.get(&format!("{base}/versions"), &brand_owner).await;
        let states: Vec<&str> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["active", "superseded"]);

        // Deleting the dataset suspends the protocol: it is paused with the reason.
        let (status, _) = api
            .call(
                Method::DELETE,
                &format!("/api/v1/orgs/{fresh}/datasets/sales"),
                &fresh_owner,
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (_, suspended) = api.get(&base, &brand_owner).await;
        assert_eq!(suspended["latest"]["state"], "paused", "{suspended}");
        assert!(
            suspended["latest"]["suspended_reason"]
                .as_str()
                .unwrap()
                .contains("sales"),
            "{suspended}"
        );
        let (status, _) = api.query(&brand_analyst, "assortment", sql).await;
        assert_eq!(status, 400);
        let (status, problem) = api
            .post(&format!("{base}/resume"), &fresh_owner, json!(null))
            .await;
        assert_eq!(
            status, 409,
            "a suspended version cannot be resumed: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("suspended"),
            "{problem}"
        );

        // Revocation is the provider's, and final.
        let (status, _) = api
            .post(&format!("{base}/revoke"), &brand_owner, json!(null))
            .await;
        assert_eq!(status, 403);
        let (status, revoked) = api
            .post(&format!("{base}/revoke"), &fresh_owner, json!(null))
            .await;
        assert_eq!(status, 200, "{revoked}");
        assert_eq!(revoked["latest"]["state"], "revoked");
        assert_eq!(revoked["active_version"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_quota_counts_refused_queries_too_and_then_refuses() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let brand = api.partner("Brightbrew").await;
        let fresh_owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let brand_owner = api.member_token(&brand, "bo@brand.example", "owner").await;
        let response = api
            .client
            .post(format!(
                "{}/api/v1/orgs/{fresh}/datasets/sales/versions",
                api.url
            ))
            .bearer_auth(&fresh_owner)
            .header("content-type", "text/csv")
            .body(sales_csv())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        api.call(
            Method::PUT,
            &format!("/api/v1/orgs/{fresh}/datasets/sales/classes"),
            &fresh_owner,
            Some(json!([
                { "column": "store", "class": "dimension" },
                { "column": "region", "class": "dimension" },
                { "column": "units", "class": "metric" },
                { "column": "revenue", "class": "metric" },
                { "column": "customer_id", "class": "entity_id" },
                { "column": "day", "class": "timestamp" },
            ])),
        )
        .await;
        let (_, drafted) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/protocols"),
                &fresh_owner,
                json!({ "document": protocol_toml(&fresh, &brand, 1, 3) }),
            )
            .await;
        let id = drafted["id"].as_str().unwrap();
        let hash = drafted["latest"]["content_hash"].as_str().unwrap();
        api.post(
            &format!("/api/v1/protocols/{id}/propose"),
            &fresh_owner,
            json!(null),
        )
        .await;
        for token in [&fresh_owner, &brand_owner] {
            api.post(
                &format!("/api/v1/protocols/{id}/approve"),
                token,
                json!({ "content_hash": hash }),
            )
            .await;
        }
        let ok = "SELECT COUNT(*) AS n FROM sales";
        let leak = "SELECT customer_id FROM sales";
        assert_eq!(api.query(&brand_owner, "assortment", ok).await.0, 200);
        assert_eq!(api.query(&brand_owner, "assortment", leak).await.0, 422);
        assert_eq!(api.query(&brand_owner, "assortment", ok).await.0, 200);
        let (status, problem) = api.query(&brand_owner, "assortment", ok).await;
        assert_eq!(status, 429, "{problem}");
        assert_eq!(problem["limit"], "queries_per_day_max");
        // The provider's own queries on its own data are not under the protocol's quota.
        assert_eq!(api.query(&fresh_owner, "assortment", ok).await.0, 200);

        // Its own data, as of any version: full SQL.
        let response = api
            .client
            .post(format!(
                "{}/api/v1/orgs/{fresh}/datasets/sales/versions",
                api.url
            ))
            .bearer_auth(&fresh_owner)
            .header("content-type", "text/csv")
            .body("store,region,units,revenue,customer_id,day\nwest-0,west,1,1.0,c999,2026-03-01\n")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let count = |as_of: Value| {
            let api = &api;
            let token = fresh_owner.clone();
            async move {
                let (status, answer) = api
                    .post(
                        "/api/v1/queries",
                        &token,
                        json!({ "purpose": "own", "sql": "SELECT COUNT(*) AS n FROM sales", "as_of": as_of }),
                    )
                    .await;
                (status, answer["rows"][0][0].clone())
            }
        };
        assert_eq!(count(json!({})).await, (StatusCode::OK, json!(237)));
        assert_eq!(
            count(json!({ "sales": 1 })).await,
            (StatusCode::OK, json!(236))
        );
        assert_eq!(count(json!({ "sales": 3 })).await.0, 400);
        assert_eq!(count(json!({ "nope": 1 })).await.0, 400);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_lose_none_and_activate_once() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let fresh_owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let mut consumers = Vec::new();
        for i in 0..5 {
            let org = api.partner(&format!("Brand {i}")).await;
            let token = api
                .member_token(&org, &format!("owner{i}@brand.example"), "owner")
                .await;
            consumers.push((org, token));
        }
        let response = api
            .client
            .post(format!(
                "{}/api/v1/orgs/{fresh}/datasets/sales/versions",
                api.url
            ))
            .bearer_auth(&fresh_owner)
            .header("content-type", "text/csv")
            .body(sales_csv())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let list: Vec<String> = consumers
            .iter()
            .map(|(org, _)| format!("\"{org}\""))
            .collect();
        let document = protocol_toml(&fresh, "CONSUMER", 1, 100)
            .replace("[\"CONSUMER\"]", &format!("[{}]", list.join(", ")))
            .replace("class = \"dimension\" }", "class = \"blocked\" }")
            .replace("class = \"metric\" }", "class = \"blocked\" }")
            .replace("class = \"entity_id\" }", "class = \"blocked\" }")
            .replace("class = \"timestamp\" }", "class = \"blocked\" }");
        let (status, drafted) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/protocols"),
                &fresh_owner,
                json!({ "document": document }),
            )
            .await;
        assert_eq!(status, 201, "{drafted}");
        let id = drafted["id"].as_str().unwrap().to_owned();
        let hash = drafted["latest"]["content_hash"]
            .as_str()
            .unwrap()
            .to_owned();
        api.post(
            &format!("/api/v1/protocols/{id}/propose"),
            &fresh_owner,
            json!(null),
        )
        .await;

        // Every party approves at once; a party whose approval raced another's is told to
        // retry (409) and does, until every approval is in.
        let mut tokens: Vec<String> = consumers.iter().map(|(_, token)| token.clone()).collect();
        tokens.push(fresh_owner.clone());
        let approve = |token: String| {
            let api = &api;
            let path = format!("/api/v1/protocols/{id}/approve");
            let hash = hash.clone();
            async move {
                loop {
                    let (status, body) = api
                        .post(&path, &token, json!({ "content_hash": hash }))
                        .await;
                    match status.as_u16() {
                        200 => return body,
                        409 if body["detail"]
                            .as_str()
                            .unwrap_or("")
                            .contains("changed meanwhile") =>
                        {
                            continue;
                        }
                        _ => panic!("{status}: {body}"),
                    }
                }
            }
        };
        futures_util::future::join_all(tokens.into_iter().map(approve)).await;
        let (_, protocol) = api
            .get(&format!("/api/v1/protocols/{id}"), &fresh_owner)
            .await;
        assert_eq!(protocol["latest"]["state"], "active", "{protocol}");
        assert_eq!(
            protocol["latest"]["approvals"].as_array().unwrap().len(),
            6,
            "{protocol}"
        );
        assert_eq!(protocol["active_version"], 1);
        // The activation happened once: one `protocol.activated` audit entry.
        let (_, audit) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/audit?limit=200"),
                &fresh_owner,
            )
            .await;
        let activated = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "protocol.activated")
            .count();
        assert_eq!(activated, 1, "{audit}");
    }
}
