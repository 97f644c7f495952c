//! Several active protocols sharing one dataset with the same consumer for the same purpose:
//! the strictest of each rule applies, and every protocol version is reported.

use std::collections::BTreeSet;

use agora_query::{AggregateName, AnalysisType, Protocol, QueryOutput, strictest};

use crate::{Outcome, datasets, engine, outcome, overlap_protocol, request, sales_protocol};

/// A second agreement on the same sales data, stricter on some rules and looser on others.
fn second_protocol() -> Protocol {
    let mut protocol = sales_protocol();
    protocol.name = "freshmart-sales-panel".into();
    protocol.version = 3;
    protocol.purposes = vec!["assortment".into()];
    // Stricter: 100 entities, 30 days; looser: 20 contributors is moot, MAX allowed, but no AVG.
    protocol.output.min_entities_per_row = Some(100);
    protocol.output.min_data_age_days = Some(30);
    protocol.output.allowed_aggregates = Some(BTreeSet::from([
        AggregateName::Count,
        AggregateName::CountDistinct,
        AggregateName::Sum,
        AggregateName::Max,
    ]));
    // Hides the SKU.
    for column in &mut protocol.datasets[0].columns {
        if column.name == "sku" {
            column.allowed = false;
        }
    }
    protocol
}

async fn run_under(protocols: &[Protocol], purpose: &str, sql: &str) -> Outcome {
    outcome(
        engine()
            .run(&request(purpose, sql), protocols, &datasets())
            .await,
    )
}

async fn output_under(protocols: &[Protocol], sql: &str) -> QueryOutput {
    engine()
        .run(&request("assortment", sql), protocols, &datasets())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

#[tokio::test]
async fn the_strictest_of_each_rule_applies() {
    let both = [sales_protocol(), second_protocol()];
    let cases = [
        // 100 entities: south (60) is withheld now, north (120) is not.
        (
            "SELECT region, COUNT(*) FROM sales GROUP BY region ORDER BY region",
            Outcome::Rows(vec!["north|240".into()]),
        ),
        // Aggregates: only those both allow. MAX (first forbids) and AVG (second forbids) are out.
        (
            "SELECT region, MAX(revenue) FROM sales GROUP BY region",
            Outcome::Refused("aggregate_function"),
        ),
        (
            "SELECT region, AVG(revenue) FROM sales GROUP BY region",
            Outcome::Refused("aggregate_function"),
        ),
        // Columns: visible only if every protocol shows them.
        (
            "SELECT sku, COUNT(*) FROM sales GROUP BY sku",
            Outcome::Invalid("sql".into()),
        ),
        (
            "SELECT region, SUM(units) FROM sales GROUP BY region ORDER BY region",
            Outcome::Rows(vec!["north|480".into()]),
        ),
    ];
    for (sql, expected) in cases {
        assert_eq!(run_under(&both, "assortment", sql).await, expected, "{sql}");
        // Listing them the other way round changes nothing.
        let reversed = [second_protocol(), sales_protocol()];
        assert_eq!(
            run_under(&reversed, "assortment", sql).await,
            expected,
            "{sql}"
        );
    }
    // Each protocol alone is looser.
    assert_eq!(
        run_under(
            &[sales_protocol()],
            "assortment",
            "SELECT region, COUNT(*) FROM sales GROUP BY region ORDER BY region"
        )
        .await,
        Outcome::Rows(vec!["north|240".into(), "south|120".into()])
    );
    assert!(matches!(
        run_under(
            &[second_protocol()],
            "assortment",
            "SELECT region, MAX(revenue) FROM sales GROUP BY region"
        )
        .await,
        Outcome::Rows(_)
    ));
}

#[tokio::test]
async fn every_protocol_version_used_is_reported() {
    let both = [sales_protocol(), second_protocol()];
    let output = output_under(&both, "SELECT region, COUNT(*) FROM sales GROUP BY region").await;
    let used: Vec<(String, u32, String)> = output
        .report
        .protocols
        .iter()
        .map(|p| (p.name.clone(), p.version, p.hash.to_string()))
        .collect();
    assert_eq!(
        used,
        vec![
            (
                "freshmart-sales-for-brands".to_string(),
                1,
                sales_protocol().content_hash().to_string()
            ),
            (
                "freshmart-sales-panel".to_string(),
                3,
                second_protocol().content_hash().to_string()
            ),
        ]
    );
    let rules = &output.report.rules_applied;
    assert!(
        rules.contains(&"min_data_age_days=30 on sales".to_string()),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|rule| rule.starts_with("entities_") && rule.ends_with(">=100")),
        "{rules:?}"
    );
    assert_eq!(output.report.groups_suppressed.entity_threshold, 2);
}

#[tokio::test]
async fn the_strictest_join_rule_applies() {
    // The overlap protocol requires a join with own data; for a common purpose, so does the pair.
    let mut overlap = overlap_protocol();
    overlap.purposes.push("assortment".into());
    let both = [sales_protocol(), overlap];
    assert_eq!(
        run_under(
            &both,
            "assortment",
            "SELECT region, COUNT(*) FROM sales GROUP BY region"
        )
        .await,
        Outcome::Refused("join_required")
    );
    assert_eq!(
        run_under(
            &both,
            "assortment",
            "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m \
             ON s.loyalty_card = m.card GROUP BY m.segment ORDER BY m.segment"
        )
        .await,
        Outcome::Rows(vec!["gold|120".into(), "silver|180".into()])
    );
    // A protocol that lets no column join makes the join key unusable for the pair.
    let mut closed = sales_protocol();
    closed.name = "no-joins".into();
    for column in &mut closed.datasets[0].columns {
        if column.name == "loyalty_card" {
            column.class = agora_query::ColumnClass::Blocked;
        }
    }
    closed.joins.joinable_columns.clear();
    assert_eq!(
        run_under(
            &[sales_protocol(), closed],
            "assortment",
            "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m \
             ON s.loyalty_card = m.card GROUP BY m.segment"
        )
        .await,
        Outcome::Invalid("sql".into())
    );
}

#[test]
fn strictest_merges_rule_by_rule() {
    let merged = strictest(&[&sales_protocol(), &second_protocol()], "sales").expect("covered");
    assert_eq!(merged.output.min_entities_per_row, Some(100));
    assert_eq!(merged.output.min_data_age_days, Some(30));
    assert_eq!(merged.output.contributor_share_percent_max, Some(25));
    assert_eq!(
        merged.output.allowed_aggregates,
        Some(BTreeSet::from([
            AggregateName::Count,
            AggregateName::CountDistinct,
            AggregateName::Sum
        ]))
    );
    assert_eq!(merged.analysis, AnalysisType::Aggregate);
    let sku = merged.datasets[0]
        .columns
        .iter()
        .find(|column| column.name == "sku")
        .expect("sku");
    assert!(!sku.allowed);
    // A column classed differently is blocked, unless one protocol counts it as entity_id.
    let mut other = sales_protocol();
    for column in &mut other.datasets[0].columns {
        match column.name.as_str() {
            "store" => column.class = agora_query::ColumnClass::Metric,
            "customer_id" => column.class = agora_query::ColumnClass::Dimension,
            _ => {}
        }
    }
    let merged = strictest(&[&sales_protocol(), &other], "sales").expect("covered");
    let rule = &merged.datasets[0];
    assert_eq!(
        rule.class_of("store"),
        Some(agora_query::ColumnClass::Blocked)
    );
    assert_eq!(
        rule.class_of("customer_id"),
        Some(agora_query::ColumnClass::EntityId)
    );
    assert!(strictest(&[&sales_protocol()], "shipments").is_none());
}
