//! The superapp over HTTP, on each backend: a partner registers a bundle, the operator approves
//! it, the mini-app's own origin serves it; a customer launches it (a signed, pairwise launch
//! context), grants a scope, pays a server-priced payment request in the cashier (and cannot pay
//! a different amount or twice), gets notified within the limit, and signs in to the partner's
//! backend through OpenID Connect with PKCE; revoking the grant kills the tokens. Then the same
//! flow through Python's authlib, an independent client.

use agora_app::superapp::{verify_jws, zip_files};
use agora_app::{Call, NewListing, NewSlot};
use agora_domain::listing::ListingKind;
use agora_domain::{Actor, RequestId, Role, Timestamp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TestApi, backends};
use crate::portal_market::{Visitor, add_member};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn manifest(slug: &str, scopes: Value) -> Vec<u8> {
    json!({
        "slug": slug,
        "name": format!("{slug} app"),
        "description": "A test mini-app.",
        "category": "health",
        "icon": "icon.svg",
        "entry": "index.html",
        "scopes": scopes,
        "redirect_uris": [REDIRECT],
    })
    .to_string()
    .into_bytes()
}

fn bundle(slug: &str) -> Vec<u8> {
    let manifest = manifest(
        slug,
        json!([
            { "scope": "profile", "reason": "To greet you." },
            { "scope": "notifications", "reason": "To remind you." }
        ]),
    );
    zip_files(&[
        ("manifest.json", &manifest),
        (
            "index.html",
            b"<!doctype html><title>t</title><script src=\"/agora-sdk.js\"></script>",
        ),
        ("icon.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
    ])
    .unwrap()
}

async fn upload(
    api: &TestApi,
    path: &str,
    token: &str,
    body: Vec<u8>,
    kind: &str,
) -> (StatusCode, Value) {
    let response = api
        .client
        .post(format!("{}{path}", api.url))
        .bearer_auth(token)
        .header("content-type", kind)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A request to a mini-app's own origin (`{slug}.apps.localhost`), on the test server's port.
async fn from_origin(api: &TestApi, slug: &str, path: &str) -> reqwest::Response {
    let port = api.url.rsplit(':').next().unwrap();
    api.client
        .get(format!("{}{path}", api.url))
        .header("host", format!("{slug}.apps.localhost:{port}"))
        .send()
        .await
        .unwrap()
}

/// A bridge call from the host page: the session cookie and, for changes, the CSRF header.
async fn bridge(
    api: &TestApi,
    visitor: &Visitor<'_>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    csrf: bool,
) -> (StatusCode, Value) {
    let mut request = api
        .client
        .request(method, format!("{}{path}", api.url))
        .header(
            "cookie",
            format!("agora_session={}", visitor.session_secret),
        );
    if csrf {
        request = request.header("x-csrf-token", &visitor.csrf_token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn instance_key(api: &TestApi) -> [u8; 32] {
    let jwks: Value = api
        .client
        .get(format!("{}/oauth/jwks.json", api.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

async fn wallet_balance(visitor: &Visitor<'_>) -> String {
    let html = visitor.get("/wallet").await.html;
    html.split("id=\"wallet-balance\"")
        .nth(1)
        .map(|rest| rest.chars().take(80).collect())
        .unwrap_or_else(|| html.chars().take(0).collect())
}

fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        agora_domain::OrgId::new().as_uuid().simple(),
        agora_domain::OrgId::new().as_uuid().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn query_param(location: &str, name: &str) -> Option<String> {
    location
        .split_once('?')?
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_launches_grants_pays_and_signs_in_to_a_partner_that_sees_only_what_was_granted()
{
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let clinic_id = api.partner("Vila Clinic").await;
        let clinic: agora_domain::OrgId = clinic_id.parse().unwrap();
        let developer = api
            .member_token(&clinic_id, "dev@vilaclinic.example", "developer")
            .await;
        let other_id = api.partner("Other Partner").await;
        let other = api
            .member_token(&other_id, "owner@other.example", "owner")
            .await;

        // Bad uploads are refused, naming the culprit, and register nothing.
        let traversal = zip_files(&[
            ("manifest.json", &manifest("bad", json!([]))),
            ("../index.html", b"x"),
        ])
        .unwrap();
        let (status, problem) = upload(
            &api,
            &format!("/api/v1/orgs/{clinic_id}/miniapps"),
            &developer,
            traversal,
            "application/zip",
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("../index.html"),
            "{problem}"
        );
        let (status, problem) = upload(
            &api,
            &format!("/api/v1/orgs/{clinic_id}/miniapps"),
            &developer,
            b"not a zip".to_vec(),
            "application/zip",
        )
        .await;
        assert_eq!(status, 400, "{problem}");
        let (status, _) = upload(
            &api,
            &format!("/api/v1/orgs/{clinic_id}/miniapps"),
            &developer,
            bundle("clinic"),
            "text/plain",
        )
        .await;
        assert_eq!(status, 400);
        // Another organisation cannot register for the clinic.
        let (status, _) = upload(
            &api,
            &format!("/api/v1/orgs/{clinic_id}/miniapps"),
            &other,
            bundle("clinic"),
            "application/zip",
        )
        .await;
        assert_eq!(status, 403);

        let (status, registered) = upload(
            &api,
            &format!("/api/v1/orgs/{clinic_id}/miniapps"),
            &developer,
            bundle("clinic"),
            "application/zip",
        )
        .await;
        assert_eq!(status, 201, "{registered}");
        assert_eq!(registered["version"]["state"], "pending");
        let app_id = registered["app"]["id"].as_str().unwrap().to_owned();
        let client_secret = registered["client_secret"].as_str().unwrap().to_owned();
        // The slug is taken now.
        let (status, _) = upload(
            &api,
            &format!("/api/v1/orgs/{other_id}/miniapps"),
            &other,
            bundle("clinic"),
            "application/zip",
        )
        .await;
        assert_eq!(status, 409);
        // Not served before review.
        assert_eq!(from_origin(&api, "clinic", "/").await.status(), 404);
        let (status, _) = api
            .post(
                &format!("/api/v1/miniapps/{app_id}/versions/1/review"),
                &developer,
                json!({ "decision": "approve" }),
            )
            .await;
        assert_eq!(status, 403, "a partner does not review its own mini-app");
        let (status, _) = api
            .post(
                &format!("/api/v1/miniapps/{app_id}/versions/1/review"),
                &api.operator_token,
                json!({ "decision": "reject" }),
            )
            .await;
        assert_eq!(status, 400, "a rejection needs a reason");
        let (status, reviewed) = api
            .post(
                &format!("/api/v1/miniapps/{app_id}/versions/1/review"),
                &api.operator_token,
                json!({ "decision": "approve" }),
            )
            .await;
        assert_eq!(status, 200, "{reviewed}");
        assert_eq!(reviewed["live"], true);

        // Its origin serves its files under a strict policy, and Agora's SDK; never the manifest.
        let page = from_origin(&api, "clinic", "/").await;
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            policy.contains("script-src 'self'") && policy.contains("frame-ancestors"),
            "{policy}"
        );
        assert!(page.text().await.unwrap().contains("agora-sdk.js"));
        assert_eq!(
            from_origin(&api, "clinic", "/manifest.json").await.status(),
            404
        );
        let sdk = from_origin(&api, "clinic", "/agora-sdk.js")
            .await
            .text()
            .await
            .unwrap();
        assert!(!sdk.contains("__AGORA_PORTAL_ORIGIN__"));
        assert_eq!(from_origin(&api, "nobody", "/").await.status(), 404);
        // The mini-app origin is never the portal: no API, no pages.
        assert_eq!(
            from_origin(&api, "clinic", "/api/v1/miniapps")
                .await
                .status(),
            404
        );

        // A second app, for correlation checks.
        let (status, second) = upload(
            &api,
            &format!("/api/v1/orgs/{other_id}/miniapps"),
            &other,
            bundle("second"),
            "application/zip",
        )
        .await;
        assert_eq!(status, 201, "{second}");
        let second_id = second["app"]["id"].as_str().unwrap().to_owned();
        api.post(
            &format!("/api/v1/miniapps/{second_id}/versions/1/review"),
            &api.operator_token,
            json!({ "decision": "approve" }),
        )
        .await;

        // The clinic sells a consultation with slots.
        let system = Actor::system();
        add_member(&api, clinic, "vera@vilaclinic.example", Role::Owner).await;
        let call = Call::new(&system, RequestId::new());
        let listing = api
            .app
            .create_listing(
                &call,
                NewListing {
                    seller: Some(clinic),
                    kind: ListingKind::Service {
                        duration_minutes: 30,
                    },
                    title: "Dr. Rocha".to_owned(),
                    description: String::new(),
                    category: "health/consultations".to_owned(),
                    price: 4_500,
                    currency: "EUR".to_owned(),
                },
            )
            .await
            .unwrap();
        let slot = api
            .app
            .add_slot(
                &call,
                listing.id,
                NewSlot {
                    starts_at: Timestamp::from_micros(
                        Timestamp::now().as_micros() + 86_400_000_000,
                    ),
                    ends_at: None,
                },
            )
            .await
            .unwrap();
        let other_listing = api
            .app
            .create_listing(
                &call,
                NewListing {
                    seller: Some(other_id.parse().unwrap()),
                    kind: ListingKind::Product { stock: None },
                    title: "Someone else's".to_owned(),
                    description: String::new(),
                    category: "food".to_owned(),
                    price: 100,
                    currency: "EUR".to_owned(),
                },
            )
            .await
            .unwrap();

        let cleo = Visitor::sign_up(&api, "Cleo Customer", "cleo@customer.example").await;
        let customer = cleo.actor().await.user_id.unwrap();
        api.app
            .top_up_wallet(
                &Call::new(&system, RequestId::new()),
                customer,
                agora_domain::ledger::Currency::parse("EUR").unwrap(),
                10_000,
                None,
            )
            .await
            .unwrap();

        // The home page lists both approved apps.
        let home = cleo.get("/").await.html;
        assert!(
            home.contains("clinic app") && home.contains("second app"),
            "{home}"
        );

        // Launch: only with the session's CSRF header; a signed, pairwise, short-lived context.
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/launch",
            None,
            false,
        )
        .await;
        assert_eq!(status, 403);
        let (status, launch) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/launch",
            None,
            true,
        )
        .await;
        assert_eq!(status, 200, "{launch}");
        let key = instance_key(&api).await;
        let claims = verify_jws(&key, launch["token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["aud"], app_id.as_str());
        assert!(
            claims.get("name").is_none(),
            "nothing granted yet: {claims}"
        );
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
        let subject = claims["sub"].as_str().unwrap().to_owned();
        assert!(!subject.contains(&customer.to_string()));
        let mut forged = launch["token"].as_str().unwrap().to_owned();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert!(
            verify_jws(&key, &forged).is_err(),
            "a changed signature is refused"
        );
        let (_, second_launch) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/second/launch",
            None,
            true,
        )
        .await;
        let second_claims = verify_jws(&key, second_launch["token"].as_str().unwrap()).unwrap();
        assert_ne!(
            second_claims["sub"],
            subject.as_str(),
            "subjects are pairwise"
        );
        assert_ne!(second_claims["jti"], claims["jti"]);

        // Consent: only declared, known scopes; granting adds them to the launch context.
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::GET,
            "/apps/clinic/consent?scopes=email",
            None,
            false,
        )
        .await;
        assert_eq!(status, 400, "email is not declared");
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::GET,
            "/apps/clinic/consent?scopes=wallet",
            None,
            false,
        )
        .await;
        assert_eq!(status, 400);
        let (status, consent) = bridge(
            &api,
            &cleo,
            reqwest::Method::GET,
            "/apps/clinic/consent?scopes=profile",
            None,
            false,
        )
        .await;
        assert_eq!(status, 200, "{consent}");
        assert_eq!(consent["app"]["seller_name"], "Vila Clinic");
        assert_eq!(consent["scopes"][0]["reason"], "To greet you.");
        let (status, granted) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/grants",
            Some(json!({ "scopes": ["profile"] })),
            true,
        )
        .await;
        assert_eq!(status, 200, "{granted}");
        let (_, launch) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/launch",
            None,
            true,
        )
        .await;
        let claims = verify_jws(&key, launch["token"].as_str().unwrap()).unwrap();
        assert_eq!(claims["name"], "Cleo Customer");
        assert!(claims.get("email").is_none());

        // Payments: priced by the server, only the app's own listings, paid once, for the amount shown.
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/payment-requests",
            Some(json!({ "lines": [{ "listing_id": other_listing.id, "quantity": 1 }] })),
            true,
        )
        .await;
        assert_eq!(status, 400, "another organisation's listing");
        let (status, request) = bridge(&api, &cleo, reqwest::Method::POST, "/apps/clinic/payment-requests", Some(json!({ "lines": [{ "listing_id": listing.id, "quantity": 1, "slot_id": slot.id }] })), true).await;
        assert_eq!(status, 201, "{request}");
        assert_eq!(request["amount"], 4500);
        assert_eq!(request["seller_name"], "Vila Clinic");
        let request_id = request["id"].as_str().unwrap().to_owned();
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::GET,
            &format!("/apps/second/payment-requests/{request_id}"),
            None,
            false,
        )
        .await;
        assert_eq!(status, 404, "another app cannot show it");
        let before = wallet_balance(&cleo).await;
        let (status, refused) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            &format!("/apps/clinic/payment-requests/{request_id}/confirm"),
            Some(json!({ "amount": 1, "currency": "EUR" })),
            true,
        )
        .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(wallet_balance(&cleo).await, before, "nothing was paid");
        // The clinic raises its price after the request: the amount shown is refused, and the
        // request waits again; back at its price, the same request is paid.
        let reprice = |price: i64| {
            let api = &api;
            async move {
                let system = Actor::system();
                api.app
                    .update_listing(
                        &Call::new(&system, RequestId::new()),
                        listing.id,
                        agora_app::ListingUpdate {
                            price: Some(price),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
            }
        };
        reprice(5000).await;
        let (status, repriced) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            &format!("/apps/clinic/payment-requests/{request_id}/confirm"),
            Some(json!({ "amount": 4500, "currency": "EUR" })),
            true,
        )
        .await;
        assert_eq!(status, 409, "{repriced}");
        assert!(repriced.to_string().contains("50.00 EUR"), "{repriced}");
        assert_eq!(wallet_balance(&cleo).await, before, "nothing was paid");
        reprice(4500).await;
        let (status, paid) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            &format!("/apps/clinic/payment-requests/{request_id}/confirm"),
            Some(json!({ "amount": 4500, "currency": "EUR" })),
            true,
        )
        .await;
        assert_eq!(status, 200, "{paid}");
        assert_eq!(paid["state"], "paid");
        let order_id = paid["order_id"].as_str().unwrap().to_owned();
        assert_ne!(wallet_balance(&cleo).await, before);
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            &format!("/apps/clinic/payment-requests/{request_id}/confirm"),
            Some(json!({ "amount": 4500, "currency": "EUR" })),
            true,
        )
        .await;
        assert_eq!(status, 409, "paid once");
        assert!(cleo.get("/orders").await.html.contains(&order_id));
        // The partner learns it from the API, with a notification the instance signed.
        let (status, seen) = api
            .get(
                &format!("/api/v1/miniapps/{app_id}/payment-requests/{request_id}"),
                &developer,
            )
            .await;
        assert_eq!(status, 200, "{seen}");
        let notification = verify_jws(&key, seen["notification"].as_str().unwrap()).unwrap();
        assert_eq!(notification["state"], "paid");
        assert_eq!(notification["order_id"], order_id.as_str());
        assert_eq!(notification["sub"], subject.as_str());
        let (status, _) = api
            .get(
                &format!("/api/v1/miniapps/{app_id}/payment-requests/{request_id}"),
                &other,
            )
            .await;
        assert_eq!(status, 403);
        // The partner's backend asks by subject; only the customer can confirm, in the portal.
        let (status, backend) = api.post(&format!("/api/v1/miniapps/{app_id}/payment-requests"), &developer, json!({ "subject": subject, "lines": [{ "listing_id": listing.id, "quantity": 1, "slot_id": slot.id }] })).await;
        assert_eq!(status, 201, "{backend}");
        let (status, _) = api.post(&format!("/api/v1/miniapps/{app_id}/payment-requests"), &developer, json!({ "subject": "nobody", "lines": [{ "listing_id": listing.id, "quantity": 1, "slot_id": slot.id }] })).await;
        assert_eq!(status, 404);
        let confirm_with_token = api
            .client
            .post(format!(
                "{}/apps/clinic/payment-requests/{}/confirm",
                api.url,
                backend["id"].as_str().unwrap()
            ))
            .bearer_auth(&developer)
            .json(&json!({ "amount": 4500, "currency": "EUR" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            confirm_with_token.status(),
            401,
            "a partner cannot confirm for the customer"
        );

        // Confirmations racing on one request pay it once, though the wallet could pay several.
        let vitamins = api
            .app
            .create_listing(
                &call,
                NewListing {
                    seller: Some(clinic),
                    kind: ListingKind::Product { stock: None },
                    title: "Vitamin D drops".to_owned(),
                    description: String::new(),
                    category: "health/pharmacy".to_owned(),
                    price: 900,
                    currency: "EUR".to_owned(),
                },
            )
            .await
            .unwrap();
        let (_, racing) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/payment-requests",
            Some(json!({ "lines": [{ "listing_id": vitamins.id, "quantity": 1 }] })),
            true,
        )
        .await;
        let racing_id = racing["id"].as_str().unwrap().to_owned();
        let path = format!("/apps/clinic/payment-requests/{racing_id}/confirm");
        let attempts = futures_util::future::join_all((0..6).map(|_| {
            bridge(
                &api,
                &cleo,
                reqwest::Method::POST,
                &path,
                Some(json!({ "amount": 900, "currency": "EUR" })),
                true,
            )
        }))
        .await;
        let paid = attempts.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(paid, 1, "{attempts:?}");
        assert!(
            attempts
                .iter()
                .all(|(status, _)| *status == 200 || *status == 409),
            "{attempts:?}"
        );
        let (_, customer_orders) = api
            .get(
                &format!("/api/v1/customers/{customer}/orders?limit=50"),
                &api.operator_token,
            )
            .await;
        let vitamin_orders = customer_orders["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|order| order.to_string().contains(&vitamins.id.to_string()))
            .count();
        assert_eq!(
            vitamin_orders, 1,
            "one order for one payment request: {customer_orders}"
        );

        // Notifications: only with the grant, within the hourly limit.
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/notifications",
            Some(json!({ "title": "Reminder" })),
            true,
        )
        .await;
        assert_eq!(status, 403, "notifications not granted yet");
        bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/grants",
            Some(json!({ "scopes": ["notifications"] })),
            true,
        )
        .await;
        for _ in 0..5 {
            let (status, sent) = bridge(
                &api,
                &cleo,
                reqwest::Method::POST,
                "/apps/clinic/notifications",
                Some(json!({ "title": "Reminder", "body": "Tomorrow at nine." })),
                true,
            )
            .await;
            assert_eq!(status, 201, "{sent}");
        }
        let (status, _) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/notifications",
            Some(json!({ "title": "Spam" })),
            true,
        )
        .await;
        assert_eq!(status, 429);
        assert!(
            cleo.get("/notifications")
                .await
                .html
                .contains("Tomorrow at nine.")
        );

        // OpenID Connect with PKCE.
        let discovery: Value = api
            .client
            .get(format!("{}/.well-known/openid-configuration", api.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            json!(["S256"])
        );
        let (verifier, challenge) = pkce();
        let authorize = |redirect: &str, challenge: &str| {
            format!(
                "/oauth/authorize?response_type=code&client_id={app_id}&redirect_uri={redirect}&scope=openid%20profile&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256"
            )
        };
        let refused = cleo
            .get(&authorize("https://evil.example/cb", &challenge))
            .await;
        assert_eq!(
            refused.status, 400,
            "an unregistered redirect URI is never followed"
        );
        assert!(refused.location.is_none());
        let no_pkce = cleo.get(&format!("/oauth/authorize?response_type=code&client_id={app_id}&redirect_uri={REDIRECT}&scope=openid&state=s1")).await;
        assert_eq!(no_pkce.status, 303);
        assert!(no_pkce.location.unwrap().contains("error=invalid_request"));
        // Profile was granted in the portal already, so the code comes at once.
        let granted = cleo.get(&authorize(REDIRECT, &challenge)).await;
        assert_eq!(granted.status, 303, "{}", granted.html);
        let location = granted.location.unwrap();
        assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
        let code = query_param(&location, "code").unwrap();
        let exchange = |code: String, verifier: String| {
            let api = &api;
            let app_id = app_id.clone();
            let client_secret = client_secret.clone();
            async move {
                let response = api
                    .client
                    .post(format!("{}/oauth/token", api.url))
                    .basic_auth(&app_id, Some(&client_secret))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", verifier.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let (status, wrong) = exchange(code.clone(), "a".repeat(50)).await;
        assert_eq!(
            (status, wrong["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, spent) = exchange(code, verifier.clone()).await;
        assert_eq!(
            (status, spent["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "a failed exchange spends the code"
        );
        let code = query_param(
            &cleo
                .get(&authorize(REDIRECT, &challenge))
                .await
                .location
                .unwrap(),
            "code",
        )
        .unwrap();
        let (status, tokens) = exchange(code.clone(), verifier.clone()).await;
        assert_eq!(status, 200, "{tokens}");
        let id_token = verify_jws(&key, tokens["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(
            id_token["sub"],
            subject.as_str(),
            "one subject per app, in every channel"
        );
        assert_eq!(id_token["nonce"], "n1");
        assert_eq!(id_token["name"], "Cleo Customer");
        let userinfo = |token: String| {
            let api = &api;
            async move {
                api.client
                    .get(format!("{}/oauth/userinfo", api.url))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let info: Value = userinfo(access.clone()).await.json().await.unwrap();
        assert_eq!(info["name"], "Cleo Customer");
        assert!(info.get("email").is_none(), "email was never granted");
        // The code again: refused, and the token it bought is revoked.
        let (status, _) = exchange(code, verifier.clone()).await;
        assert_eq!(status, 400);
        assert_eq!(userinfo(access).await.status(), 401);
        // A fresh token dies with the grant.
        let code = query_param(
            &cleo
                .get(&authorize(REDIRECT, &challenge))
                .await
                .location
                .unwrap(),
            "code",
        )
        .unwrap();
        let (_, tokens) = exchange(code, verifier.clone()).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo(access.clone()).await.status(), 200);
        let grants = cleo.get("/grants").await.html;
        let grant_id = grants
            .split("data-grant=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let revoked = cleo.post(&format!("/grants/{grant_id}/revoke"), &[]).await;
        assert_eq!(revoked.status, 303);
        assert_eq!(
            userinfo(access).await.status(),
            401,
            "revoking the grant revoked its tokens"
        );
        let refreshed = api
            .client
            .post(format!("{}/oauth/token", api.url))
            .basic_auth(&app_id, Some(&client_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 400, "a revoked grant's refresh token");
        let refused: Value = refreshed.json().await.unwrap();
        assert_eq!(refused["error"], "invalid_grant", "{refused}");
        let (_, launch) = bridge(
            &api,
            &cleo,
            reqwest::Method::POST,
            "/apps/clinic/launch",
            None,
            true,
        )
        .await;
        let claims = verify_jws(&key, launch["token"].as_str().unwrap()).unwrap();
        assert!(
            claims.get("name").is_none(),
            "the launch context lost the name: {claims}"
        );
        // Asking again shows the consent page.
        let consent = cleo.get(&authorize(REDIRECT, &challenge)).await;
        assert_eq!(consent.status, 200);
        assert!(consent.html.contains("To greet you."), "{}", consent.html);

        // The console shows installs and payments; a wrong client secret is refused.
        let (status, detail) = api
            .get(&format!("/api/v1/miniapps/{app_id}"), &developer)
            .await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["figures"]["payments"], 2);
        assert_eq!(detail["figures"]["active_users_30d"], 1);
        let wrong_secret = api
            .client
            .post(format!("{}/oauth/token", api.url))
            .basic_auth(&app_id, Some("wrong"))
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_secret.status(), 401);

        // Every change above is in the audit log, the revocation included.
        let (_, audit) = api
            .get("/api/v1/audit?limit=200", &api.operator_token)
            .await;
        let text = audit.to_string();
        assert!(
            text.contains("miniapp.review") && text.contains("miniapp.use"),
            "{text}"
        );

        // An independent client: Python's authlib, with a fresh customer.
        authlib_client(&api, &app_id, &client_secret).await;
    }
}

/// A `multipart/form-data` body as a browser sends the console's upload form.
fn upload_form(csrf_token: &str, file_name: &str, bundle: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----agora-test-boundary-7d93";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf_token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bundle);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_upload(
    api: &TestApi,
    visitor: &Visitor<'_>,
    path: &str,
    csrf_token: &str,
    bundle: &[u8],
) -> (StatusCode, String) {
    let (content_type, body) = upload_form(csrf_token, "app.zip", bundle);
    let response = api
        .client
        .post(format!("{}{path}", api.url))
        .header(
            "cookie",
            format!("agora_session={}", visitor.session_secret),
        )
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_registers_uploads_and_serves_an_older_version_from_the_console() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let bakery: agora_domain::OrgId = api.partner("Console Bakery").await.parse().unwrap();
        add_member(&api, bakery, "owner@consolebakery.example", Role::Owner).await;
        let owner =
            Visitor::sign_in(&api, "owner@consolebakery.example", "the right password").await;
        let page = owner.get("/console/apps").await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("Register a mini-app"), "{}", page.html);
        assert!(page.html.contains("No mini-app yet."));

        // A form from elsewhere, a broken zip and an empty form are refused; nothing registered.
        let (status, _) =
            post_upload(&api, &owner, "/console/apps", "forged", &bundle("bakery")).await;
        assert_eq!(status, 403);
        let (status, html) = post_upload(
            &api,
            &owner,
            "/console/apps",
            &owner.csrf_token,
            b"PK not a zip",
        )
        .await;
        assert_eq!(status, 422, "{html}");
        assert!(html.contains("role=\"alert\""), "{html}");
        let (status, html) =
            post_upload(&api, &owner, "/console/apps", &owner.csrf_token, b"").await;
        assert_eq!(status, 422, "{html}");
        assert!(html.contains("Choose a bundle"), "{html}");
        let too_big = vec![b'x'; 5 * 1024 * 1024 + 70 * 1024];
        let (status, html) =
            post_upload(&api, &owner, "/console/apps", &owner.csrf_token, &too_big).await;
        assert_eq!(status, 422, "{html}");
        assert!(html.contains("superapp.bundle_bytes_max"), "{html}");
        assert!(
            owner
                .get("/console/apps")
                .await
                .html
                .contains("No mini-app yet.")
        );

        // Registered: the client secret is shown once, and it is the one the token endpoint takes.
        let (status, html) = post_upload(
            &api,
            &owner,
            "/console/apps",
            &owner.csrf_token,
            &bundle("bakery"),
        )
        .await;
        assert_eq!(status, 201, "{html}");
        let field = |class: &str| {
            html.split(&format!("<code class=\"{class}\">"))
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .unwrap_or_else(|| panic!("no {class} in {html}"))
                .to_owned()
        };
        let (app_id, secret) = (field("client-id"), field("client-secret"));
        assert!(!owner.get("/console/apps").await.html.contains(&secret));
        let token = |secret: String| {
            let api = &api;
            let app_id = app_id.clone();
            async move {
                api.client
                    .post(format!("{}/oauth/token", api.url))
                    .basic_auth(&app_id, Some(secret))
                    .form(&[("grant_type", "authorization_code"), ("code", "none")])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            token(secret).await,
            400,
            "the secret is right, the code is not"
        );
        assert_eq!(token("wrong".into()).await, 401);

        // A second version, then both approved: the newest is served.
        let (status, html) = post_upload(
            &api,
            &owner,
            &format!("/console/apps/{app_id}/versions"),
            &owner.csrf_token,
            &bundle("bakery"),
        )
        .await;
        assert_eq!(status, 201, "{html}");
        assert!(html.contains("Uploaded version 2: pending."), "{html}");
        // Another organisation's member cannot upload to it.
        let rival: agora_domain::OrgId = api.partner("Rival Bakery").await.parse().unwrap();
        add_member(&api, rival, "owner@rival.example", Role::Owner).await;
        let rival_owner = Visitor::sign_in(&api, "owner@rival.example", "the right password").await;
        let (status, _) = post_upload(
            &api,
            &rival_owner,
            &format!("/console/apps/{app_id}/versions"),
            &rival_owner.csrf_token,
            &bundle("bakery"),
        )
        .await;
        assert_eq!(status, 403);
        for version in [1, 2] {
            let (status, reviewed) = api
                .post(
                    &format!("/api/v1/miniapps/{app_id}/versions/{version}/review"),
                    &api.operator_token,
                    json!({ "decision": "approve" }),
                )
                .await;
            assert_eq!(status, 200, "{reviewed}");
        }
        let page = owner.get("/console/apps").await;
        assert!(page.html.contains("Serving version 2."), "{}", page.html);
        assert!(page.html.contains("Serve version 1 of bakery app"));

        // Back to version 1 from the console.
        let served = owner
            .post(&format!("/console/apps/{app_id}/live"), &[("version", "1")])
            .await;
        assert_eq!(served.status, 303, "{}", served.html);
        let page = owner.get("/console/apps").await;
        assert!(page.html.contains("Serving version 1."), "{}", page.html);
        assert!(page.html.contains("Serve version 2 of bakery app"));
        let served = owner
            .post(&format!("/console/apps/{app_id}/live"), &[("version", "7")])
            .await;
        assert_eq!(served.status, 404, "{}", served.html);
        assert!(served.html.contains("version 7"), "{}", served.html);
    }
}

/// Runs `tests/oidc/authlib_client.py` (Debian's python3-authlib) against this server.
async fn authlib_client(api: &TestApi, app_id: &str, client_secret: &str) {
    let python = "/usr/bin/python3";
    let ready = std::process::Command::new(python)
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install python3-authlib and python3-requests (see .ci/run)"
        );
        eprintln!("skipping the authlib client: no python3-authlib here (CI installs it)");
        return;
    }
    let email = format!(
        "oidc-{}@customer.example",
        agora_domain::OrgId::new().as_uuid().simple()
    );
    let dana = Visitor::sign_up(api, "Dana Client", &email).await;
    // What her mini-app would hand its backend: the partner verifies it and refuses a replay.
    let (status, launch) = bridge(
        api,
        &dana,
        reqwest::Method::POST,
        "/apps/clinic/launch",
        None,
        true,
    )
    .await;
    assert_eq!(status, 200, "{launch}");
    let launch_token = launch["token"].as_str().unwrap().to_owned();
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oidc/authlib_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("AGORA_URL", &api.url)
        .env("CLIENT_ID", app_id)
        .env("CLIENT_SECRET", client_secret)
        .env("REDIRECT_URI", REDIRECT)
        .env("EMAIL", &email)
        .env("PASSWORD", "a long enough password")
        .env("SCOPE", "openid profile")
        .env("LAUNCH_TOKEN", &launch_token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "authlib client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("oidc-authlib: all"), "{stdout}");
    assert!(
        stdout.contains("ok   refresh-reuse"),
        "the client did not check refresh token rotation: {stdout}"
    );
    assert!(
        stdout.contains("launch-replay"),
        "the launch context was checked: {stdout}"
    );
}
