//! Withheld groups counted by reason in the report, and the contributor share (dominance) rule on
//! pooled data.

use agora_query::{QueryOutput, SuppressedGroups};

use crate::{Outcome, datasets, engine, protocols, request, rows_of, run};

async fn output(purpose: &str, sql: &str) -> QueryOutput {
    engine()
        .run(&request(purpose, sql), &protocols(), &datasets())
        .await
        .unwrap_or_else(|error| panic!("{sql} runs: {error}"))
}

fn suppressed(
    entity_threshold: u64,
    contributor_count: u64,
    contributor_dominance: u64,
    differencing: u64,
) -> SuppressedGroups {
    SuppressedGroups {
        entity_threshold,
        contributor_count,
        contributor_dominance,
        differencing,
    }
}

#[tokio::test]
async fn the_report_counts_withheld_groups_by_reason() {
    // (purpose, SQL, rows released, groups withheld by reason)
    let cases = [
        (
            "assortment",
            "SELECT region, COUNT(*) FROM sales GROUP BY region ORDER BY region",
            vec!["north|240", "south|120"],
            suppressed(1, 0, 0, 0),
        ),
        (
            "assortment",
            "SELECT store, COUNT(*) FROM sales GROUP BY store ORDER BY store",
            vec!["n1|200", "s1|120"],
            suppressed(2, 0, 0, 0),
        ),
        // A LIMIT above the aggregation does not change what was withheld below it.
        (
            "assortment",
            "SELECT store, COUNT(*) AS n FROM sales GROUP BY store ORDER BY n DESC LIMIT 1",
            vec!["n1|200"],
            suppressed(2, 0, 0, 0),
        ),
        (
            "assortment",
            "SELECT sku, COUNT(*) FROM sales GROUP BY sku",
            vec!["sku-a|364"],
            suppressed(1, 0, 0, 0),
        ),
        // Pooled: lane b has two carriers; lane c's parcels are two thirds k0's.
        (
            "forecasting",
            "SELECT lane, SUM(parcels) FROM shipments GROUP BY lane ORDER BY lane",
            vec!["a|300"],
            suppressed(0, 1, 1, 0),
        ),
        (
            "forecasting",
            "SELECT lane, COUNT(*) FROM shipments GROUP BY lane ORDER BY lane",
            vec!["a|60", "c|60"],
            suppressed(0, 1, 0, 0),
        ),
    ];
    for (purpose, sql, rows, expected) in cases {
        let output = output(purpose, sql).await;
        assert_eq!(rows_of(&output), rows, "{sql}");
        assert_eq!(output.report.groups_suppressed, expected, "{sql}");
        assert_eq!(
            output.report.groups_suppressed.total(),
            expected.total(),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn differencing_is_counted_and_the_report_serializes() {
    let engine = engine();
    let run = |sql: &'static str| {
        let engine = &engine;
        async move {
            engine
                .run(&request("assortment", sql), &protocols(), &datasets())
                .await
                .expect("runs")
        }
    };
    run("SELECT region, SUM(revenue) FROM sales GROUP BY region").await;
    let second =
        run("SELECT region, SUM(revenue) FROM sales WHERE sku <> 'sku-rare' GROUP BY region").await;
    assert_eq!(second.report.groups_suppressed, suppressed(1, 0, 0, 1));
    assert_eq!(second.groups_suppressed_by_differencing, 1);
    let json = serde_json::to_value(&second.report).expect("the report serializes");
    assert_eq!(
        json["groups_suppressed"],
        serde_json::json!({
            "entity_threshold": 1,
            "contributor_count": 0,
            "contributor_dominance": 0,
            "differencing": 1,
        })
    );
    assert_eq!(json["protocols"][0]["name"], "freshmart-sales-for-brands");
    let back: agora_query::QueryReport =
        serde_json::from_value(json).expect("and reads back for the audit");
    assert_eq!(back, second.report);
}

#[tokio::test]
async fn one_dominant_contributor_withholds_the_statistic() {
    let cases = [
        // Sums and averages of parcels: k0 holds 500 of lane c's 750.
        (
            "SELECT lane, SUM(parcels) AS p FROM shipments GROUP BY lane ORDER BY lane",
            vec!["a|300"],
        ),
        (
            "SELECT lane, AVG(parcels) AS p FROM shipments GROUP BY lane ORDER BY lane",
            vec!["a|5.0"],
        ),
        // A row is withheld when any of its statistics is dominated.
        (
            "SELECT lane, COUNT(*) AS n, SUM(parcels) AS p FROM shipments GROUP BY lane ORDER BY lane",
            vec!["a|60|300"],
        ),
        // The share is checked on what the statistic adds up, after the WHERE clause: without
        // k0's large rows lane c has five carriers of 50 parcels each.
        (
            "SELECT lane, SUM(parcels) AS p FROM shipments WHERE parcels < 50 GROUP BY lane ORDER BY lane",
            vec!["a|300", "c|250"],
        ),
        // Expressions over dominated statistics see nothing of them.
        (
            "SELECT lane, SUM(parcels) * 2 AS p FROM shipments GROUP BY lane HAVING SUM(parcels) > 0 ORDER BY lane",
            vec!["a|600"],
        ),
        // No grouping: k0 holds 600 of all 1,150 parcels.
        ("SELECT SUM(parcels) FROM shipments", vec![]),
        // Counting rows is not dominated: each carrier has ten rows per lane.
        (
            "SELECT COUNT(*) FROM shipments WHERE lane <> 'b'",
            vec!["120"],
        ),
    ];
    for (sql, rows) in cases {
        let got = run("forecasting", sql).await;
        let expected = Outcome::Rows(rows.into_iter().map(String::from).collect());
        assert_eq!(got, expected, "{sql}");
    }
}

#[tokio::test]
async fn the_dominance_check_survives_optimization() {
    let prepared = engine()
        .prepare(
            &request(
                "forecasting",
                "SELECT lane, SUM(parcels) FROM shipments WHERE lane <> 'b' GROUP BY lane",
            ),
            &protocols(),
            &datasets(),
        )
        .await
        .expect("allowed");
    let plan = prepared
        .aggregation_plan()
        .expect("an aggregation")
        .display_indent()
        .to_string();
    assert!(plan.contains("__agora_largest_0"), "{plan}");
    assert!(plan.contains("__agora_contributors_"), "{plan}");
    assert!(
        prepared
            .report
            .rules_applied
            .iter()
            .any(|rule| rule.starts_with("contributor_share_percent_max=25 on sum(")),
        "{:?}",
        prepared.report.rules_applied
    );
    // The plan above the aggregation reads released groups only.
    let above = prepared.plan().display_indent().to_string();
    assert!(!above.contains("__agora_scan"), "{above}");
}

#[tokio::test]
async fn grouping_sets_on_pooled_data_are_refused() {
    let got = run(
        "forecasting",
        "SELECT lane, SUM(parcels) FROM shipments GROUP BY ROLLUP(lane)",
    )
    .await;
    assert_eq!(got, Outcome::Refused("grouping_sets"));
}
