//! The threat table: known ways clean rooms have been attacked, each with several queries and
//! the rule that must refuse them (or the suppressed output they must get).

use agora_query::QueryLimits;

use crate::{Outcome, engine_with, run, run_on};

use Outcome::{Failed, Invalid, Limit, Refused, Rows};

fn rows(rows: &[&str]) -> Outcome {
    Rows(rows.iter().map(|row| (*row).to_owned()).collect())
}

/// (threat, purpose, SQL, expected outcome).
fn threats() -> Vec<(&'static str, &'static str, String, Outcome)> {
    let sales = "assortment";
    let mut cases: Vec<(&str, &str, String, Outcome)> = Vec::new();
    let mut add = |threat: &'static str, purpose: &'static str, sql: &str, expect: Outcome| {
        cases.push((threat, purpose, sql.to_owned(), expect));
    };
    // Filtering or grouping on entity or join columns, or comparing them with literals.
    add(
        "entity filter",
        sales,
        "SELECT region, SUM(revenue) FROM sales WHERE customer_id = 'c001' GROUP BY region",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity filter",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE customer_id LIKE 'c00%' GROUP BY region",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity filter",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE loyalty_card IN ('card1', 'card2') GROUP BY region",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity filter",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE customer_id > 'c100' GROUP BY region",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity filter",
        sales,
        "SELECT region, COUNT(*) FROM (SELECT region, customer_id AS who FROM sales) t WHERE who = 'c001' GROUP BY region",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity group",
        sales,
        "SELECT customer_id, SUM(revenue) FROM sales GROUP BY customer_id",
        Refused("group_by_protected_column"),
    );
    add(
        "entity group",
        sales,
        "SELECT loyalty_card, COUNT(*) FROM sales GROUP BY loyalty_card",
        Refused("group_by_protected_column"),
    );
    add(
        "entity group",
        sales,
        "SELECT substr(customer_id, 1, 3) AS prefix, COUNT(*) FROM sales GROUP BY substr(customer_id, 1, 3)",
        Refused("group_by_protected_column"),
    );
    add(
        "entity output",
        sales,
        "SELECT customer_id FROM sales",
        Refused("row_level_output"),
    );
    add(
        "entity output",
        sales,
        "SELECT * FROM sales",
        Refused("row_level_output"),
    );
    add(
        "metric group",
        sales,
        "SELECT revenue, COUNT(*) FROM sales GROUP BY revenue",
        Refused("group_by_metric"),
    );
    // MIN, MAX, percentiles, ARRAY_AGG, STRING_AGG, FIRST_VALUE.
    add(
        "extreme values",
        sales,
        "SELECT region, MAX(revenue) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, MIN(units) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, median(revenue) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, approx_percentile_cont(revenue, 0.99) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, ARRAY_AGG(customer_id) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, STRING_AGG(store, ',') FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, FIRST_VALUE(revenue ORDER BY revenue DESC) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, SUM(customer_id) FROM sales GROUP BY region",
        Invalid("sql".into()),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, SUM(margin) FROM sales GROUP BY region",
        Invalid("sql".into()),
    );
    // Window functions returning row-level values.
    add(
        "window",
        sales,
        "SELECT region, revenue, ROW_NUMBER() OVER (PARTITION BY region ORDER BY revenue) FROM sales",
        Refused("window_function"),
    );
    add(
        "window",
        sales,
        "SELECT region, SUM(revenue) OVER (PARTITION BY region) FROM sales",
        Refused("window_function"),
    );
    add(
        "window",
        sales,
        "SELECT region, FIRST_VALUE(revenue) OVER (ORDER BY revenue DESC) FROM sales",
        Refused("window_function"),
    );
    add(
        "window",
        sales,
        "SELECT region, SUM(SUM(revenue)) OVER () FROM sales GROUP BY region",
        Refused("window_function"),
    );
    // Subqueries or CTEs that aggregate small groups and re-aggregate.
    add(
        "nested aggregation",
        sales,
        "WITH per_store AS (SELECT store, SUM(revenue) AS r FROM sales GROUP BY store) SELECT SUM(r) FROM per_store",
        Refused("nested_aggregation"),
    );
    add(
        "nested aggregation",
        sales,
        "SELECT COUNT(*) FROM (SELECT store, sku FROM sales GROUP BY store, sku) t",
        Refused("nested_aggregation"),
    );
    add(
        "nested aggregation",
        sales,
        "SELECT region, SUM(revenue) FROM sales WHERE revenue > (SELECT AVG(revenue) FROM sales) GROUP BY region",
        Refused("subquery"),
    );
    add(
        "nested aggregation",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE store IN (SELECT store FROM sales GROUP BY store HAVING COUNT(*) < 10) GROUP BY region",
        Refused("subquery"),
    );
    add(
        "nested aggregation",
        sales,
        "SELECT region, COUNT(*) FROM (SELECT * FROM sales ORDER BY revenue DESC LIMIT 1) t GROUP BY region",
        Refused("limit_below_aggregate"),
    );
    // UNION of aggregates.
    add(
        "union",
        sales,
        "SELECT region, SUM(revenue) FROM sales GROUP BY region UNION ALL SELECT store, SUM(revenue) FROM sales GROUP BY store",
        Refused("union"),
    );
    add(
        "union",
        sales,
        "SELECT COUNT(*) FROM sales UNION SELECT COUNT(*) FROM sales WHERE store <> 'n2'",
        Refused("union"),
    );
    add(
        "union",
        sales,
        "SELECT region, COUNT(*) FROM (SELECT region FROM sales UNION ALL SELECT region FROM sales) t GROUP BY region",
        Refused("union"),
    );
    // Joins on non-join columns, with OR or inequalities.
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m ON s.store = m.segment GROUP BY m.segment",
        Refused("join_column"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m ON s.customer_id = m.card GROUP BY m.segment",
        Refused("join_column"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m ON s.loyalty_card = m.card OR s.region = m.segment GROUP BY m.segment",
        Refused("join_operator"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m ON s.loyalty_card < m.card GROUP BY m.segment",
        Refused("join_operator"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s LEFT JOIN loyalty_members m ON s.loyalty_card = m.card GROUP BY m.segment",
        Refused("join_type"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s CROSS JOIN loyalty_members m GROUP BY m.segment",
        Refused("join_column"),
    );
    add(
        "join",
        sales,
        "SELECT a.region, COUNT(*) FROM sales a JOIN sales b ON a.revenue = b.revenue GROUP BY a.region",
        Refused("join_column"),
    );
    add(
        "join",
        "overlap",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
        Refused("join_required"),
    );
    // CASE expressions that single out one row.
    add(
        "case",
        sales,
        "SELECT region, SUM(CASE WHEN customer_id = 'c001' THEN revenue ELSE 0 END) FROM sales GROUP BY region",
        Refused("protected_column_expression"),
    );
    add(
        "case",
        sales,
        "SELECT region, SUM(CASE WHEN sku = 'sku-rare' THEN revenue ELSE 0 END) FROM sales GROUP BY region",
        Refused("case_singling_out"),
    );
    add(
        "case",
        sales,
        "SELECT region, SUM(nullif(revenue, 5.0)) FROM sales GROUP BY region",
        Refused("case_singling_out"),
    );
    add(
        "case",
        sales,
        "SELECT region, COUNT(*) FILTER (WHERE sku = 'sku-rare') FROM sales GROUP BY region",
        Refused("aggregate_filter"),
    );
    // Casts, division by zero and overflow as error oracles.
    add(
        "error oracle",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE CAST(store AS INT) > 0 GROUP BY region",
        Refused("error_oracle"),
    );
    add(
        "error oracle",
        sales,
        "SELECT region, SUM(revenue / (units - 2)) FROM sales GROUP BY region",
        Refused("error_oracle"),
    );
    add(
        "error oracle",
        sales,
        "SELECT region, SUM(units % (units - 1)) FROM sales GROUP BY region",
        Refused("error_oracle"),
    );
    add(
        "error oracle",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE 1 / (units - 3) > 0 GROUP BY region",
        Refused("error_oracle"),
    );
    // information_schema and other catalogs; datasets not shared; hidden columns.
    add(
        "catalog",
        sales,
        "SELECT * FROM information_schema.tables",
        Invalid("sql".into()),
    );
    add(
        "catalog",
        sales,
        "SELECT * FROM information_schema.columns",
        Invalid("sql".into()),
    );
    add("catalog", sales, "SHOW TABLES", Invalid("sql".into()));
    add(
        "catalog",
        sales,
        "SELECT region, COUNT(*) FROM competitor_sales GROUP BY region",
        Invalid("sql".into()),
    );
    add(
        "catalog",
        sales,
        "SELECT region, SUM(cost) FROM sales GROUP BY region",
        Invalid("sql".into()),
    );
    add(
        "catalog",
        sales,
        "SELECT COUNT(*) FROM agora.data.__agora_scan_2",
        Refused("reserved_name"),
    );
    // Reading files through table functions, DDL, DML, COPY, EXPLAIN.
    add(
        "files",
        sales,
        "SELECT * FROM read_parquet('/etc/passwd')",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "SELECT * FROM read_csv('/etc/passwd')",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "SELECT * FROM generate_series(1, 1000000000000)",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        Refused("statement"),
    );
    add(
        "files",
        sales,
        "COPY (SELECT * FROM sales) TO '/tmp/leak.csv'",
        Refused("statement"),
    );
    add(
        "files",
        sales,
        "INSERT INTO sales SELECT * FROM sales",
        Refused("statement"),
    );
    add("files", sales, "DROP TABLE sales", Refused("statement"));
    add(
        "files",
        sales,
        "SET datafusion.execution.batch_size = 1",
        Refused("statement"),
    );
    add(
        "files",
        sales,
        "EXPLAIN SELECT region, COUNT(*) FROM sales GROUP BY region",
        Refused("explain"),
    );
    add(
        "files",
        sales,
        "EXPLAIN ANALYZE SELECT region, COUNT(*) FROM sales GROUP BY region",
        Refused("explain"),
    );
    // Injection through the purpose or parameters.
    add(
        "injection",
        "assortment'; DROP TABLE sales; --",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
        Invalid("purpose".into()),
    );
    add(
        "injection",
        "marketing",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
        Invalid("sql".into()),
    );
    add(
        "injection",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE store = $1 GROUP BY region",
        Refused("parameter"),
    );
    add(
        "injection",
        sales,
        "SELECT region, COUNT(*) FROM sales GROUP BY region; DROP TABLE sales",
        Invalid("sql".into()),
    );
    add(
        "injection",
        sales,
        "SELECT region, COUNT(*) AS __agora_entities_1 FROM sales GROUP BY region",
        Refused("reserved_name"),
    );
    add(
        "injection",
        "",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
        Invalid("purpose".into()),
    );
    add(
        "injection",
        "Assortment",
        "SELECT region, COUNT(*) FROM sales GROUP BY region",
        Invalid("purpose".into()),
    );
    add(
        "injection",
        sales,
        "SELECT region, COUNT(*) FROM sales WHERE store = 'n1' OR 1 = 1 -- ' GROUP BY region",
        Invalid("sql".into()),
    );
    // More of each threat.
    // Filtering the consumer's own side of a join is allowed; the threshold still applies.
    add(
        "entity filter",
        sales,
        "SELECT region, COUNT(*) FROM sales s JOIN loyalty_members m ON s.loyalty_card = m.card \
         WHERE m.card = 'card5' GROUP BY region",
        rows(&[]),
    );
    add(
        "entity filter",
        "forecasting",
        "SELECT lane, COUNT(*) FROM shipments WHERE carrier = 'k0' GROUP BY lane",
        Refused("filter_on_protected_column"),
    );
    add(
        "entity group",
        "forecasting",
        "SELECT carrier, SUM(parcels) FROM shipments GROUP BY carrier",
        Refused("group_by_protected_column"),
    );
    add(
        "entity output",
        sales,
        "SELECT region, COUNT(*), MAX(customer_id) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "fine dimensions",
        sales,
        "SELECT sku, COUNT(*) FROM sales GROUP BY sku",
        rows(&["sku-a|364"]),
    );
    add(
        "fine dimensions",
        sales,
        "SELECT region, store, sku, COUNT(*) FROM sales GROUP BY region, store, sku ORDER BY store",
        rows(&["north|n1|sku-a|198", "south|s1|sku-a|120"]),
    );
    add(
        "fine dimensions",
        sales,
        "SELECT region, units, COUNT(*) FROM sales GROUP BY region, units",
        Refused("group_by_metric"),
    );
    add(
        "fine dimensions",
        sales,
        "SELECT day, COUNT(*) FROM sales WHERE store = 't1' GROUP BY day",
        rows(&[]),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, stddev(revenue) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "extreme values",
        sales,
        "SELECT region, LAST_VALUE(revenue ORDER BY revenue) FROM sales GROUP BY region",
        Refused("aggregate_function"),
    );
    add(
        "window",
        sales,
        "SELECT region, LAG(revenue) OVER (ORDER BY day) FROM sales",
        Refused("window_function"),
    );
    add(
        "nested aggregation",
        sales,
        "SELECT COUNT(*) FROM (SELECT DISTINCT store FROM sales) t",
        Refused("nested_aggregation"),
    );
    add(
        "union",
        sales,
        "SELECT region FROM sales GROUP BY region EXCEPT SELECT region FROM sales WHERE store = 'n2' GROUP BY region",
        Refused("nested_aggregation"),
    );
    add(
        "union",
        sales,
        "SELECT region FROM sales GROUP BY region INTERSECT SELECT region FROM sales WHERE sku = 'sku-rare' GROUP BY region",
        Refused("nested_aggregation"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m \
         ON s.loyalty_card = m.card AND s.store = 'n1' GROUP BY m.segment",
        Refused("join_operator"),
    );
    add(
        "join",
        sales,
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m \
         ON upper(s.loyalty_card) = m.card GROUP BY m.segment",
        Refused("join_operator"),
    );
    add(
        "case",
        sales,
        "SELECT region, SUM(CASE WHEN revenue > 999 THEN 1 ELSE 0 END) FROM sales GROUP BY region",
        Refused("case_singling_out"),
    );
    add(
        "error oracle",
        sales,
        "SELECT region, SUM(CAST(sku AS BIGINT)) FROM sales GROUP BY region",
        Refused("error_oracle"),
    );
    add(
        "catalog",
        sales,
        "SELECT * FROM agora.information_schema.tables",
        Invalid("sql".into()),
    );
    add(
        "catalog",
        sales,
        "SELECT * FROM datafusion.public.sales",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "SELECT * FROM read_json('/etc/passwd')",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "SELECT * FROM '/etc/passwd'",
        Invalid("sql".into()),
    );
    add(
        "files",
        sales,
        "SELECT * FROM range(10)",
        Invalid("sql".into()),
    );
    // Error oracles above the aggregation see only released groups: tiny has COUNT(*) = 6, and
    // dividing by COUNT(*) - 6 fails only if tiny reaches the division.
    add(
        "error oracle",
        sales,
        "SELECT region, 1 / (COUNT(*) - 6) AS x FROM sales GROUP BY region ORDER BY region",
        rows(&["north|0", "south|0"]),
    );
    add(
        "error oracle",
        sales,
        "SELECT region, COUNT(*) FROM sales GROUP BY region HAVING 1 / (COUNT(*) - 6) >= 0 ORDER BY region",
        rows(&["north|240", "south|120"]),
    );
    // Legitimate queries pass: a check that refuses everything fails here.
    add(
        "allowed",
        sales,
        "SELECT region, COUNT(*), COUNT(DISTINCT customer_id), SUM(revenue) / SUM(units) \
         FROM sales GROUP BY region ORDER BY region",
        rows(&["north|240|120|2.5", "south|120|60|2.5"]),
    );
    add(
        "allowed",
        sales,
        "SELECT region, SUM(revenue / 2) AS half FROM sales WHERE TRY_CAST(store AS INT) IS NULL \
         GROUP BY region ORDER BY region",
        rows(&["north|600.0", "south|300.0"]),
    );
    add(
        "allowed",
        sales,
        "SELECT region, CASE WHEN SUM(units) > 300 THEN 'big' ELSE 'small' END AS size \
         FROM sales GROUP BY region ORDER BY region",
        rows(&["north|big", "south|small"]),
    );
    add(
        "allowed",
        sales,
        "WITH s AS (SELECT region, revenue FROM sales WHERE units > 1) \
         SELECT region, COUNT(*) FROM s GROUP BY region ORDER BY region",
        rows(&["north|160"]),
    );
    add(
        "allowed",
        "overlap",
        "SELECT m.segment, COUNT(*) FROM sales s JOIN loyalty_members m \
         ON s.loyalty_card = m.card GROUP BY m.segment ORDER BY m.segment",
        rows(&["gold|120", "silver|180"]),
    );
    add(
        "allowed",
        "forecasting",
        "SELECT lane, COUNT(*) FROM shipments GROUP BY lane ORDER BY lane",
        rows(&["a|60", "c|60"]),
    );
    add(
        "allowed",
        sales,
        "SELECT DISTINCT region FROM sales ORDER BY region",
        rows(&["north", "south"]),
    );
    cases
}

#[tokio::test]
async fn every_threat_gets_its_expected_outcome() {
    let mut failures = Vec::new();
    for (threat, purpose, sql, expect) in threats() {
        let got = run(purpose, &sql).await;
        if got != expect {
            failures.push(format!(
                "[{threat}] {sql}\n  expected {expect:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn fine_dimensions_with_few_entities_per_group_are_suppressed() {
    // Only store/day/sku groups with at least 50 customers leave; n2 (20), t1 (3) and the
    // rare SKU (1) are suppressed.
    let got = run(
        "assortment",
        "SELECT store, CAST(day AS DATE) AS d, sku, COUNT(*) AS n FROM sales \
         GROUP BY store, CAST(day AS DATE), sku ORDER BY store, d, sku",
    )
    .await;
    assert_eq!(
        got,
        Outcome::Rows(vec![
            "n1|2025-01-10|sku-a|99".into(),
            "n1|2025-01-11|sku-a|99".into(),
            "s1|2025-01-10|sku-a|60".into(),
            "s1|2025-01-11|sku-a|60".into(),
        ])
    );
}

#[tokio::test]
async fn differencing_with_and_without_a_narrow_filter_is_suppressed() {
    let engine = crate::engine();
    let all = "SELECT region, SUM(revenue) AS r FROM sales GROUP BY region ORDER BY region";
    let Outcome::Rows(first) = run_on(&engine, "assortment", all).await else {
        panic!("the broad query runs");
    };
    assert_eq!(first.len(), 2, "north and south: {first:?}");
    // Without the rare SKU north loses one customer: the difference would isolate c005.
    let narrow = "SELECT region, SUM(revenue) AS r FROM sales WHERE sku <> 'sku-rare' GROUP BY region ORDER BY region";
    let got = run_on(&engine, "assortment", narrow).await;
    let Outcome::Rows(second) = got else {
        panic!("runs: {got:?}")
    };
    assert_eq!(
        second.len(),
        1,
        "north is withheld, south (unchanged) stays: {second:?}"
    );
    assert!(second[0].starts_with("south|"));
    // Without store n2 north loses 20 customers: still under 50, withheld.
    let without_store =
        "SELECT region, COUNT(*) FROM sales WHERE store <> 'n2' GROUP BY region ORDER BY region";
    let Outcome::Rows(third) = run_on(&engine, "assortment", without_store).await else {
        panic!("runs");
    };
    assert_eq!(third.len(), 1, "{third:?}");
    // A total with and without one store: the second total is withheld.
    let Outcome::Rows(total) = run_on(&engine, "assortment", "SELECT COUNT(*) FROM sales").await
    else {
        panic!("runs");
    };
    assert_eq!(total, vec!["366".to_string()]);
    let got = run_on(
        &engine,
        "assortment",
        "SELECT COUNT(*) FROM sales WHERE store <> 't1'",
    )
    .await;
    assert_eq!(got, Outcome::Rows(vec![]));
    // Another analyst organisation's history is separate; the same query again is not a difference.
    let got = run_on(&engine, "assortment", all).await;
    assert_eq!(got, Outcome::Rows(first));
}

#[tokio::test]
async fn differencing_in_either_order_and_on_distinct_counts() {
    let engine = crate::engine();
    // The narrow query first, then the broad one: north gains n2's 20 customers.
    let narrow = "SELECT region, COUNT(DISTINCT customer_id) FROM sales WHERE store <> 'n2' \
                  GROUP BY region ORDER BY region";
    assert_eq!(
        run_on(&engine, "assortment", narrow).await,
        rows(&["north|100", "south|60"])
    );
    let broad =
        "SELECT region, COUNT(DISTINCT customer_id) FROM sales GROUP BY region ORDER BY region";
    assert_eq!(
        run_on(&engine, "assortment", broad).await,
        rows(&["south|60"])
    );
    // Another purpose reads the same datasets with the same grouping: still compared.
    let sums =
        "SELECT region, SUM(units) FROM sales WHERE sku = 'sku-a' GROUP BY region ORDER BY region";
    assert_eq!(
        run_on(&engine, "forecasting", sums).await,
        rows(&["south|240"])
    );
    // A fresh analyst history sees the broad result whole.
    assert_eq!(
        run_on(&crate::engine(), "assortment", broad).await,
        rows(&["north|120", "south|60"])
    );
}

#[tokio::test]
async fn memory_and_time_exhaustion_are_bounded() {
    let tight = engine_with(QueryLimits {
        query_timeout_ms: 300,
        memory_bytes_max: 4 * 1024 * 1024,
        result_rows_max: 100,
        ..QueryLimits::default()
    });
    // CPU: a triple cross join of the brand's own 3000 numbers (own data has full SQL).
    let got = run_on(
        &tight,
        "assortment",
        "SELECT COUNT(*) FROM numbers a, numbers b, numbers c WHERE a.n + b.n + c.n = -1",
    )
    .await;
    assert_eq!(got, Limit("query_timeout_ms"));
    // Memory: nine million groups do not fit in 4 MiB, and spilling is off.
    let got = run_on(
        &tight,
        "assortment",
        "SELECT a.n, b.n, COUNT(*) FROM numbers a, numbers b GROUP BY a.n, b.n",
    )
    .await;
    assert!(
        matches!(
            got,
            Limit("memory_bytes_max") | Limit("query_timeout_ms") | Limit("result_rows_max")
        ),
        "{got:?}"
    );
    let got = run_on(&tight, "assortment", "SELECT n FROM numbers").await;
    assert_eq!(got, Limit("result_rows_max"));
    // The same on shared data is refused before it runs.
    let got = run_on(
        &tight,
        "assortment",
        "SELECT a.region, COUNT(*) FROM sales a, sales b GROUP BY a.region",
    )
    .await;
    assert_eq!(got, Refused("join_column"));
    // SQL size and depth.
    let long = format!(
        "SELECT region, COUNT(*) FROM sales WHERE region IN ({}) GROUP BY region",
        vec!["'x'"; 40_000].join(",")
    );
    assert_eq!(
        run_on(&tight, "assortment", &long).await,
        Limit("sql_bytes_max")
    );
    let deep = format!("SELECT {}1{} FROM sales", "(".repeat(500), ")".repeat(500));
    assert_eq!(
        run_on(&tight, "assortment", &deep).await,
        Limit("sql_parse_depth_max")
    );
}

#[tokio::test]
async fn overflow_fails_without_saying_why() {
    // Not refused by the checker (multiplying metrics is ordinary); if it overflows, the
    // consumer learns only that the query failed.
    let got = run(
        "assortment",
        "SELECT region, SUM(units * 9223372036854775807) FROM sales GROUP BY region",
    )
    .await;
    assert!(matches!(got, Failed | Outcome::Rows(_)), "{got:?}");
    let got = run(
        "assortment",
        "SELECT region, SUM(revenue) * 1e308 * 1e308 FROM sales GROUP BY region",
    )
    .await;
    assert!(matches!(got, Failed | Outcome::Rows(_)), "{got:?}");
}
