//! Allowed queries: correct aggregates with suppressed groups, checked against the same
//! aggregate written by hand on the raw tables; own data with full SQL.

use crate::{Outcome, reference, request, run};

/// (purpose, governed SQL, hand-written SQL on the raw data with the thresholds written out).
fn cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "assortment",
            "SELECT region, COUNT(*) AS n, SUM(revenue) AS r, AVG(units) AS u FROM sales GROUP BY region ORDER BY region",
            "SELECT region, COUNT(*) AS n, SUM(revenue) AS r, AVG(units) AS u FROM sales \
             WHERE day <= TIMESTAMP '2025-05-25T00:00:00' GROUP BY region \
             HAVING COUNT(DISTINCT customer_id) >= 50 ORDER BY region",
        ),
        (
            "forecasting",
            "SELECT store, COUNT(DISTINCT customer_id) AS customers FROM sales GROUP BY store ORDER BY store",
            "SELECT store, COUNT(DISTINCT customer_id) AS customers FROM sales \
             WHERE day <= TIMESTAMP '2025-05-25T00:00:00' GROUP BY store \
             HAVING COUNT(DISTINCT customer_id) >= 50 ORDER BY store",
        ),
        (
            "assortment",
            "SELECT s.region, SUM(s.revenue) / SUM(s.units) AS price FROM sales s WHERE s.units >= 2 \
             GROUP BY s.region HAVING SUM(s.units) > 10 ORDER BY price DESC LIMIT 5",
            "SELECT region, SUM(revenue) / SUM(units) AS price FROM sales \
             WHERE day <= TIMESTAMP '2025-05-25T00:00:00' AND units >= 2 GROUP BY region \
             HAVING SUM(units) > 10 AND COUNT(DISTINCT customer_id) >= 50 ORDER BY price DESC LIMIT 5",
        ),
        (
            "overlap",
            "SELECT m.segment, COUNT(*) AS n, SUM(s.revenue) AS r FROM sales s \
             JOIN loyalty_members m ON s.loyalty_card = m.card GROUP BY m.segment ORDER BY m.segment",
            "SELECT m.segment, COUNT(*) AS n, SUM(s.revenue) AS r FROM sales s \
             JOIN loyalty_members m ON s.loyalty_card = m.card \
             WHERE s.day <= TIMESTAMP '2025-05-25T00:00:00' GROUP BY m.segment \
             HAVING COUNT(DISTINCT s.customer_id) >= 50 ORDER BY m.segment",
        ),
        (
            "assortment",
            "SELECT DISTINCT region FROM sales ORDER BY region",
            "SELECT region FROM sales WHERE day <= TIMESTAMP '2025-05-25T00:00:00' GROUP BY region \
             HAVING COUNT(DISTINCT customer_id) >= 50 ORDER BY region",
        ),
        (
            "forecasting",
            "SELECT lane, SUM(parcels) AS parcels FROM shipments GROUP BY lane ORDER BY lane",
            // Five carriers at least, and none over 25% of the lane's parcels.
            "WITH g AS (SELECT lane, SUM(parcels) AS parcels, COUNT(DISTINCT carrier) AS carriers \
               FROM shipments GROUP BY lane), \
             p AS (SELECT lane, carrier, SUM(ABS(CAST(parcels AS DOUBLE))) AS part \
               FROM shipments GROUP BY lane, carrier), \
             d AS (SELECT lane, SUM(part) AS total, MAX(part) AS largest FROM p GROUP BY lane) \
             SELECT g.lane, g.parcels FROM g JOIN d ON g.lane = d.lane \
             WHERE g.carriers >= 5 AND d.largest * 100 <= 25 * d.total ORDER BY g.lane",
        ),
    ]
}

#[tokio::test]
async fn governed_aggregates_equal_the_hand_written_equivalent() {
    for (purpose, governed, hand_written) in cases() {
        let expected = reference(hand_written).await;
        assert!(
            !expected.is_empty(),
            "the reference returns rows: {hand_written}"
        );
        let got = run(purpose, governed).await;
        assert_eq!(got, Outcome::Rows(expected), "{governed}");
    }
}

#[tokio::test]
async fn small_groups_are_suppressed_and_recent_rows_hidden() {
    let got = run(
        "assortment",
        "SELECT region, COUNT(*) FROM sales GROUP BY region ORDER BY region",
    )
    .await;
    // tiny (3 customers) is suppressed; the recent rows (one per customer) are not counted.
    assert_eq!(
        got,
        Outcome::Rows(vec!["north|240".into(), "south|120".into()])
    );
    // Pooled: lane b has two carriers, under the minimum of five.
    let got = run(
        "forecasting",
        "SELECT lane, COUNT(*) FROM shipments GROUP BY lane ORDER BY lane",
    )
    .await;
    // Lane c's row counts are evenly shared: its COUNT is released.
    assert_eq!(got, Outcome::Rows(vec!["a|60".into(), "c|60".into()]));
}

#[tokio::test]
async fn own_data_gets_full_sql() {
    let got = run(
        "assortment",
        "SELECT card, segment, ROW_NUMBER() OVER (ORDER BY card) AS rn FROM loyalty_members \
         WHERE card IN ('card1', 'card2') ORDER BY card",
    )
    .await;
    assert_eq!(
        got,
        Outcome::Rows(vec!["card1|gold|1".into(), "card2|gold|2".into()])
    );
    let got = run("assortment", "SELECT MAX(n), MIN(n) FROM numbers").await;
    assert_eq!(got, Outcome::Rows(vec!["2999|0".into()]));
}

#[tokio::test]
async fn the_report_names_protocols_and_rules() {
    let engine = crate::engine();
    let prepared = engine
        .prepare(
            &request(
                "assortment",
                "SELECT region, SUM(revenue) FROM sales GROUP BY region",
            ),
            &crate::protocols(),
            &crate::datasets(),
        )
        .await
        .expect("allowed");
    let report = &prepared.report;
    assert_eq!(report.datasets, vec!["sales".to_string()]);
    assert_eq!(report.protocols.len(), 1);
    assert_eq!(report.protocols[0].name, "freshmart-sales-for-brands");
    assert_eq!(
        report.protocols[0].hash,
        crate::sales_protocol().content_hash()
    );
    assert!(
        report
            .rules_applied
            .iter()
            .any(|rule| rule.starts_with("entities_") && rule.ends_with(">=50")),
        "{:?}",
        report.rules_applied
    );
    assert!(
        report
            .rules_applied
            .iter()
            .any(|rule| rule.starts_with("min_data_age_days=7"))
    );
    assert!(!report.own_data_only);
}

#[tokio::test]
async fn a_refusal_names_the_rule_and_the_expression() {
    let engine = crate::engine();
    let error = engine
        .run(
            &request(
                "assortment",
                "SELECT region, MAX(revenue) FROM sales GROUP BY region",
            ),
            &crate::protocols(),
            &crate::datasets(),
        )
        .await
        .expect_err("MAX is not allowed");
    let refusal = error.refusal().expect("a refusal");
    assert_eq!(refusal.rule, "aggregate_function");
    assert!(
        refusal.expression.contains("max(sales.revenue)"),
        "{refusal:?}"
    );
    assert!(refusal.message.contains("MAX"), "{refusal:?}");
}
