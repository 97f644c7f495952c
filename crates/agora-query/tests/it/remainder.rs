//! The remainder row: withheld groups folded into one labelled row, recomputed from their rows
//! and itself held to every threshold, so that totals still add up.

use agora_query::{Protocol, QueryOutput, RemainderReport};

use crate::{datasets, engine, pooled_protocol, request, rows_of, sales_protocol};

fn with_remainder(minimum: u32) -> Protocol {
    let mut protocol = sales_protocol();
    protocol.output.min_entities_per_row = Some(minimum);
    protocol.output.suppressed_remainder = Some("(other)".into());
    protocol
}

async fn output(protocols: &[Protocol], purpose: &str, sql: &str) -> QueryOutput {
    engine()
        .run(&request(purpose, sql), protocols, &datasets())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

#[tokio::test]
async fn withheld_groups_fold_into_one_row_that_meets_the_threshold() {
    // 70 customers per row: n1 (100) is released; n2 (20), s1 (60) and t1 (3) are withheld,
    // and their 83 customers together make a remainder that meets the threshold.
    let protocols = [with_remainder(70)];
    let got = output(
        &protocols,
        "assortment",
        "SELECT store, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS customers, SUM(units) AS u \
         FROM sales GROUP BY store ORDER BY n DESC",
    )
    .await;
    assert_eq!(rows_of(&got), vec!["n1|200|100|398", "(other)|166|83|334"]);
    assert_eq!(
        got.report.remainder,
        Some(RemainderReport {
            groups_folded: 3,
            released: true
        })
    );
    assert_eq!(got.report.groups_suppressed.entity_threshold, 3);
    // Totals add up: the total over all stores is the sum of both rows.
    let total = output(
        &protocols,
        "forecasting",
        "SELECT COUNT(*), SUM(units) FROM sales",
    )
    .await;
    assert_eq!(rows_of(&total), vec!["366|732"]);
}

#[tokio::test]
async fn a_remainder_under_the_threshold_is_withheld_too() {
    // By region: north (120) is released; south (60) and tiny (3) make 63, under 70.
    let got = output(
        &[with_remainder(70)],
        "assortment",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
    )
    .await;
    assert_eq!(rows_of(&got), vec!["north|240"]);
    assert_eq!(
        got.report.remainder,
        Some(RemainderReport {
            groups_folded: 2,
            released: false
        })
    );
}

#[tokio::test]
async fn without_the_option_there_is_no_remainder() {
    let got = output(
        &[sales_protocol()],
        "assortment",
        "SELECT store, COUNT(*) FROM sales GROUP BY store ORDER BY store",
    )
    .await;
    assert_eq!(rows_of(&got), vec!["n1|200", "s1|120"]);
    assert_eq!(got.report.remainder, None);
}

#[tokio::test]
async fn a_pooled_remainder_is_held_to_the_contributor_rules() {
    // Lanes b (two carriers) and c (k0 dominant) fold into a remainder of six carriers in
    // which k0 holds 550 of 850 parcels: still dominated, so withheld.
    let mut pooled = pooled_protocol();
    pooled.output.suppressed_remainder = Some("(other)".into());
    let got = output(
        std::slice::from_ref(&pooled),
        "forecasting",
        "SELECT lane, SUM(parcels) FROM shipments GROUP BY lane ORDER BY lane",
    )
    .await;
    assert_eq!(rows_of(&got), vec!["a|300"]);
    assert_eq!(
        got.report.remainder,
        Some(RemainderReport {
            groups_folded: 2,
            released: false
        })
    );
    // Lane b alone folds into a remainder of its two carriers: under five, withheld.
    let got = output(
        &[pooled],
        "forecasting",
        "SELECT lane, COUNT(*) AS n FROM shipments GROUP BY lane ORDER BY lane",
    )
    .await;
    assert_eq!(rows_of(&got), vec!["a|60", "c|60"]);
    assert_eq!(
        got.report.remainder,
        Some(RemainderReport {
            groups_folded: 1,
            released: false
        })
    );
}
