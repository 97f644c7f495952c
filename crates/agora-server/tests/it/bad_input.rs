//! Bad input gets a precise 4xx problem document and writes nothing.

use agora_app::AppConfig;
use agora_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApi, backends};

/// A raw body sent to `POST /api/v1/orgs`, and what must come back.
fn check_body(
    content_type: Option<&str>,
    body: Vec<u8>,
    status: u16,
    problem_type: &str,
    detail_contains: &str,
) -> (Option<String>, Vec<u8>, u16, String, String) {
    (
        content_type.map(str::to_owned),
        body,
        status,
        problem_type.to_owned(),
        detail_contains.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_precise_problems_and_create_nothing() {
    for backend in backends() {
        let api = TestApi::start_with(
            backend,
            AppConfig::default(),
            ServerConfig {
                request_body_bytes_max: 4096,
                ..ServerConfig::default()
            },
        )
        .await;
        let json_type = Some("application/json");
        let cases = [
            check_body(
                json_type,
                b"{\"name\": \"FreshMart\"".to_vec(),
                400,
                "malformed-json",
                "EOF",
            ),
            check_body(
                json_type,
                b"{\"name\": 42}".to_vec(),
                422,
                "invalid-body",
                "invalid type",
            ),
            check_body(
                json_type,
                b"{\"name\": \"FreshMart\", \"owner\": \"me\"}".to_vec(),
                422,
                "invalid-body",
                "unknown field `owner`",
            ),
            check_body(
                json_type,
                b"{}".to_vec(),
                422,
                "invalid-body",
                "missing field `name`",
            ),
            check_body(
                json_type,
                format!("{{\"name\": \"{}\"}}", "x".repeat(101)).into_bytes(),
                422,
                "invalid-body",
                "at most 100 characters",
            ),
            check_body(
                json_type,
                b"{\"name\": \"bad\x00name\"}".to_vec(),
                400,
                "malformed-json",
                "control character",
            ),
            check_body(
                json_type,
                b"{\"name\": \"caf\xc3\x28\"}".to_vec(),
                400,
                "malformed-json",
                "unicode",
            ),
            check_body(
                json_type,
                format!("{{\"name\": \"{}\"}}", "x".repeat(5000)).into_bytes(),
                413,
                "body-too-large",
                "request_body_bytes_max",
            ),
            check_body(
                None,
                b"{\"name\": \"FreshMart\"}".to_vec(),
                415,
                "content-type",
                "Content-Type",
            ),
            check_body(
                Some("text/plain"),
                b"{\"name\": \"FreshMart\"}".to_vec(),
                415,
                "content-type",
                "Content-Type",
            ),
        ];
        for (content_type, body, status, problem_type, detail) in cases {
            let mut request = api
                .client
                .post(format!("{}/api/v1/orgs", api.url))
                .bearer_auth(&api.operator_token)
                .body(body.clone());
            if let Some(content_type) = &content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            let what = format!(
                "{backend:?}: {:?} {content_type:?}",
                String::from_utf8_lossy(&body[..body.len().min(60)])
            );
            assert_eq!(response.status().as_u16(), status, "{what}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{what}"
            );
            assert!(response.headers().contains_key("x-request-id"), "{what}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(
                problem["type"],
                format!("urn:agora:problem:{problem_type}"),
                "{what}: {problem}"
            );
            assert!(
                problem["detail"].as_str().unwrap().contains(&detail),
                "{what}: {problem}"
            );
        }
        let (_, orgs) = api.get("/api/v1/orgs", &api.operator_token).await;
        assert_eq!(
            orgs["items"].as_array().unwrap().len(),
            1,
            "{backend:?}: only the operator exists"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_and_unknown_credentials_are_401_with_a_challenge() {
    let api = TestApi::start(Backend::Sqlite).await;
    let cases: [(Option<&str>, &str); 5] = [
        (None, "send an API token"),
        (Some("Basic dXNlcjpwYXNz"), "must be `Bearer <token>`"),
        (Some("Bearer"), "must be `Bearer <token>`"),
        (
            Some(
                "Bearer agora_000000000000_0000000000000000000000000000000000000000000000000000000000000000",
            ),
            "unknown, revoked or expired",
        ),
        (Some("Bearer ' OR 1=1 --"), "unknown, revoked or expired"),
    ];
    for (header, detail) in cases {
        let mut request = api.client.get(format!("{}/api/v1/me", api.url));
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains(detail),
            "{header:?}: {problem}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ids_and_unknown_routes_say_what_is_wrong() {
    let api = TestApi::start(Backend::Sqlite).await;
    let user_id = agora_domain::UserId::new();
    let (status, problem) = api
        .get(&format!("/api/v1/orgs/{user_id}"), &api.operator_token)
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("org_"),
        "{problem}"
    );
    let (status, problem) = api
        .get(
            &format!("/api/v1/orgs/{}", agora_domain::OrgId::new()),
            &api.operator_token,
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, problem) = api.get("/api/v1/nothing-here", &api.operator_token).await;
    assert_eq!(status, 404);
    assert_eq!(problem["type"], "urn:agora:problem:no-route");
    let (status, problem) = api.get("/api/v1/orgs?limit=ten", &api.operator_token).await;
    assert_eq!(status, 400);
    assert_eq!(problem["type"], "urn:agora:problem:invalid-query");
    let (status, problem) = api
        .get("/api/v1/orgs?color=blue", &api.operator_token)
        .await;
    assert_eq!(
        status, 400,
        "unknown query parameters are refused: {problem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_that_is_not_visible_ascii_is_refused() {
    let api = TestApi::start(Backend::Sqlite).await;
    for key in ["", "has space", &"k".repeat(256)] {
        let response = api
            .client
            .post(format!("{}/api/v1/orgs", api.url))
            .bearer_auth(&api.operator_token)
            .header("Idempotency-Key", key)
            .json(&json!({ "name": "FreshMart" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{key:?}");
    }
}

/// Sign-in through the portal form, as a browser would post it.
async fn post_signin(
    api: &TestApi,
    email: &str,
    password: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let mut request = api.client.post(format!("{}/signin", api.url));
    if let Some(csrf) = csrf {
        request = request.header("cookie", format!("agora_csrf={csrf}"));
    }
    request
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.unwrap_or("missing")),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_throttles_failed_sign_ins_refuses_forged_cookies_and_requires_csrf() {
    for backend in backends() {
        let config = AppConfig {
            signin_failures_max: 3,
            ..AppConfig::default()
        };
        let api = TestApi::start_with(backend, config, ServerConfig::default()).await;
        let fresh = api.partner("FreshMart").await;
        let system = agora_domain::Actor::system();
        let call = agora_app::Call::new(&system, agora_domain::RequestId::new());
        let member = agora_app::NewMember {
            email: agora_domain::Email::parse("ana@freshmart.example").unwrap(),
            role: agora_domain::Role::Owner,
            display_name: None,
            password: Some(agora_domain::Password::parse("the right password").unwrap()),
        };
        api.app
            .add_member(&call, fresh.parse().unwrap(), member)
            .await
            .unwrap();
        let csrf = "c".repeat(64);

        // Without the CSRF cookie the form is refused before any password is checked.
        assert_eq!(
            post_signin(&api, "ana@freshmart.example", "the right password", None)
                .await
                .status(),
            403
        );

        let good = post_signin(
            &api,
            "ana@freshmart.example",
            "the right password",
            Some(&csrf),
        )
        .await;
        assert_eq!(good.status(), 303, "{backend:?}");
        let session_cookie = good
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("agora_session="))
            .unwrap();
        assert!(
            session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
            "{session_cookie}"
        );
        assert!(!session_cookie.contains("Secure"), "not over TLS here");

        for _ in 0..3 {
            assert_eq!(
                post_signin(
                    &api,
                    "ana@freshmart.example",
                    "a wrong password",
                    Some(&csrf)
                )
                .await
                .status(),
                401,
                "{backend:?}"
            );
        }
        let throttled = post_signin(
            &api,
            "ANA@freshmart.example",
            "the right password",
            Some(&csrf),
        )
        .await;
        assert_eq!(
            throttled.status(),
            429,
            "{backend:?}: the right password does not help while throttled"
        );
        assert!(
            throttled
                .text()
                .await
                .unwrap()
                .contains("too many failed sign-ins")
        );

        // A forged or expired session cookie leads back to sign-in and is cleared.
        let forged = api
            .client
            .get(format!("{}/", api.url))
            .header("cookie", format!("agora_session={}", "f".repeat(64)))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 303, "{backend:?}");
        assert_eq!(forged.headers()["location"], "/signin");
        assert!(
            forged.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let garbage = api
            .client
            .get(format!("{}/audit", api.url))
            .header("cookie", "agora_session=<script>")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 303);

        // Every failure and the throttling are in the audit log.
        let (_, all) = api
            .get("/api/v1/audit?limit=200", &api.operator_token)
            .await;
        let signins: Vec<&Value> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["action"] == "session.create")
            .collect();
        assert_eq!(
            signins
                .iter()
                .filter(|entry| entry["outcome"] == "failed")
                .count(),
            3,
            "{backend:?}"
        );
        assert_eq!(
            signins
                .iter()
                .filter(|entry| entry["outcome"] == "denied")
                .count(),
            1,
            "{backend:?}"
        );
        assert_eq!(
            signins
                .iter()
                .filter(|entry| entry["outcome"] == "succeeded")
                .count(),
            1,
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_signs_up_lands_on_a_home_without_an_organisation_and_cannot_sign_up_twice() {
    let api = TestApi::start(Backend::Sqlite).await;
    let csrf = "d".repeat(64);
    let signup = |email: &'static str, password: &'static str| {
        api.client
            .post(format!("{}/signup", api.url))
            .header("cookie", format!("agora_csrf={csrf}"))
            .form(&[
                ("display_name", "Chen Wei"),
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
    };
    let short = signup("chen@example.org", "short").await.unwrap();
    assert_eq!(short.status(), 422);
    assert!(
        short
            .text()
            .await
            .unwrap()
            .contains("The password must have at least 12 characters.")
    );

    let created = signup("chen@example.org", "a long enough password")
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let cookie = created
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("agora_session="))
        .unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let home = api
        .client
        .get(format!("{}/", api.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(
        html.contains("Welcome, Chen Wei") && html.contains("do not belong to an organisation"),
        "{html}"
    );

    let again = signup("CHEN@example.org", "another long password")
        .await
        .unwrap();
    assert_eq!(again.status(), 422);
    assert!(again.text().await.unwrap().contains("exists already"));

    let (_, all) = api
        .get("/api/v1/audit?limit=200", &api.operator_token)
        .await;
    let created_users = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "user.create")
        .count();
    assert_eq!(created_users, 1, "one account, one audit entry");
}

/// Signs a member in through the portal form and returns the session cookie and its CSRF token.
async fn portal_session(api: &TestApi, email: &str, password: &str) -> (String, String) {
    let csrf = "e".repeat(64);
    let response = post_signin(api, email, password, Some(&csrf)).await;
    assert_eq!(response.status(), 303);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("agora_session="))
        .unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let home = api
        .client
        .get(format!("{}/", api.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let session_csrf = home
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (session, session_csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_make_tokens_in_the_portal_within_their_role_and_revoke_them() {
    let api = TestApi::start(Backend::Sqlite).await;
    let fresh = api.partner("FreshMart").await;
    let system = agora_domain::Actor::system();
    let call = agora_app::Call::new(&system, agora_domain::RequestId::new());
    let member = agora_app::NewMember {
        email: agora_domain::Email::parse("dev@freshmart.example").unwrap(),
        role: agora_domain::Role::Developer,
        display_name: None,
        password: Some(agora_domain::Password::parse("developer password").unwrap()),
    };
    api.app
        .add_member(&call, fresh.parse().unwrap(), member)
        .await
        .unwrap();
    let (session, csrf) = portal_session(&api, "dev@freshmart.example", "developer password").await;
    let home = api
        .client
        .get(format!("{}/", api.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The form offers only roles the developer's own role covers.
    assert!(
        home.contains("<option value=\"developer\">") && home.contains("<option value=\"member\">"),
        "{home}"
    );
    assert!(
        !home.contains("<option value=\"analyst\">") && !home.contains("<option value=\"admin\">")
    );

    let create = |role: &'static str| {
        api.client
            .post(format!("{}/tokens", api.url))
            .header("cookie", &session)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", "reporting"),
                ("role", role),
                ("expires_in_days", "30"),
            ])
            .send()
    };
    let created = create("developer").await.unwrap();
    assert_eq!(created.status(), 201);
    let html = created.text().await.unwrap();
    let secret = html
        .split("id=\"secret\" readonly value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, me) = api.get("/api/v1/me", &secret).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["acting"]["role"], "developer");

    // A developer cannot mint an analyst token, even by posting the form by hand (the bug that was).
    let refused = create("analyst").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("no-role-escalation"));

    // Without the session's CSRF token nothing happens.
    let forged = api
        .client
        .post(format!("{}/tokens", api.url))
        .header("cookie", &session)
        .form(&[
            ("csrf_token", "f".repeat(64).as_str()),
            ("name", "x"),
            ("role", "member"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let (_, tokens) = api
        .get(&format!("/api/v1/orgs/{fresh}/tokens"), &api.operator_token)
        .await;
    let token_id = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| token["name"] == "reporting")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = api
        .client
        .post(format!("{}/tokens/{token_id}/revoke", api.url))
        .header("cookie", &session)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 303);
    assert_eq!(api.get("/api/v1/me", &secret).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_feed_always_gives_a_cursor_to_poll_with() {
    let api = TestApi::start(Backend::Sqlite).await;
    let fresh = api.partner("FreshMart").await;
    let (_, first) = api
        .get(&format!("/api/v1/orgs/{fresh}/events"), &api.operator_token)
        .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a feed always gives a cursor")
        .to_owned();
    let (_, empty) = api
        .get(
            &format!("/api/v1/orgs/{fresh}/events?cursor={cursor}"),
            &api.operator_token,
        )
        .await;
    assert!(empty["items"].as_array().unwrap().is_empty());
    assert_eq!(
        empty["next_cursor"],
        cursor.as_str(),
        "an empty poll keeps the cursor"
    );
    let (status, _) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/orgs/{fresh}"),
            &api.operator_token,
            Some(json!({ "name": "FreshMart Group" })),
        )
        .await;
    assert_eq!(status, 200);
    let (_, later) = api
        .get(
            &format!("/api/v1/orgs/{fresh}/events?cursor={cursor}"),
            &api.operator_token,
        )
        .await;
    let types: Vec<&str> = later["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["org.updated"]);
}
