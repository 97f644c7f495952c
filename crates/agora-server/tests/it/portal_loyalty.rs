//! The portal's points and settlement pages over HTTP with cookies, on each backend: the
//! operator grants a customer points, the customer redeems some at a partner, a partner records
//! what it owes another, and the operator closes the window into a report that sums to zero.

use agora_app::{Call, GrantPoints, NewPointsRule, PointsEarning, PointsSettings};
use agora_domain::ledger::Currency;
use agora_domain::{OrgId, RequestId, Role};

use crate::harness::{TestApi, backends};
use crate::portal_market::{Visitor, add_member};

/// The text of the element with `id`, up to its first tag.
fn text_of<'h>(html: &'h str, id: &str) -> &'h str {
    html.split(&format!("id=\"{id}\">"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("the page has #{id}: {html}"))
}

/// The sums of a settlement report's positions, per currency: `(code, total)`.
fn totals_in(html: &str) -> Vec<(String, String)> {
    html.split("class=\"amount total\" data-currency=\"")
        .skip(1)
        .map(|rest| {
            let (code, rest) = rest.split_once("\">").expect("a total cell");
            let total = rest.split('<').next().expect("a total's text");
            (code.to_owned(), total.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_redeems_points_and_the_operator_settles_partners_from_the_portal() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let operator = api
            .app
            .authenticate_token(&api.operator_token)
            .await
            .unwrap();
        let operator_org = operator.acting.unwrap().org_id;
        let as_operator = || Call::new(&operator, RequestId::new());
        let bakery: OrgId = api.partner("Bakery").await.parse().unwrap();
        let books: OrgId = api.partner("Books").await.parse().unwrap();
        add_member(&api, bakery, "ana@bakery.example", Role::Owner).await;
        add_member(&api, books, "ben@books.example", Role::Owner).await;
        add_member(&api, operator_org, "ops@agora.localhost", Role::Admin).await;
        let ana = Visitor::sign_in(&api, "ana@bakery.example", "the right password").await;
        let ben = Visitor::sign_in(&api, "ben@books.example", "the right password").await;
        let ops = Visitor::sign_in(&api, "ops@agora.localhost", "the right password").await;
        let cleo = Visitor::sign_up(&api, "Cleo", "cleo@customer.example").await;
        let cleo_id = cleo.actor().await.user_id.unwrap();

        // The operator funds 100 points per review, worth a cent each to the partner they are spent at.
        api.app
            .set_points_rule(
                &as_operator(),
                NewPointsRule {
                    id: None,
                    earning: PointsEarning::PerAction,
                    points_per_major_unit: None,
                    action: Some("review_written".to_owned()),
                    points: Some(100),
                    funder: None,
                    expiry_days: 30,
                },
            )
            .await
            .unwrap();
        api.app
            .set_points_settings(
                &as_operator(),
                PointsSettings {
                    currency: Currency::parse("EUR").unwrap(),
                    minor_per_point: 1,
                },
            )
            .await
            .unwrap();
        api.app
            .grant_points(
                &as_operator(),
                operator_org,
                GrantPoints {
                    customer: cleo_id,
                    action: "review_written".to_owned(),
                    reference: Some("review-1".to_owned()),
                },
            )
            .await
            .unwrap();

        let points = cleo.get("/points").await;
        assert_eq!(points.status, 200, "{}", points.html);
        assert_eq!(text_of(&points.html, "points-spendable"), "100");
        assert!(
            points
                .html
                .contains("href=\"/points\" aria-current=\"page\"")
                && points.html.contains("the operator")
                && points.html.contains(&format!("value=\"{books}\">Books<")),
            "{}",
            points.html
        );
        let reference = points
            .html
            .split("name=\"reference\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let books_id = books.to_string();

        // More than the balance is refused in the page's alert, and nothing is spent.
        let refused = cleo
            .post(
                "/points/redeem",
                &[
                    ("points", "500"),
                    ("at_partner", &books_id),
                    ("reference", &reference),
                ],
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.html);
        assert!(
            refused.html.contains("role=\"alert\"")
                && refused.html.contains("100 spendable points"),
            "{}",
            refused.html
        );
        let redeem = [
            ("points", "30"),
            ("at_partner", books_id.as_str()),
            ("reference", reference.as_str()),
        ];
        let redeemed = cleo.post("/points/redeem", &redeem).await;
        assert_eq!(
            (redeemed.status.as_u16(), redeemed.location.as_deref()),
            (303, Some("/points?redeemed=30")),
            "{}",
            redeemed.html
        );
        // The same form posted twice redeems once.
        assert_eq!(cleo.post("/points/redeem", &redeem).await.status, 303);
        let points = cleo.get("/points?redeemed=30").await;
        assert_eq!(text_of(&points.html, "points-spendable"), "70");
        assert!(
            points.html.contains("Redeemed 30 points."),
            "{}",
            points.html
        );

        // The bakery owes the bookshop 7.00 EUR; its page shows its own position only.
        let settlement = ana.get("/shop/settlement").await;
        assert_eq!(settlement.status, 200, "{}", settlement.html);
        assert!(
            settlement
                .html
                .contains("href=\"/shop/settlement\" aria-current=\"page\"")
                && settlement.html.contains("id=\"record-obligation\""),
            "{}",
            settlement.html
        );
        let obligation = [
            ("creditor", books_id.as_str()),
            ("amount", "7.00"),
            ("currency", "EUR"),
            ("reference", "inv-1"),
        ];
        let recorded = ana.post("/shop/settlement/obligations", &obligation).await;
        assert_eq!(
            (recorded.status.as_u16(), recorded.location.as_deref()),
            (303, Some("/shop/settlement?recorded=inv-1")),
            "{}",
            recorded.html
        );
        let settlement = ana.get("/shop/settlement?recorded=inv-1").await;
        assert!(
            settlement.html.contains("Recorded obligation inv-1")
                && settlement.html.contains("-7.00 EUR")
                && !settlement.html.contains("7.30 EUR"),
            "{}",
            settlement.html
        );

        // A partner is refused the operator's pages.
        assert_eq!(ana.get("/operator/settlement").await.status, 403);
        assert_eq!(ana.get("/operator/points").await.status, 403);
        assert_eq!(
            ana.post("/operator/settlement/close", &[]).await.status,
            403
        );

        // With a cap of 0, the bakery may owe nothing more: the refusal names the cap.
        let bakery_id = bakery.to_string();
        let capped = ops
            .post(
                "/operator/settlement/caps",
                &[("partner", &bakery_id), ("currency", "EUR"), ("cap", "0")],
            )
            .await;
        assert_eq!(capped.status, 303, "{}", capped.html);
        let over = ana
            .post(
                "/shop/settlement/obligations",
                &[
                    ("creditor", &books_id),
                    ("amount", "1.00"),
                    ("currency", "EUR"),
                    ("reference", "inv-2"),
                ],
            )
            .await;
        assert_eq!(over.status, 422, "{}", over.html);
        assert!(
            over.html.contains("role=\"alert\"") && over.html.contains("cap"),
            "{}",
            over.html
        );

        // The operator sees every position of the open window, and they sum to zero.
        let admin = ops.get("/operator/settlement?capped=1").await;
        assert_eq!(admin.status, 200, "{}", admin.html);
        assert!(
            admin.html.contains("Bakery")
                && admin.html.contains("-7.00 EUR")
                && admin.html.contains("7.30 EUR")
                && admin.html.contains("-0.30 EUR")
                && admin.html.contains("<td class=\"amount\">0.00 EUR</td>"),
            "{}",
            admin.html
        );
        assert_eq!(
            totals_in(&admin.html),
            [("EUR".to_owned(), "0.00 EUR".to_owned())]
        );
        let closed = ops.post("/operator/settlement/close", &[]).await;
        assert_eq!(closed.status, 303, "{}", closed.html);
        let report_path = closed.location.unwrap();
        assert!(
            report_path.starts_with("/operator/settlement?window=stw_"),
            "{report_path}"
        );
        let report = ops.get(&report_path).await;
        assert!(
            report.html.contains("The window is closed")
                && report.html.contains(": closed</h2>")
                && report.html.contains("2 obligation(s)")
                && report.html.contains("7.30 EUR"),
            "{}",
            report.html
        );
        assert_eq!(
            totals_in(&report.html),
            [("EUR".to_owned(), "0.00 EUR".to_owned())]
        );
        let after = ops.get("/operator/settlement").await;
        assert!(after.html.contains("No open window"), "{}", after.html);

        // The bookshop reads the settled window: what it was owed, and nothing of the others.
        let theirs = ben.get("/shop/settlement").await;
        assert!(
            theirs.html.contains("7.30 EUR")
                && !theirs.html.contains("-7.00 EUR")
                && theirs.html.contains("No window is open"),
            "{}",
            theirs.html
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_adds_points_rules_and_sets_the_rate_from_the_portal() {
    let api = TestApi::start(crate::harness::Backend::Sqlite).await;
    let operator_org = api
        .app
        .authenticate_token(&api.operator_token)
        .await
        .unwrap()
        .acting
        .unwrap()
        .org_id;
    let bakery = api.partner("Bakery").await;
    add_member(&api, operator_org, "ops@agora.localhost", Role::Admin).await;
    let ops = Visitor::sign_in(&api, "ops@agora.localhost", "the right password").await;
    let page = ops.get("/operator/points").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html
            .contains("href=\"/operator/points\" aria-current=\"page\"")
            && page.html.contains("No rules")
            && page.html.contains("Not set"),
        "{}",
        page.html
    );

    let added = ops
        .post(
            "/operator/points/rules",
            &[
                ("earning", "per_action"),
                ("action", "review_written"),
                ("points", "30"),
                ("funder", &bakery),
                ("expiry_days", "10"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.html);
    let rate = ops
        .post(
            "/operator/points/rate",
            &[("currency", "EUR"), ("minor_per_point", "2")],
        )
        .await;
    assert_eq!(rate.status, 303, "{}", rate.html);
    let page = ops.get("/operator/points").await;
    assert!(
        page.html.contains("30 points for review_written")
            && page.html.contains("<td>Bakery</td>")
            && page.html.contains("one point is worth 0.02 EUR"),
        "{}",
        page.html
    );

    // A rule without its points is refused in the alert, and the form keeps what was typed.
    let refused = ops
        .post(
            "/operator/points/rules",
            &[
                ("earning", "per_action"),
                ("action", "idea_shipped"),
                ("expiry_days", "10"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.html.contains("role=\"alert\"") && refused.html.contains("value=\"idea_shipped\""),
        "{}",
        refused.html
    );

    // A customer reads no operator's page.
    let cleo = Visitor::sign_up(&api, "Cleo", "cleo@customer.example").await;
    assert_eq!(cleo.get("/operator/points").await.status, 403);
    assert_eq!(cleo.get("/operator/settlement").await.status, 403);
    assert_eq!(cleo.get("/shop/settlement").await.status, 403);
}
