//! Datasets through the API on each backend: uploads in each format, versions and reads as of a
//! version, malformed files refused with their line and column while nothing changes, column
//! classes validated by name, another organisation kept out, and the upload size limit.

use agora_app::AppConfig;
use agora_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApi, backends};

const SALES: &str = "store,region,units,revenue,customer_id,day\n\
    s1,north,3,4.5,c1,2026-01-02\n\
    s2,south,1,2.0,c2,2026-01-02\n";
const MORE_SALES: &str = "store,region,units,revenue,customer_id,day\n\
    s3,north,7,10.5,c3,2026-01-03\n";
/// Written by `parquet::arrow::ArrowWriter`: `store` (string), `units` (int32), 3 rows.
const SALES_PARQUET: &[u8] = include_bytes!("../fixtures/sales.parquet");

impl TestApi {
    async fn upload(
        &self,
        org: &str,
        name: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!(
                "{}/api/v1/orgs/{org}/datasets/{name}/versions",
                self.url
            ))
            .bearer_auth(token)
            .header("content-type", content_type)
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
}

fn rows(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap_or("null").to_owned())
        .collect()
}

fn versions(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|version| version["version"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_uploads_appends_reads_as_of_a_version_classifies_and_deletes() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let analyst = api
            .member_token(&fresh, "ivo@fresh.example", "analyst")
            .await;
        let base = format!("/api/v1/orgs/{fresh}/datasets");

        let (status, created) = api
            .upload(&fresh, "store_sales", &owner, "text/csv", SALES)
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["created"], true);
        assert_eq!(created["version"]["version"], 1);
        assert_eq!(created["version"]["rows_added"], 2);
        let columns: Vec<(String, String, String)> = created["dataset"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["type"].as_str().unwrap().to_owned(),
                    c["class"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String)> = [
            ("store", "string"),
            ("region", "string"),
            ("units", "integer"),
            ("revenue", "float"),
            ("customer_id", "string"),
            ("day", "date"),
        ]
        .iter()
        .map(|(name, kind)| ((*name).into(), (*kind).into(), "blocked".into()))
        .collect();
        assert_eq!(columns, expected, "unclassified columns are blocked");

        let (status, appended) = api
            .upload(
                &fresh,
                "store_sales",
                &owner,
                "text/csv; charset=utf-8",
                MORE_SALES,
            )
            .await;
        assert_eq!(status, 200, "{appended}");
        assert_eq!(appended["version"]["version"], 2);

        let (status, page) = api
            .get(&format!("{base}/store_sales/versions"), &analyst)
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(versions(&page), [2, 1]);
        let (_, v1) = api
            .get(&format!("{base}/store_sales/rows?version=1"), &analyst)
            .await;
        assert_eq!(rows(&v1), ["s1", "s2"]);
        let (_, now) = api.get(&format!("{base}/store_sales/rows"), &analyst).await;
        assert_eq!(now["version"], 2);
        let mut stores = rows(&now);
        stores.sort();
        assert_eq!(stores, ["s1", "s2", "s3"]);
        let (status, _) = api
            .get(&format!("{base}/store_sales/rows?version=3"), &analyst)
            .await;
        assert_eq!(status, 404);

        // JSON lines and Parquet make datasets of their own.
        let (status, jsonl) = api
            .upload(
                &fresh,
                "shipments",
                &owner,
                "application/x-ndjson",
                "{\"carrier\":\"c1\",\"parcels\":4}\n{\"carrier\":\"c2\",\"parcels\":1}\n",
            )
            .await;
        assert_eq!(status, 201, "{jsonl}");
        assert_eq!(jsonl["version"]["rows_added"], 2);
        let (status, parquet) = api
            .upload(
                &fresh,
                "stock",
                &owner,
                "application/vnd.apache.parquet",
                SALES_PARQUET,
            )
            .await;
        assert_eq!(status, 201, "{parquet}");
        assert_eq!(parquet["version"]["rows_added"], 3);
        let (_, listed) = api.get(&base, &analyst).await;
        let names: Vec<&str> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["shipments", "stock", "store_sales"]);

        // Classes: validated by name; an analyst reads but does not classify.
        let classes = json!([
            { "column": "store", "class": "dimension" },
            { "column": "region", "class": "dimension" },
            { "column": "units", "class": "metric" },
            { "column": "revenue", "class": "metric" },
            { "column": "customer_id", "class": "entity_id" },
            { "column": "day", "class": "timestamp" },
        ]);
        let path = format!("{base}/store_sales/classes");
        let (status, problem) = api
            .call(Method::PUT, &path, &analyst, Some(classes.clone()))
            .await;
        assert_eq!(
            (status.as_u16(), problem["rule"].as_str()),
            (403, Some("no-permit"))
        );
        let (status, classified) = api.call(Method::PUT, &path, &owner, Some(classes)).await;
        assert_eq!(status, 200, "{classified}");
        assert_eq!(classified["columns"][2]["class"], "metric");
        assert_eq!(classified["columns"][2]["classified"], true);
        for (body, field, detail) in [
            (
                json!([{ "column": "store", "class": "dimension" }, { "column": "store", "class": "join_key" }]),
                "classes.store",
                "column `store` is classed twice",
            ),
            (
                json!([{ "column": "colour", "class": "dimension" }]),
                "classes.colour",
                "the dataset has no column `colour`",
            ),
            (
                json!([{ "column": "region", "class": "metric" }]),
                "classes.region",
                "a `metric` column needs type integer or float",
            ),
        ] {
            let (status, problem) = api.call(Method::PUT, &path, &owner, Some(body)).await;
            assert_eq!(status, 400, "{problem}");
            assert_eq!(problem["field"], field);
            assert!(
                problem["detail"].as_str().unwrap().contains(detail),
                "{problem}"
            );
        }

        // Deleting frees the name and tells subscribers.
        let (status, deleted) = api
            .call(Method::DELETE, &format!("{base}/shipments"), &owner, None)
            .await;
        assert_eq!(status, 200, "{deleted}");
        assert_eq!(deleted["status"], "deleted");
        let (status, _) = api.get(&format!("{base}/shipments"), &owner).await;
        assert_eq!(status, 404);
        let (_, events) = api
            .get(&format!("/api/v1/orgs/{fresh}/events"), &owner)
            .await;
        let types: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .filter(|t| t.starts_with("dataset."))
            .collect();
        for expected in [
            "dataset.created",
            "dataset.appended",
            "dataset.classified",
            "dataset.deleted",
        ] {
            assert!(types.contains(&expected), "{expected} in {types:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_uploads_are_refused_with_line_and_column_and_change_nothing() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let (status, _) = api
            .upload(&fresh, "store_sales", &owner, "text/csv", SALES)
            .await;
        assert_eq!(status, 201);
        let versions_path = format!("/api/v1/orgs/{fresh}/datasets/store_sales/versions");
        let header = "store,region,units,revenue,customer_id,day\n";
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "text/csv",
                format!("{header}s4,north,2,1.0,c4\n").into_bytes(),
                "line 2, column 6 (`day`): the row has 5 fields, the header has 6",
            ),
            (
                "text/csv",
                format!("{header}s4,north,two,1.0,c4,2026-01-05\n").into_bytes(),
                "line 2, column 3 (`units`): `two` is not an integer",
            ),
            (
                "text/csv",
                [header.as_bytes(), b"s4,n\xc3\x28rth,2,1.0,c4,2026-01-05\n"].concat(),
                "line 2, column 2 (`region`): not valid UTF-8",
            ),
            (
                "text/csv",
                b"store,units\ns4,2\n".to_vec(),
                "line 1: the dataset's column `region` is missing from the header",
            ),
            (
                "application/x-ndjson",
                b"{\"store\":\"s4\",\"units\":\"many\"}\n".to_vec(),
                "line 1, column 3 (`units`): `\"many\"` is not an integer",
            ),
        ];
        for (content_type, body, detail) in cases {
            let (status, problem) = api
                .upload(&fresh, "store_sales", &owner, content_type, body)
                .await;
            assert_eq!(status, 400, "{problem}");
            assert_eq!(problem["field"], "file");
            assert!(
                problem["detail"].as_str().unwrap().contains(detail),
                "{detail} in {problem}"
            );
        }
        let (_, page) = api.get(&versions_path, &owner).await;
        assert_eq!(versions(&page), [1], "no refused upload made a version");

        let (status, problem) = api
            .upload(&fresh, "store_sales", &owner, "application/json", SALES)
            .await;
        assert_eq!(status, 415, "{problem}");
        let (status, problem) = api
            .upload(&fresh, "Store-Sales", &owner, "text/csv", SALES)
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["field"], "dataset name");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisation_and_the_operator_can_neither_read_nor_write() {
    for backend in backends() {
        let api = TestApi::start(backend).await;
        let fresh = api.partner("FreshMart").await;
        let brand = api.partner("Brightbrew").await;
        let owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let other = api.member_token(&brand, "bo@bright.example", "owner").await;
        let (status, _) = api
            .upload(&fresh, "store_sales", &owner, "text/csv", SALES)
            .await;
        assert_eq!(status, 201);
        let base = format!("/api/v1/orgs/{fresh}/datasets");
        for token in [&other, &api.operator_token] {
            for path in [
                base.clone(),
                format!("{base}/store_sales"),
                format!("{base}/store_sales/versions"),
                format!("{base}/store_sales/rows"),
            ] {
                let (status, problem) = api.get(&path, token).await;
                assert_eq!(status, 403, "{path}: {problem}");
                assert_eq!(problem["rule"], "datasets-stay-with-their-owner");
            }
            let (status, problem) = api
                .upload(&fresh, "store_sales", token, "text/csv", MORE_SALES)
                .await;
            assert_eq!(status, 403, "{problem}");
            let (status, _) = api
                .call(Method::DELETE, &format!("{base}/store_sales"), token, None)
                .await;
            assert_eq!(status, 403);
        }
        let (_, page) = api
            .get(&format!("{base}/store_sales/versions"), &owner)
            .await;
        assert_eq!(versions(&page), [1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_upload_bytes_max_is_refused_with_413() {
    for backend in backends() {
        let mut config = AppConfig::default();
        config.data.upload_bytes_max = 64;
        let api = TestApi::start_with(backend, config, ServerConfig::default()).await;
        let fresh = api.partner("FreshMart").await;
        let owner = api.member_token(&fresh, "ana@fresh.example", "owner").await;
        let (status, problem) = api
            .upload(&fresh, "store_sales", &owner, "text/csv", SALES)
            .await;
        assert_eq!(status, 413, "{problem}");
        assert_eq!(problem["limit"], "upload_bytes_max");
        let (status, _) = api
            .get(
                &format!("/api/v1/orgs/{fresh}/datasets/store_sales"),
                &owner,
            )
            .await;
        assert_eq!(status, 404, "nothing was created");
    }
}
