//! The portal's data commons over HTTP with cookies, on each backend: a provider sees its
//! dataset's columns, classes, versions and rows, proposes a protocol from its page, both parties
//! approve it through the form that carries the content hash shown (a stale hash and a forged
//! form are refused), an analyst runs a governed query in the console and reads a refusal's rule,
//! the provider sees both in its query log, a party pauses and resumes, and a revision's diff
//! shows what changed. Outsiders and customers see none of it.

use std::fmt::Write as _;

use agora_app::{Call, parse_document};
use agora_domain::dataset::{ColumnClass, ColumnClassing, UploadFormat};
use agora_domain::{Actor, OrgId, RequestId, Role};
use reqwest::StatusCode;

use crate::harness::{TestApi, backends};
use crate::portal_market::{Visitor, add_member};

const PASSWORD: &str = "the right password";

/// 60 customers in the north, 55 in the south, 3 in the east; two purchases each.
fn sales_csv() -> String {
    let mut csv = String::from("store,region,units,revenue,customer_id,day\n");
    let mut customer = 0;
    for (region, customers) in [("north", 60), ("south", 55), ("east", 3)] {
        for i in 0..customers {
            customer += 1;
            let store = format!("{region}-{}", i % 2);
            for day in ["2026-01-05", "2026-02-10"] {
                writeln!(csv, "{store},{region},2,3.5,c{customer},{day}").unwrap();
            }
        }
    }
    csv
}

fn protocol_toml(provider: OrgId, consumer: OrgId, version: u32, min_entities: u32) -> String {
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
min_entities_per_row = {min_entities}

[quotas]
queries_per_day_max = 100

[validity]
not_before = "2026-01-01T00:00:00Z"
not_after = "2099-01-01T00:00:00Z"
"#
    )
}

/// The text of the element with `id`, up to its first tag.
fn text_of<'h>(html: &'h str, id: &str) -> &'h str {
    html.split(&format!("id=\"{id}\">"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("the page has #{id}: {html}"))
}

/// The value of the hidden input `name` in the form with `id`.
fn hidden_in(html: &str, form_id: &str, name: &str) -> String {
    let form = html
        .split(&format!("<form id=\"{form_id}\""))
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .unwrap_or_else(|| panic!("the page has form#{form_id}: {html}"));
    form.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("form#{form_id} carries {name}"))
        .to_owned()
}

/// The page's text with askama's escapes undone, to look for quoted text.
fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn has_form(html: &str, form_id: &str) -> bool {
    html.contains(&format!("<form id=\"{form_id}\""))
}

