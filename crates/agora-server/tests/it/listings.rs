//! Listings through the API on each backend: sellers list for themselves and never for another,
//! browse and search with filters and cursors, validation names the field, slots for services,
//! and every change leaves its audit entry and event in the seller's feeds.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

fn milk() -> Value {
    json!({
        "kind": { "type": "product", "stock": 12 },
        "title": "Organic whole milk",
        "description": "From grass-fed cows, one litre.",
        "category": "groceries/dairy",
        "price": 129,
        "currency": "EUR",
    })
}

fn checkup() -> Value {
    json!({
        "kind": { "type": "service", "duration_minutes": 30 },
        "title": "Dental check-up",
        "category": "health/dental",
        "price": 4000,
        "currency": "EUR",
    })
}

/// The field a 400 names, or the rule a 403 names.
fn named(status: StatusCode, problem: &Value) -> (u16, Option<&str>) {
    let key = if status == 403 { "rule" } else { "field" };
    (status.as_u16(), problem[key].as_str())
}

fn titles(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sellers_list_for_their_own_organisation_and_anyone_signed_in_browses() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let bright = api.partner("Brightbrew Brands").await;
        let fresh_owner = api
            .member_token(&fresh, "ana@freshmart.example", "owner")
            .await;
        let fresh_member = api
            .member_token(&fresh, "mo@freshmart.example", "member")
            .await;
        let bright_admin = api
            .member_token(&bright, "carla@brightbrew.example", "admin")
            .await;

        // The owner lists for the organisation it acts for.
        let (status, listing) = api.post("/api/v1/listings", &fresh_owner, milk()).await;
        assert_eq!(status, 201, "{backend:?}: {listing}");
        assert_eq!(listing["seller"], fresh.as_str());
        assert_eq!(listing["status"], "active");
        assert_eq!(listing["kind"], json!({ "type": "product", "stock": 12 }));
        let milk_id = listing["id"].as_str().unwrap().to_owned();
        assert!(milk_id.starts_with("lst_"));

        // Another organisation's admin may not list for FreshMart, nor change its listings; a
        // plain member of FreshMart may not either. The refusal names the rule.
        let mut for_fresh = milk();
        for_fresh["seller"] = json!(fresh);
        let (status, problem) = api.post("/api/v1/listings", &bright_admin, for_fresh).await;
        assert_eq!(
            named(status, &problem),
            (403, Some("no-permit")),
            "{problem}"
        );
        let (status, problem) = api
            .call(
                Method::PATCH,
                &format!("/api/v1/listings/{milk_id}"),
                &bright_admin,
                Some(json!({ "price": 1 })),
            )
            .await;
        assert_eq!(
            named(status, &problem),
            (403, Some("no-permit")),
            "{problem}"
        );
        let (status, problem) = api
            .post(
                &format!("/api/v1/listings/{milk_id}/archive"),
                &bright_admin,
                json!({}),
            )
            .await;
        assert_eq!(
            named(status, &problem),
            (403, Some("no-permit")),
            "{problem}"
        );
        let (status, problem) = api.post("/api/v1/listings", &fresh_member, milk()).await;
        assert_eq!(
            named(status, &problem),
            (403, Some("no-permit")),
            "{problem}"
        );
        // The operator's admins manage any seller's listings.
        let mut by_operator = checkup();
        by_operator["seller"] = json!(bright);
        let (status, clinic) = api
            .post("/api/v1/listings", &api.operator_token, by_operator)
            .await;
        assert_eq!(status, 201, "{clinic}");

        // Everyone signed in reads and browses, including other organisations' members.
        let (status, read) = api
            .get(&format!("/api/v1/listings/{milk_id}"), &bright_admin)
            .await;
        assert_eq!(status, 200);
        assert_eq!(read, listing);
        let (status, page) = api.get("/api/v1/listings", &fresh_member).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(titles(&page), ["Dental check-up", "Organic whole milk"]);

        // The owner updates: stock to unlimited, price; fields not named stay.
        let (status, updated) = api
            .call(
                Method::PATCH,
                &format!("/api/v1/listings/{milk_id}"),
                &fresh_owner,
                Some(json!({ "stock": null, "price": 139 })),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["kind"], json!({ "type": "product", "stock": null }));
        assert_eq!(updated["price"], 139);
        assert_eq!(updated["title"], "Organic whole milk");

        // Archiving withdraws it from browsing, keeps it readable, and is final for changes.
        let (status, archived) = api
            .post(
                &format!("/api/v1/listings/{milk_id}/archive"),
                &fresh_owner,
                json!({}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), &archived["status"]),
            (200, &json!("archived"))
        );
        let (_, page) = api.get("/api/v1/listings", &fresh_member).await;
        assert_eq!(titles(&page), ["Dental check-up"]);
        let (_, page) = api
            .get("/api/v1/listings?status=archived", &fresh_member)
            .await;
        assert_eq!(titles(&page), ["Organic whole milk"]);
        let (status, problem) = api
            .call(
                Method::PATCH,
                &format!("/api/v1/listings/{milk_id}"),
                &fresh_owner,
                Some(json!({ "price": 1 })),
            )
            .await;
        assert_eq!(status, 409, "{problem}");

        // Every change is in the seller's audit log and event feed; refusals too.
        let (_, events) = api
            .get(&format!("/api/v1/orgs/{fresh}/events"), &fresh_owner)
            .await;
        let types: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["type"].as_str().unwrap())
            .filter(|kind| kind.starts_with("listing."))
            .collect();
        assert_eq!(
            types,
            ["listing.created", "listing.updated", "listing.archived"]
        );
        let (_, audit) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/audit?limit=200"),
                &fresh_owner,
            )
            .await;
        let outcomes: Vec<&str> = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|record| record["action"] == "listing.manage")
            .map(|record| record["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| **o == "denied").count(),
            4,
            "{audit}"
        );
        assert_eq!(
            outcomes.iter().filter(|o| **o == "succeeded").count(),
            3,
            "{audit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_filters_find_listings_and_pages_continue_by_cursor() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let owner = api
            .member_token(&fresh, "ana@freshmart.example", "owner")
            .await;
        for (title, description, category, price) in [
            ("Organic whole milk", "One litre.", "groceries/dairy", 129),
            (
                "Butter",
                "Churned from fresh milk cream.",
                "groceries/dairy",
                299,
            ),
            (
                "Sourdough bread",
                "Baked every morning.",
                "groceries/bakery",
                450,
            ),
            ("Rye bread", "Dense and dark.", "groceries/bakery", 380),
            ("Bread knife", "Serrated steel.", "kitchen/tools", 1999),
        ] {
            let body = json!({
                "kind": { "type": "product", "stock": null },
                "title": title, "description": description, "category": category,
                "price": price, "currency": "EUR",
            });
            let (status, created) = api.post("/api/v1/listings", &owner, body).await;
            assert_eq!(status, 201, "{created}");
        }
        let (status, page) = api.get("/api/v1/listings?q=milk", &owner).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(
            titles(&page),
            ["Organic whole milk", "Butter"],
            "{backend:?}"
        );
        let (_, page) = api
            .get("/api/v1/listings?q=bread&category=groceries", &owner)
            .await;
        let mut found = titles(&page);
        found.sort();
        assert_eq!(found, ["Rye bread", "Sourdough bread"]);
        let (_, page) = api
            .get(
                "/api/v1/listings?q=bread&max_price=400&currency=EUR",
                &owner,
            )
            .await;
        assert_eq!(titles(&page), ["Rye bread"]);
        let (_, page) = api
            .get("/api/v1/listings?q=bread%20-knife%20-rye", &owner)
            .await;
        assert_eq!(titles(&page), ["Sourdough bread"]);
        // Hostile input is words, not syntax, and never a server error.
        for hostile in [
            "%22",
            "NEAR(milk",
            "milk*",
            "%27%3B%20DROP%20TABLE%20listings%3B",
            "title%3Amilk",
        ] {
            let (status, body) = api
                .get(&format!("/api/v1/listings?q={hostile}"), &owner)
                .await;
            assert!(
                status == 200 || (status == 400 && body["field"] == "q"),
                "{hostile}: {status} {body}"
            );
        }

        // Search pages by position, browse by id; both end.
        let mut seen = Vec::new();
        let mut path = "/api/v1/listings?q=bread&limit=2".to_owned();
        loop {
            let (status, page) = api.get(&path, &owner).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(titles(&page).into_iter().map(str::to_owned));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/listings?q=bread&limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        let mut seen = Vec::new();
        let mut path = "/api/v1/listings?limit=2".to_owned();
        loop {
            let (_, page) = api.get(&path, &owner).await;
            seen.extend(titles(&page).into_iter().map(str::to_owned));
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/listings?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(
            seen,
            [
                "Bread knife",
                "Rye bread",
                "Sourdough bread",
                "Butter",
                "Organic whole milk"
            ]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_listings_and_filters_are_refused_naming_the_field() {
    let api = TestApi::start(crate::harness::Backend::Sqlite).await;
    let fresh = api.partner("FreshMart").await;
    let owner = api
        .member_token(&fresh, "ana@freshmart.example", "owner")
        .await;
    let with = |field: &str, value: Value| {
        let mut body = milk();
        body[field] = value;
        body
    };
    for (body, field) in [
        (with("title", json!("  ")), "title"),
        (with("title", json!("x".repeat(201))), "title"),
        (with("description", json!("x".repeat(5001))), "description"),
        (with("category", json!("Groceries/Dairy")), "category"),
        (with("category", json!("groceries//dairy")), "category"),
        (with("price", json!(-1)), "price"),
        (with("currency", json!("euro")), "currency"),
        (with("currency", json!("PTS")), "currency"),
        (
            with("kind", json!({ "type": "service", "duration_minutes": 0 })),
            "duration_minutes",
        ),
        (with("seller", json!(null)), "no-field"),
    ] {
        let (status, problem) = api.post("/api/v1/listings", &owner, body.clone()).await;
        if field == "no-field" {
            assert_eq!(status, 201, "{problem}");
            continue;
        }
        assert_eq!(
            (status.as_u16(), problem["field"].as_str()),
            (400, Some(field)),
            "{body}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().starts_with(field),
            "{problem}"
        );
    }
    // Wrong shapes are 422s.
    let (status, problem) = api
        .post(
            "/api/v1/listings",
            &owner,
            with("kind", json!({ "type": "car" })),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, problem) = api
        .post("/api/v1/listings", &owner, with("colour", json!("red")))
        .await;
    assert_eq!(status, 422, "{problem}");

    for (query, field) in [
        ("kind=car", "kind"),
        ("category=A", "category"),
        ("currency=eu", "currency"),
        ("seller=usr_1", "seller"),
        ("status=gone", "status"),
        ("min_price=5&max_price=4", "min_price"),
        ("q=%22%2A%22", "q"),
        ("q=-milk", "q"),
        ("cursor=nope", "cursor"),
        ("q=milk&cursor=nope", "cursor"),
        ("limit=0", "limit"),
    ] {
        let (status, problem) = api.get(&format!("/api/v1/listings?{query}"), &owner).await;
        assert_eq!(
            (status.as_u16(), problem["field"].as_str()),
            (400, Some(field)),
            "{query}: {problem}"
        );
    }
    let (status, problem) = api.get("/api/v1/listings?q=milk&cursor=5000", &owner).await;
    assert_eq!(
        (status.as_u16(), problem["limit"].as_str()),
        (429, Some("search_depth_max")),
        "{problem}"
    );
    let (status, _) = api
        .get(
            &format!("/api/v1/listings/{}", agora_domain::ListingId::new()),
            &owner,
        )
        .await;
    assert_eq!(status, 404);
    let (status, problem) = api.get("/api/v1/listings/org_1", &owner).await;
    assert_eq!(
        (status.as_u16(), problem["field"].as_str()),
        (400, Some("listing_id"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_open_slots_and_creates_are_idempotent() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let clinic = api.partner("Smile Clinic").await;
        let owner = api
            .member_token(&clinic, "sam@smile.example", "owner")
            .await;
        let customer = api
            .member_token(&api.partner("Someone").await, "c@someone.example", "member")
            .await;

        // The same Idempotency-Key lists once.
        let create = |key: &'static str| {
            api.client
                .post(format!("{}/api/v1/listings", api.url))
                .bearer_auth(&owner)
                .header("idempotency-key", key)
                .json(&checkup())
                .send()
        };
        let first: Value = create("checkup-1").await.unwrap().json().await.unwrap();
        let second: Value = create("checkup-1").await.unwrap().json().await.unwrap();
        assert_eq!(first["id"], second["id"], "{backend:?}");
        let listing = first["id"].as_str().unwrap().to_owned();

        let tomorrow = agora_domain::Timestamp::now().plus_seconds(86_400);
        let (status, slot) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &owner,
                json!({ "starts_at": tomorrow }),
            )
            .await;
        assert_eq!(status, 201, "{slot}");
        assert_eq!(
            slot["ends_at"],
            json!(tomorrow.plus_seconds(30 * 60)),
            "a slot lasts the service's duration by default"
        );
        assert_eq!(slot["booked_by_order"], Value::Null);
        let later = tomorrow.plus_seconds(3600);
        let (status, _) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &owner,
                json!({ "starts_at": later, "ends_at": later.plus_seconds(3600) }),
            )
            .await;
        assert_eq!(status, 201);
        // The same start twice, times out of order, the past, and strangers are refused.
        let (status, _) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &owner,
                json!({ "starts_at": tomorrow }),
            )
            .await;
        assert_eq!(status, 409);
        let (status, problem) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &owner,
                json!({ "starts_at": later, "ends_at": tomorrow }),
            )
            .await;
        assert_eq!(named(status, &problem), (400, Some("ends_at")));
        let (status, problem) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &owner,
                json!({ "starts_at": agora_domain::Timestamp::now().plus_seconds(-60) }),
            )
            .await;
        assert_eq!(named(status, &problem), (400, Some("starts_at")));
        let (status, problem) = api
            .post(
                &format!("/api/v1/listings/{listing}/slots"),
                &customer,
                json!({ "starts_at": later.plus_seconds(3600) }),
            )
            .await;
        assert_eq!(named(status, &problem), (403, Some("no-permit")));

        // Anyone signed in sees the free slots, in start order, page by page.
        let (status, page) = api
            .get(
                &format!("/api/v1/listings/{listing}/slots?limit=1"),
                &customer,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["items"][0]["starts_at"], json!(tomorrow));
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, page) = api
            .get(
                &format!("/api/v1/listings/{listing}/slots?limit=1&cursor={cursor}"),
                &customer,
            )
            .await;
        assert_eq!(page["items"][0]["starts_at"], json!(later));
        assert_eq!(page["next_cursor"], Value::Null);

        // Products have no slots, and services no stock.
        let (_, product) = api.post("/api/v1/listings", &owner, milk()).await;
        let (status, problem) = api
            .post(
                &format!("/api/v1/listings/{}/slots", product["id"].as_str().unwrap()),
                &owner,
                json!({ "starts_at": tomorrow }),
            )
            .await;
        assert_eq!(named(status, &problem), (400, Some("listing_id")));
        let (status, problem) = api
            .call(
                Method::PATCH,
                &format!("/api/v1/listings/{listing}"),
                &owner,
                Some(json!({ "stock": 3 })),
            )
            .await;
        assert_eq!(named(status, &problem), (400, Some("stock")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_market_shows_cards_with_prices_and_the_shop_lists_through_its_form() {
    let api = TestApi::start(crate::harness::Backend::Sqlite).await;
    let fresh = api.partner("FreshMart").await;
    let system = agora_domain::Actor::system();
    let call = agora_app::Call::new(&system, agora_domain::RequestId::new());
    let owner = agora_app::NewMember {
        email: agora_domain::Email::parse("ana@freshmart.example").unwrap(),
        role: agora_domain::Role::Owner,
        display_name: None,
        password: Some(agora_domain::Password::parse("the right password").unwrap()),
    };
    api.app
        .add_member(&call, fresh.parse().unwrap(), owner)
        .await
        .unwrap();
    let signed_in = api
        .app
        .sign_in(
            "ana@freshmart.example",
            "the right password",
            agora_domain::RequestId::new(),
        )
        .await
        .unwrap();
    let cookie = format!("agora_session={}", signed_in.session_secret);
    let get = |path: String| {
        let request = api
            .client
            .get(format!("{}{path}", api.url))
            .header("cookie", &cookie);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let post = |path: &str, form: Vec<(&str, &str)>| {
        let request = api
            .client
            .post(format!("{}{path}", api.url))
            .header("cookie", &cookie)
            .form(&form);
        async move {
            let response = request.send().await.unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_owned());
            (response.status(), location, response.text().await.unwrap())
        }
    };

    // Signed out, the market sends to sign-in.
    let response = api
        .client
        .get(format!("{}/market", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/signin");

    let (status, html) = get("/shop".into()).await;
    assert_eq!(status, 200);
    assert!(html.contains("FreshMart's shop") && html.contains("id=\"create-listing\""));
    assert!(
        html.contains("href=\"/market\"") && html.contains("href=\"/shop\" aria-current=\"page\"")
    );

    let csrf = signed_in.csrf_token.as_str();
    let form = |title: &'static str, price: &'static str, category: &'static str| {
        vec![
            ("csrf_token", csrf),
            ("title", title),
            ("description", "Fresh <b>every</b> day."),
            ("category", category),
            ("price", price),
            ("currency", "EUR"),
            ("kind", "product"),
            ("stock", "12"),
            ("duration_minutes", ""),
        ]
    };
    let (status, location, _) = post(
        "/shop/listings",
        form("Organic whole milk", "1.29", "groceries/dairy"),
    )
    .await;
    assert_eq!((status.as_u16(), location.as_deref()), (303, Some("/shop")));
    let (status, _, _) = post(
        "/shop/listings",
        form("Sourdough bread", "4.5", "groceries/bakery"),
    )
    .await;
    assert_eq!(status, 303);
    // A wrong CSRF token is refused; a wrong field is said on the page, keeping what was typed.
    let mut forged = form("Forged", "1", "groceries");
    forged[0] = ("csrf_token", "not-the-token");
    let (status, _, _) = post("/shop/listings", forged).await;
    assert_eq!(status, 403);
    let (status, _, html) = post("/shop/listings", form("Cheese", "1.999", "groceries")).await;
    assert_eq!(status, 400);
    assert!(
        html.contains("role=\"alert\"") && html.contains("The price"),
        "{html}"
    );
    assert!(html.contains("value=\"Cheese\""), "{html}");

    let (status, html) = get("/market".into()).await;
    assert_eq!(status, 200);
    assert!(html.contains("€1.29") && html.contains("€4.50"), "{html}");
    assert!(html.contains("In stock: 12"));
    assert!(
        html.contains("groceries/dairy</a> <span class=\"hint\">(1)</span>"),
        "{html}"
    );
    assert!(
        html.contains("Fresh &#60;b&#62;every&#60;/b&#62; day.")
            || html.contains("Fresh &lt;b&gt;every&lt;/b&gt; day."),
        "escaped: {html}"
    );
    let (status, html) = get("/market?q=milk".into()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Organic whole milk") && !html.contains("Sourdough bread"),
        "{html}"
    );
    let (_, html) = get("/market?category=groceries%2Fbakery".into()).await;
    assert!(!html.contains("Organic whole milk") && html.contains("Sourdough bread"));
    let (status, html) = get("/market?q=%22".into()).await;
    assert_eq!(status, 400);
    assert!(html.contains("Type at least one word"), "{html}");

    let (_, page) = api
        .get("/api/v1/listings?q=milk", &api.operator_token)
        .await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, html) = get(format!("/market/listings/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Sold by <strong>FreshMart</strong>") && html.contains("€1.29"),
        "{html}"
    );

    let (status, location, _) = post(
        &format!("/shop/listings/{id}/archive"),
        vec![("csrf_token", csrf)],
    )
    .await;
    assert_eq!((status.as_u16(), location.as_deref()), (303, Some("/shop")));
    let (_, html) = get("/market".into()).await;
    assert!(!html.contains("Organic whole milk"));
    let (_, html) = get("/shop".into()).await;
    assert!(html.contains("Organic whole milk") && html.contains("archived"));
}
