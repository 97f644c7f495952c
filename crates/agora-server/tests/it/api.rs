//! The API's behaviour on each backend: tenant isolation by role, idempotency, concurrency,
//! audit entries and events for every change and refusal, pagination, token lifecycle.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

/// One request and what must come back: the status, and the rule for refusals.
struct Case {
    who: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    rule: Option<&'static str>,
}

fn case(
    who: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    rule: Option<&'static str>,
) -> Case {
    Case {
        who,
        method,
        path,
        body,
        status,
        rule,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_what_its_policies_say_in_its_own_organisation_and_nothing_in_another() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let bright = api.partner("Brightbrew Brands").await;
        let tokens = [
            (
                "fresh-owner",
                api.member_token(&fresh, "ana@freshmart.example", "owner")
                    .await,
            ),
            (
                "fresh-admin",
                api.member_token(&fresh, "ada@freshmart.example", "admin")
                    .await,
            ),
            (
                "fresh-analyst",
                api.member_token(&fresh, "ben@freshmart.example", "analyst")
                    .await,
            ),
            (
                "fresh-developer",
                api.member_token(&fresh, "dev@freshmart.example", "developer")
                    .await,
            ),
            (
                "fresh-member",
                api.member_token(&fresh, "mo@freshmart.example", "member")
                    .await,
            ),
            (
                "bright-owner",
                api.member_token(&bright, "carla@brightbrew.example", "owner")
                    .await,
            ),
        ];
        let token = |who: &str| {
            tokens
                .iter()
                .find(|(name, _)| *name == who)
                .map(|(_, token)| token.clone())
                .unwrap()
        };
        let member_body = |email: &str, role: &str| Some(json!({ "email": email, "role": role }));
        let token_body = |role: &str| Some(json!({ "name": "ci", "role": role }));
        let cases = [
            // Everyone reads the directory of organisations.
            case(
                "fresh-member",
                Method::GET,
                format!("/api/v1/orgs/{bright}"),
                None,
                200,
                None,
            ),
            case(
                "fresh-member",
                Method::GET,
                "/api/v1/orgs".into(),
                None,
                200,
                None,
            ),
            // Members list their own members, not another organisation's.
            case(
                "fresh-member",
                Method::GET,
                format!("/api/v1/orgs/{fresh}/members"),
                None,
                200,
                None,
            ),
            case(
                "fresh-owner",
                Method::GET,
                format!("/api/v1/orgs/{bright}/members"),
                None,
                403,
                Some("no-permit"),
            ),
            // Admins add members at or below their role in their own organisation only.
            case(
                "fresh-admin",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/members"),
                member_body("new@freshmart.example", "analyst"),
                201,
                None,
            ),
            case(
                "fresh-admin",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/members"),
                member_body("boss@freshmart.example", "owner"),
                403,
                Some("owners-grant-owners"),
            ),
            case(
                "fresh-admin",
                Method::POST,
                format!("/api/v1/orgs/{bright}/members"),
                member_body("spy@freshmart.example", "member"),
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-analyst",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/members"),
                member_body("x@freshmart.example", "member"),
                403,
                Some("no-permit"),
            ),
            // Tokens never outrank their creator.
            case(
                "fresh-developer",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/tokens"),
                token_body("developer"),
                201,
                None,
            ),
            case(
                "fresh-developer",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/tokens"),
                token_body("admin"),
                403,
                Some("no-role-escalation"),
            ),
            case(
                "fresh-member",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/tokens"),
                token_body("member"),
                403,
                Some("no-permit"),
            ),
            case(
                "bright-owner",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/tokens"),
                token_body("member"),
                403,
                Some("no-permit"),
            ),
            // Audit and events: one's own, never another's; the whole log only for operators.
            case(
                "fresh-analyst",
                Method::GET,
                format!("/api/v1/orgs/{fresh}/audit"),
                None,
                200,
                None,
            ),
            case(
                "fresh-analyst",
                Method::GET,
                format!("/api/v1/orgs/{bright}/audit"),
                None,
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-developer",
                Method::GET,
                format!("/api/v1/orgs/{fresh}/audit"),
                None,
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-owner",
                Method::GET,
                "/api/v1/audit".into(),
                None,
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-developer",
                Method::GET,
                format!("/api/v1/orgs/{fresh}/events"),
                None,
                200,
                None,
            ),
            case(
                "bright-owner",
                Method::GET,
                format!("/api/v1/orgs/{fresh}/events"),
                None,
                403,
                Some("no-permit"),
            ),
            // Renaming and approving.
            case(
                "fresh-member",
                Method::PATCH,
                format!("/api/v1/orgs/{fresh}"),
                Some(json!({ "name": "FreshMart Group" })),
                403,
                Some("no-permit"),
            ),
            case(
                "bright-owner",
                Method::PATCH,
                format!("/api/v1/orgs/{fresh}"),
                Some(json!({ "name": "Taken Over" })),
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-owner",
                Method::PATCH,
                format!("/api/v1/orgs/{fresh}"),
                Some(json!({ "name": "FreshMart Group" })),
                200,
                None,
            ),
            case(
                "fresh-owner",
                Method::POST,
                format!("/api/v1/orgs/{fresh}/approve"),
                None,
                403,
                Some("no-permit"),
            ),
            case(
                "fresh-owner",
                Method::POST,
                "/api/v1/audit/checkpoints".into(),
                None,
                403,
                Some("no-permit"),
            ),
        ];
        for case in cases {
            let (status, body) = api
                .call(
                    case.method.clone(),
                    &case.path,
                    &token(case.who),
                    case.body.clone(),
                )
                .await;
            let what = format!(
                "{backend:?}: {} {} {} → {status} {body}",
                case.who, case.method, case.path
            );
            assert_eq!(status.as_u16(), case.status, "{what}");
            assert_eq!(body["rule"].as_str(), case.rule, "{what}");
        }
        // Each refusal is in the refused organisation's audit log, naming the rule.
        let (_, page) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/audit?limit=200"),
                &token("fresh-owner"),
            )
            .await;
        let denied: Vec<&Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["outcome"] == "denied")
            .collect();
        assert!(
            denied.iter().any(|entry| entry["action"] == "token.create"
                && entry["detail"]
                    .as_str()
                    .unwrap()
                    .contains("no-role-escalation")),
            "{backend:?}: {denied:?}"
        );
        // Brightbrew's attempt on FreshMart's tokens shows in FreshMart's log too.
        assert!(
            denied.iter().any(|entry| entry["action"] == "token.create"
                && entry["actor_org_id"] == bright.as_str()),
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_replays_the_first_response_and_refuses_a_different_body() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let create = |name: &str, key: &str| {
            api.client
                .post(format!("{}/api/v1/orgs", api.url))
                .bearer_auth(&api.operator_token)
                .header("Idempotency-Key", key)
                .json(&json!({ "name": name }))
                .send()
        };
        let first = create("Carrier Co-op", "key-1").await.unwrap();
        assert_eq!(first.status(), 201);
        let first: Value = first.json().await.unwrap();
        let replay = create("Carrier Co-op", "key-1").await.unwrap();
        assert_eq!(replay.status(), 201, "{backend:?}");
        assert_eq!(
            replay.json::<Value>().await.unwrap(),
            first,
            "{backend:?}: a replay returns the first response"
        );
        let other = create("Another Name", "key-1").await.unwrap();
        assert_eq!(other.status(), 422, "{backend:?}");
        let (_, orgs) = api.get("/api/v1/orgs", &api.operator_token).await;
        let named: Vec<_> = orgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|org| org["name"] == "Carrier Co-op")
            .collect();
        assert_eq!(named.len(), 1, "{backend:?}: the replay created nothing");
        let (_, events) = api
            .get(
                &format!("/api/v1/orgs/{}/events", first["id"].as_str().unwrap()),
                &api.operator_token,
            )
            .await;
        assert_eq!(
            events["items"].as_array().unwrap().len(),
            1,
            "{backend:?}: one org.created event: {events}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_creating_the_same_name_give_exactly_one_organisation() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let mut requests = Vec::new();
        for index in 0..8 {
            let client = api.client.clone();
            let url = format!("{}/api/v1/orgs", api.url);
            let token = api.operator_token.clone();
            // Case and spacing differ: still the same name.
            let name = if index % 2 == 0 {
                "Mask  Makers"
            } else {
                "mask makers"
            };
            requests.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "name": name }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        let mut statuses = Vec::new();
        for request in requests {
            statuses.push(request.await.unwrap());
        }
        assert_eq!(
            statuses
                .iter()
                .filter(|status| **status == StatusCode::CREATED)
                .count(),
            1,
            "{backend:?}: {statuses:?}"
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|status| **status == StatusCode::CONFLICT)
                .count(),
            7,
            "{backend:?}: {statuses:?}"
        );
        // The audit chain is whole after the race.
        let mut progress = |_: i64, _: i64| {};
        let report = api
            .app
            .verify_chain(&mut progress)
            .await
            .unwrap()
            .expect("the chain verifies");
        assert!(report.entries >= 9, "{backend:?}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused_and_removing_a_member_revokes_theirs() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let analyst = api
            .member_token(&fresh, "ben@freshmart.example", "analyst")
            .await;
        assert_eq!(api.get("/api/v1/me", &analyst).await.0, 200);

        // The analyst's own token, revoked by the owner's operator.
        let (_, tokens) = api
            .get(&format!("/api/v1/orgs/{fresh}/tokens"), &api.operator_token)
            .await;
        let token_id = tokens["items"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            tokens["items"][0]["prefix"].as_str().unwrap(),
            &analyst[..18],
            "the visible prefix identifies the token"
        );
        let (status, revoked) = api
            .call(
                Method::DELETE,
                &format!("/api/v1/tokens/{token_id}"),
                &api.operator_token,
                None,
            )
            .await;
        assert_eq!(status, 200, "{revoked}");
        let (status, problem) = api.get("/api/v1/me", &analyst).await;
        assert_eq!(status, 401, "{backend:?}: {problem}");
        assert_eq!(problem["type"], "urn:agora:problem:unauthenticated");

        // Removing a member revokes the tokens they had for the organisation.
        let developer = api
            .member_token(&fresh, "dev@freshmart.example", "developer")
            .await;
        let (_, me) = api.get("/api/v1/me", &developer).await;
        let user_id = me["user_id"].as_str().unwrap().to_owned();
        let (status, _) = api
            .call(
                Method::DELETE,
                &format!("/api/v1/orgs/{fresh}/members/{user_id}"),
                &api.operator_token,
                None,
            )
            .await;
        assert_eq!(status, 204);
        assert_eq!(
            api.get("/api/v1/me", &developer).await.0,
            401,
            "{backend:?}"
        );

        // A token past its expiry is refused like any unknown token.
        let expired = agora_app::secrets::new_token();
        let owner = api
            .member_token(&fresh, "ana@freshmart.example", "owner")
            .await;
        let (_, me) = api.get("/api/v1/me", &owner).await;
        let record = agora_domain::model::ApiToken {
            id: agora_domain::TokenId::new(),
            prefix: expired.prefix.clone(),
            name: "expired".into(),
            org_id: fresh.parse().unwrap(),
            user_id: me["user_id"].as_str().unwrap().parse().unwrap(),
            role: agora_domain::Role::Owner,
            created_at: agora_domain::Timestamp::now().plus_seconds(-7200),
            expires_at: Some(agora_domain::Timestamp::now().plus_seconds(-3600)),
            revoked_at: None,
        };
        let mut tx = api.app.store().write().await.unwrap();
        tx.insert_token(&record, &expired.hash).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            api.get("/api/v1/me", &expired.full).await.0,
            401,
            "{backend:?}"
        );
        // A token with the right prefix but a wrong secret is refused too.
        let forged = format!("{}_{}", expired.prefix, "0".repeat(64));
        assert_eq!(api.get("/api/v1/me", &forged).await.0, 401, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_writes_its_audit_entry_and_event_and_listings_page_by_cursor() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        for index in 0..7 {
            api.partner(&format!("Partner {index}")).await;
        }
        // Pages of 3 cover all 8 organisations (operator included) exactly once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/orgs?limit=3&cursor={cursor}"),
                None => "/api/v1/orgs?limit=3".to_owned(),
            };
            let (status, page) = api.get(&path, &api.operator_token).await;
            assert_eq!(status, 200, "{page}");
            for org in page["items"].as_array().unwrap() {
                seen.push(org["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 8, "{backend:?}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8, "{backend:?}: no organisation twice");

        let (_, all) = api
            .get("/api/v1/audit?limit=200", &api.operator_token)
            .await;
        let creates = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["action"] == "org.create" && entry["outcome"] == "succeeded")
            .count();
        assert_eq!(creates, 8, "{backend:?}: bootstrap plus seven partners");
        let (status, problem) = api.get("/api/v1/orgs?limit=201", &api.operator_token).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], "limit");
        let (status, _) = api
            .get("/api/v1/orgs?cursor=not-a-cursor", &api.operator_token)
            .await;
        assert_eq!(status, 400);

        // The chain is readable by any party and links up.
        let (_, chain) = api
            .get("/api/v1/audit/chain?limit=5", &api.operator_token)
            .await;
        let links = chain["items"].as_array().unwrap();
        assert_eq!(links.len(), 5);
        assert_eq!(links[1]["prev_hash"], links[0]["entry_hash"], "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_by_the_published_key() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        api.partner("FreshMart").await;
        let (status, checkpoint) = api
            .post(
                "/api/v1/audit/checkpoints",
                &api.operator_token,
                json!(null),
            )
            .await;
        assert_eq!(status, 201, "{checkpoint}");
        let (_, key) = api.get("/api/v1/audit/key", &api.operator_token).await;
        assert_eq!(checkpoint["key_id"], key["public_key"]);
        let head: agora_domain::audit::Hash32 =
            serde_json::from_value(checkpoint["head_hash"].clone()).unwrap();
        let at: agora_domain::Timestamp = serde_json::from_value(checkpoint["at"].clone()).unwrap();
        let message =
            agora_domain::audit::checkpoint_message(checkpoint["seq"].as_i64().unwrap(), &head, at);
        assert!(agora_app::secrets::verify_signature(
            key["public_key"].as_str().unwrap(),
            &message,
            checkpoint["signature"].as_str().unwrap()
        ));
        let tampered = agora_domain::audit::checkpoint_message(
            checkpoint["seq"].as_i64().unwrap() + 1,
            &head,
            at,
        );
        assert!(!agora_app::secrets::verify_signature(
            key["public_key"].as_str().unwrap(),
            &tampered,
            checkpoint["signature"].as_str().unwrap()
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_admission_by_approval_a_partners_new_organisation_waits_for_the_operator() {
    let config = agora_app::AppConfig {
        admission: agora_app::Admission::Approval,
        ..agora_app::AppConfig::default()
    };
    let api = TestApi::start_with(
        crate::harness::Backend::Sqlite,
        config,
        agora_server::ServerConfig::default(),
    )
    .await;
    // The operator's own creations are admitted at once.
    let fresh = api.partner("FreshMart").await;
    let owner = api
        .member_token(&fresh, "ana@freshmart.example", "owner")
        .await;
    let (status, logistics) = api
        .post(
            "/api/v1/orgs",
            &owner,
            json!({ "name": "FreshMart Logistics" }),
        )
        .await;
    assert_eq!(status, 201, "{logistics}");
    assert_eq!(logistics["status"], "pending");
    let logistics_id = logistics["id"].as_str().unwrap().to_owned();
    // Its creator cannot approve it; the operator can.
    let (status, problem) = api
        .post(
            &format!("/api/v1/orgs/{logistics_id}/approve"),
            &owner,
            json!(null),
        )
        .await;
    assert_eq!(
        (status.as_u16(), problem["rule"].as_str()),
        (403, Some("no-permit"))
    );
    let (status, approved) = api
        .post(
            &format!("/api/v1/orgs/{logistics_id}/approve"),
            &api.operator_token,
            json!(null),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "active");
    let (_, events) = api
        .get(
            &format!("/api/v1/orgs/{logistics_id}/events"),
            &api.operator_token,
        )
        .await;
    let types: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["org.created", "org.approved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_applies_to_cached_tokens_at_once_and_a_token_never_exceeds_its_owners_role()
{
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let analyst = api
            .member_token(&fresh, "ben@freshmart.example", "analyst")
            .await;
        // Used twice, so the second answer comes from the cache.
        for _ in 0..2 {
            assert_eq!(
                api.get(&format!("/api/v1/orgs/{fresh}/audit"), &analyst)
                    .await
                    .0,
                200,
                "{backend:?}"
            );
        }
        // Ben becomes a developer: his analyst token must not keep reading the audit log,
        // nor act as a developer, whose powers an analyst token never had.
        let (status, _) = api
            .post(
                &format!("/api/v1/orgs/{fresh}/members"),
                &api.operator_token,
                json!({ "email": "ben@freshmart.example", "role": "developer" }),
            )
            .await;
        assert_eq!(status, 201);
        let (_, me) = api.get("/api/v1/me", &analyst).await;
        assert_eq!(me["acting"]["role"], "member", "{backend:?}: {me}");
        let (status, problem) = api
            .get(&format!("/api/v1/orgs/{fresh}/audit"), &analyst)
            .await;
        assert_eq!(status, 403, "{backend:?}: {problem}");
        let (status, _) = api
            .get(&format!("/api/v1/orgs/{fresh}/events"), &analyst)
            .await;
        assert_eq!(status, 403, "{backend:?}: a member reads no events");
        // Back to analyst: the token's own role applies again.
        api.post(
            &format!("/api/v1/orgs/{fresh}/members"),
            &api.operator_token,
            json!({ "email": "ben@freshmart.example", "role": "analyst" }),
        )
        .await;
        assert_eq!(
            api.get(&format!("/api/v1/orgs/{fresh}/audit"), &analyst)
                .await
                .0,
            200,
            "{backend:?}"
        );
    }
}