/// Uploads and classes the provider's sales, as its owner.
async fn upload_sales(api: &TestApi, owner: &Actor, org_id: OrgId) {
    let call = Call::new(owner, RequestId::new());
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(sales_csv().into_bytes())]);
    api.app
        .upload_dataset(&call, org_id, "sales", UploadFormat::Csv, body)
        .await
        .unwrap();
    let classes = [
        ("store", ColumnClass::Dimension),
        ("region", ColumnClass::Dimension),
        ("units", ColumnClass::Metric),
        ("revenue", ColumnClass::Metric),
        ("customer_id", ColumnClass::EntityId),
        ("day", ColumnClass::Timestamp),
    ]
    .into_iter()
    .map(|(column, class)| ColumnClassing {
        column: column.to_owned(),
        class,
    })
    .collect();
    api.app
        .classify_dataset(&call, org_id, "sales", classes)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_approve_in_the_portal_and_an_analyst_queries_and_reads_a_refusal() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh: OrgId = api.partner("FreshMart").await.parse().unwrap();
        let brand: OrgId = api.partner("Brightbrew").await.parse().unwrap();
        let nosy: OrgId = api.partner("Nosy Corp").await.parse().unwrap();
        add_member(&api, fresh, "ana@fresh.example", Role::Owner).await;
        add_member(&api, brand, "bo@brand.example", Role::Owner).await;
        add_member(&api, brand, "al@brand.example", Role::Analyst).await;
        add_member(&api, nosy, "no@nosy.example", Role::Owner).await;
        let ana = Visitor::sign_in(&api, "ana@fresh.example", PASSWORD).await;
        let bo = Visitor::sign_in(&api, "bo@brand.example", PASSWORD).await;
        let al = Visitor::sign_in(&api, "al@brand.example", PASSWORD).await;
        let no = Visitor::sign_in(&api, "no@nosy.example", PASSWORD).await;
        let customer = Visitor::sign_up(&api, "Cleo", "cleo@customer.example").await;
        let ana_actor = ana.actor().await;
        upload_sales(&api, &ana_actor, fresh).await;

        // The provider's datasets: the list, then columns with their classes, versions, rows.
        let home = ana.get("/").await;
        for link in ["/data", "/protocols", "/query", "/queries"] {
            assert!(
                home.html.contains(&format!("href=\"{link}\"")),
                "the nav links {link}"
            );
        }
        let list = ana.get("/data").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.html);
        assert!(list.html.contains("href=\"/data/sales\""), "{}", list.html);
        let dataset = ana.get("/data/sales").await;
        assert_eq!(dataset.status, StatusCode::OK, "{}", dataset.html);
        assert!(
            dataset.html.contains(
                "<tr data-column=\"customer_id\"><td><code>customer_id</code></td><td>string</td><td class=\"class\">entity_id</td>"
            ),
            "{}",
            dataset.html
        );
        assert!(dataset.html.contains("<td>csv</td>"), "{}", dataset.html);
        assert!(
            dataset.html.contains("<td>north-0</td>"),
            "{}",
            dataset.html
        );
        assert_eq!(ana.get("/data/nothing_here").await.status, 404);
        // Nobody outside the organisation reads its datasets, nor does a customer.
        assert_eq!(no.get("/data/sales").await.status, 404);
        assert_eq!(customer.get("/data").await.status, 403);
        assert!(!customer.get("/").await.html.contains("href=\"/query\""));

        // The provider drafts (through the application), then proposes from the page.
        let drafted = api
            .app
            .create_protocol(
                &Call::new(&ana_actor, RequestId::new()),
                fresh,
                parse_document(&protocol_toml(fresh, brand, 1, 50), None).unwrap(),
            )
            .await
            .unwrap();
        let path = format!("/protocols/{}", drafted.id);
        let protocols = ana.get("/protocols").await;
        assert!(protocols.html.contains(&path), "{}", protocols.html);
        let draft = ana.get(&path).await;
        assert_eq!(text_of(&draft.html, "protocol-state"), "draft");
        assert!(has_form(&draft.html, "propose") && has_form(&draft.html, "revoke"));
        assert!(
            !has_form(&draft.html, "approve"),
            "a draft is not approved yet"
        );
        let proposed = ana.post(&format!("{path}/propose"), &[]).await;
        assert_eq!(proposed.status, 303, "{}", proposed.html);
        assert_eq!(
            proposed.location.as_deref(),
            Some(format!("{path}?done=propose").as_str())
        );

        // The consumer reviews the document and approves the hash shown.
        let review = bo.get(&path).await;
        assert_eq!(review.status, StatusCode::OK, "{}", review.html);
        assert_eq!(text_of(&review.html, "protocol-state"), "proposed");
        let hash = hidden_in(&review.html, "approve", "content_hash");
        assert_eq!(hash, drafted.latest.content_hash);
        assert_eq!(text_of(&review.html, "content-hash"), hash);
        assert!(
            unescaped(&review.html).contains("\"min_entities_per_row\": 50"),
            "the page shows the document: {}",
            review.html
        );
        assert!(
            !has_form(&review.html, "propose") && !has_form(&review.html, "revoke"),
            "proposing and revoking are the provider's"
        );
        let stale = bo
            .post(
                &format!("{path}/approve"),
                &[("content_hash", "0".repeat(64).as_str())],
            )
            .await;
        assert_eq!(stale.status, 409, "{}", stale.html);
        assert!(
            text_of(&stale.html, "step-error").contains("review the current version"),
            "{}",
            stale.html
        );
        let forged = api
            .client
            .post(format!("{}{path}/approve", api.url))
            .header(
                "cookie",
                format!(
                    "agora_session={}",
                    session_of(&api, "bo@brand.example").await
                ),
            )
            .form(&[("csrf_token", "forged"), ("content_hash", hash.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "a form without the session's token");
        let approved = bo
            .post(&format!("{path}/approve"), &[("content_hash", &hash)])
            .await;
        assert_eq!(approved.status, 303, "{}", approved.html);
        let half = bo.get(&format!("{path}?done=approve")).await;
        assert_eq!(text_of(&half.html, "awaiting"), "FreshMart");
        assert_eq!(text_of(&half.html, "approvals"), "Brightbrew");
        assert!(!has_form(&half.html, "approve"), "approved once");
        let approved = ana
            .post(&format!("{path}/approve"), &[("content_hash", &hash)])
            .await;
        assert_eq!(approved.status, 303, "{}", approved.html);
        let active = ana.get(&format!("{path}?done=approve")).await;
        assert_eq!(text_of(&active.html, "protocol-state"), "active");
        assert_eq!(text_of(&active.html, "protocol-in-force"), "v1");
        assert!(
            active.html.contains("version 1 is in force"),
            "{}",
            active.html
        );

        // An outsider reads nothing of it; an analyst reads it but takes no party's step.
        assert_eq!(no.get(&path).await.status, 403);
        let analyst_view = al.get(&path).await;
        assert_eq!(analyst_view.status, StatusCode::OK, "{}", analyst_view.html);
        assert!(!has_form(&analyst_view.html, "pause"));

        // The console: what is shared, an answer, then a refusal naming its rule.
        let console = al.get("/query").await;
        assert_eq!(console.status, StatusCode::OK, "{}", console.html);
        assert!(console.html.contains("<option value=\"assortment\">"));
        assert!(
            unescaped(&console.html).contains("FreshMart's, under freshmart-sales-for-brands"),
            "{}",
            console.html
        );
        let sql = "SELECT region, SUM(units) AS units FROM sales GROUP BY region ORDER BY region";
        let answer = al
            .post("/query", &[("purpose", "assortment"), ("sql", sql)])
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.html);
        assert!(
            answer
                .html
                .contains("<tr><td>north</td><td>240</td></tr><tr><td>south</td><td>220</td></tr>"),
            "the east's 3 customers are suppressed: {}",
            answer.html
        );
        assert!(
            answer.html.contains("id=\"rules-applied\""),
            "{}",
            answer.html
        );
        assert!(
            answer.html.contains(&format!(
                "href=\"{path}\">freshmart-sales-for-brands</a> v1"
            )),
            "{}",
            answer.html
        );
        let refused_sql = "SELECT customer_id FROM sales";
        let refusal = al
            .post("/query", &[("purpose", "assortment"), ("sql", refused_sql)])
            .await;
        assert_eq!(refusal.status, 422, "{}", refusal.html);
        // Rows of a dataset shared for aggregates only may not leave: the rule, and where.
        let rule = text_of(&refusal.html, "refusal-rule");
        assert_eq!(rule, "row_level_output", "{}", refusal.html);
        assert_eq!(text_of(&refusal.html, "refusal-expression"), "sales");
        assert!(!text_of(&refusal.html, "refusal-message").is_empty());
        assert!(
            refusal.html.contains(&format!(">{refused_sql}</textarea>")),
            "the console keeps the SQL to fix: {}",
            refusal.html
        );
        let unknown = al
            .post("/query", &[("purpose", "marketing"), ("sql", sql)])
            .await;
        assert_eq!(unknown.status, 400, "{}", unknown.html);
        assert!(
            unknown.html.contains("id=\"query-error\""),
            "{}",
            unknown.html
        );

        // The provider's view of queries against its data, and the consumer's own log.
        let provider_log = ana.get("/queries?scope=against_our_data").await;
        assert_eq!(provider_log.status, StatusCode::OK, "{}", provider_log.html);
        assert!(
            provider_log.html.contains(">answered</td>"),
            "{}",
            provider_log.html
        );
        assert!(
            provider_log.html.contains(">refused</td>"),
            "{}",
            provider_log.html
        );
        assert!(
            provider_log.html.contains(&format!("<code>{rule}</code>")),
            "{}",
            provider_log.html
        );
        assert!(provider_log.html.contains("<td>Brightbrew</td>"));
        let own_log = ana.get("/queries").await;
        assert!(own_log.html.contains("No queries yet."), "{}", own_log.html);
        let consumer_log = al.get("/queries?scope=ran").await;
        assert!(
            consumer_log.html.contains(refused_sql),
            "{}",
            consumer_log.html
        );
        assert_eq!(no.get("/queries?scope=against_our_data").await.status, 200);
        assert!(
            no.get("/queries?scope=against_our_data")
                .await
                .html
                .contains("No queries yet.")
        );

        // A party pauses and resumes; the provider cannot lift the consumer's pause.
        let paused = bo.post(&format!("{path}/pause"), &[]).await;
        assert_eq!(paused.status, 303, "{}", paused.html);
        let after_pause = bo.get(&path).await;
        assert_eq!(text_of(&after_pause.html, "protocol-state"), "paused");
        assert!(has_form(&after_pause.html, "resume"));
        let not_ours = ana.post(&format!("{path}/resume"), &[]).await;
        assert_eq!(not_ours.status, 403, "{}", not_ours.html);
        assert!(text_of(&not_ours.html, "step-error").starts_with("Could not resume"));
        let resumed = bo.post(&format!("{path}/resume"), &[]).await;
        assert_eq!(resumed.status, 303, "{}", resumed.html);
        assert_eq!(
            text_of(&bo.get(&path).await.html, "protocol-state"),
            "active"
        );

        // A revision: the page shows what changed, coloured by line.
        api.app
            .revise_protocol(
                &Call::new(&ana_actor, RequestId::new()),
                drafted.id,
                parse_document(&protocol_toml(fresh, brand, 2, 60), None).unwrap(),
            )
            .await
            .unwrap();
        let revised = bo.get(&path).await;
        assert_eq!(text_of(&revised.html, "protocol-state"), "draft");
        assert_eq!(
            text_of(&revised.html, "protocol-in-force"),
            "v1",
            "v1 stays in force"
        );
        assert!(
            unescaped(&revised.html)
                .contains("<span class=\"diff-line diff-del\">-     \"min_entities_per_row\": 50"),
            "{}",
            revised.html
        );
        assert!(
            unescaped(&revised.html)
                .contains("<span class=\"diff-line diff-add\">+     \"min_entities_per_row\": 60"),
            "{}",
            revised.html
        );
        assert!(has_form(&revised.html, "pause"), "v1 can still be paused");
        let missing = bo.get(&format!("{path}?from=1&to=9")).await;
        assert_eq!(missing.status, 404, "{}", missing.html);
        assert!(text_of(&missing.html, "step-error").contains("version 9"));
    }
}

/// A new session of `email`'s, to post a form that lacks the session's CSRF token.
async fn session_of(api: &TestApi, email: &str) -> String {
    api.app
        .sign_in(email, PASSWORD, RequestId::new())
        .await
        .unwrap()
        .session_secret
}
