//! The OpenAPI document matches the server: every documented operation is routed, and the
//! routes are registered only through the documented router.

use reqwest::Method;
use serde_json::Value;

use crate::harness::{Backend, TestApi};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_exists_and_the_served_document_is_the_generated_one() {
    let api = TestApi::start(Backend::Sqlite).await;
    let served: Value = api
        .client
        .get(format!("{}/api/v1/openapi.json", api.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated = serde_json::to_value(agora_server::openapi()).unwrap();
    assert_eq!(served, generated);
    assert_eq!(
        served["openapi"].as_str().unwrap().chars().next(),
        Some('3')
    );

    let paths = served["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| ["get", "post", "patch", "delete", "put"].contains(&key.as_str()))
        {
            operations += 1;
            // Fill path parameters with well-formed ids of the right kind.
            let concrete = path
                .replace("{org_id}", &agora_domain::OrgId::new().to_string())
                .replace("{user_id}", &agora_domain::UserId::new().to_string())
                .replace("{token_id}", &agora_domain::TokenId::new().to_string())
                .replace("{listing_id}", &agora_domain::ListingId::new().to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = api
                .client
                .request(method.clone(), format!("{}{concrete}", api.url))
                .bearer_auth(&api.operator_token)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                status != 405,
                "{method} {path} is documented but not routed for that method"
            );
            assert!(
                !body.contains("urn:agora:problem:no-route"),
                "{method} {path} is documented but not routed"
            );
        }
        // Every documented operation says what it returns.
        for (method, operation) in item.as_object().unwrap() {
            if let Some(responses) = operation.get("responses") {
                assert!(
                    !responses.as_object().unwrap().is_empty(),
                    "{method} {path} documents no response"
                );
            }
        }
    }
    assert!(
        operations >= 31,
        "expected every operation to be documented, found {operations}"
    );
    // Problems and the bearer scheme are described.
    assert!(served["components"]["schemas"]["Problem"].is_object());
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
}
