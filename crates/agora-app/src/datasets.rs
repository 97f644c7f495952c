//! Datasets: an organisation uploads CSV, JSON lines or Parquet, sees the inferred schema, gives
//! each column a class, appends new versions, reads any version, and deletes what it no longer shares.
//!
//! Changes are authorized as `dataset.manage` on the owning organisation, reads as `dataset.read`;
//! nobody outside the organisation holds either (rule `datasets-stay-with-their-owner`): other
//! organisations reach a dataset only through a protocol's governed queries.
//!
//! An upload is streamed to staging, read in full (`agora-data` refuses a malformed file with the
//! line and column of its first error, before anything is written), written as one Delta version,
//! and only then recorded in the metadata database with its audit entry and event. Writes to one
//! dataset are serialized on this server, so the Delta version and the metadata's agree.

use std::collections::HashMap;
use std::sync::Arc;

use agora_data::{Checked, Datasets, StagedUpload, Stamp, TableLocation};
use agora_domain::authz::{Action, Context, Resource};
use agora_domain::dataset::{
    ColumnClass, ColumnClasses, ColumnClassing, ColumnType, Dataset, DatasetName, DatasetStatus,
    DatasetVersion, UploadFormat,
};
use agora_domain::{DatasetId, Error, OrgId, Result, Timestamp};
use agora_store::WriteTx;
use futures_util::Stream;
use serde::Serialize;

use crate::{App, Call, Done, Page, event};

/// The most rows one read of a dataset's rows answers.
pub const DATASET_ROWS_MAX: usize = 1_000;

/// One column as its owner sees it: its type and its class.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnView {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// `blocked` until the owner gives the column a class.
    pub class: ColumnClass,
    /// Whether the owner gave the class (an unclassified column is `blocked`).
    pub classified: bool,
}

/// A dataset with its schema and classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetView {
    pub id: DatasetId,
    pub org_id: OrgId,
    pub name: DatasetName,
    pub status: DatasetStatus,
    pub current_version: i64,
    pub columns: Vec<ColumnView>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl DatasetView {
    fn new(dataset: &Dataset) -> Self {
        Self {
            id: dataset.id,
            org_id: dataset.org_id,
            name: dataset.name.clone(),
            status: dataset.status,
            current_version: dataset.current_version,
            columns: dataset
                .schema
                .columns
                .iter()
                .map(|column| ColumnView {
                    name: column.name.clone(),
                    column_type: column.column_type,
                    class: dataset.classes.class_of(&column.name),
                    classified: dataset.classes.is_classed(&column.name),
                })
                .collect(),
            created_at: dataset.created_at,
            updated_at: dataset.updated_at,
        }
    }
}

/// What an upload did: the dataset after it, and the version it added.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadOutcome {
    /// Whether this upload created the dataset (version 1) rather than appending to it.
    pub created: bool,
    pub dataset: DatasetView,
    pub version: DatasetVersion,
}

/// Rows of a dataset as of one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetRows {
    pub version: i64,
    /// The column names, in the dataset's order.
    pub columns: Vec<String>,
    /// Each row's values in the order of `columns`; dates and timestamps as text.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<Object>>))]
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// One lock per dataset that is being written, keyed by its owner and name.
type LockMap = HashMap<(OrgId, DatasetName), Arc<tokio::sync::Mutex<()>>>;

/// Writes to one dataset, one at a time on this server.
#[derive(Default)]
pub(crate) struct DatasetLocks {
    locks: std::sync::Mutex<LockMap>,
}

impl DatasetLocks {
    async fn lock(&self, org_id: OrgId, name: &DatasetName) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("no panic while the map is held");
            // Drop the locks nobody holds or waits for, so the map stays as small as the work.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            locks.entry((org_id, name.clone())).or_default().clone()
        };
        lock.lock_owned().await
    }
}

fn dataset_event_data(dataset: &Dataset, version: Option<&DatasetVersion>) -> serde_json::Value {
    let mut data = serde_json::json!({
        "dataset_id": dataset.id,
        "org_id": dataset.org_id,
        "name": dataset.name,
        "current_version": dataset.current_version,
    });
    if let Some(version) = version {
        data["version"] = serde_json::json!(version.version);
        data["rows_added"] = serde_json::json!(version.rows_added);
        data["bytes"] = serde_json::json!(version.bytes);
        data["format"] = serde_json::json!(version.format);
    }
    data
}

impl App {
    /// The datasets engine (Delta tables in the data folder), opened on first use. The query
    /// engine gets DataFusion tables from it with [`Datasets::table_provider`].
    pub fn datasets_engine(&self) -> Result<&Datasets> {
        if let Some(engine) = self.inner.datasets.get() {
            return Ok(engine);
        }
        let engine = Datasets::open_local(self.inner.config.data.clone())?;
        Ok(self.inner.datasets.get_or_init(|| engine))
    }

    /// Uploads a file as a new dataset (version 1) or as the next version of an existing one,
    /// streaming `body` to staging first. A file that is malformed, or whose columns do not match
    /// the dataset's, is refused with the line and column of its first error and writes nothing.
    pub async fn upload_dataset<S, B, E>(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
        format: UploadFormat,
        body: S,
    ) -> Result<UploadOutcome>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let action = Action::DatasetManage;
        let resource = Resource::Organisation(org_id);
        let name = DatasetName::parse(name)?;
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            self.upload_into(call, org_id, name, format, body, None)
                .await
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// Uploads rows into a coalition's pooled dataset for a caller already authorized: every row
    /// gets `stamp`'s column set to its value (the contributing member), which the file may not hold.
    pub(crate) async fn upload_stamped<S, B, E>(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: DatasetName,
        format: UploadFormat,
        body: S,
        stamp: Stamp,
    ) -> Result<UploadOutcome>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        self.upload_into(call, org_id, name, format, body, Some(stamp))
            .await
    }

    async fn upload_into<S, B, E>(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: DatasetName,
        format: UploadFormat,
        body: S,
        stamp: Option<Stamp>,
    ) -> Result<UploadOutcome>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let engine = self.datasets_engine()?;
        let staged = engine.stage(format, body).await?;
        let _writing = self.inner.dataset_locks.lock(org_id, &name).await;
        match self.store().dataset_by_name(org_id, &name).await? {
            None => {
                self.create_dataset(call, engine, org_id, name, &staged, stamp.as_ref())
                    .await
            }
            Some(dataset) => {
                self.append_dataset(call, engine, dataset, &staged, stamp.as_ref())
                    .await
            }
        }
    }

    async fn create_dataset(
        &self,
        call: &Call<'_>,
        engine: &Datasets,
        org_id: OrgId,
        name: DatasetName,
        staged: &StagedUpload,
        stamp: Option<&Stamp>,
    ) -> Result<UploadOutcome> {
        let checked = engine.check(staged, None).await?;
        let now = Timestamp::now();
        let mut schema = checked.schema.clone();
        let mut classes = ColumnClasses::default();
        if let Some(stamp) = stamp {
            if checked.schema.column(&stamp.column).is_some() {
                return Err(Error::invalid(
                    "file",
                    format!(
                        "the file has a column `{}`; the platform sets it to the contributing member, so leave it out",
                        stamp.column
                    ),
                ));
            }
            schema.columns.push(agora_domain::dataset::ColumnSchema {
                name: stamp.column.clone(),
                column_type: ColumnType::String,
            });
            classes = ColumnClasses::parse(
                &schema,
                &[ColumnClassing {
                    column: stamp.column.clone(),
                    class: ColumnClass::Contributor,
                }],
            )?;
        }
        let mut dataset = Dataset {
            id: DatasetId::new(),
            org_id,
            name,
            status: DatasetStatus::Active,
            current_version: 1,
            schema,
            classes,
            created_at: now,
            updated_at: now,
        };
        let version = engine
            .create_stamped(&TableLocation::of(&dataset), staged, &checked, stamp)
            .await?;
        dataset.current_version = version;
        let version = self.new_version(call, version, &checked, staged, now)?;
        let mut tx = self.store().write().await?;
        tx.insert_dataset(&dataset, &version).await?;
        let outcome = UploadOutcome {
            created: true,
            dataset: DatasetView::new(&dataset),
            version,
        };
        self.commit_dataset_change(
            tx,
            call,
            &dataset,
            "dataset.created",
            Some(&outcome.version),
            &outcome,
        )
        .await?;
        Ok(outcome)
    }

    async fn append_dataset(
        &self,
        call: &Call<'_>,
        engine: &Datasets,
        mut dataset: Dataset,
        staged: &StagedUpload,
        stamp: Option<&Stamp>,
    ) -> Result<UploadOutcome> {
        // A pooled dataset's file holds every column but the one the platform stamps.
        let mut expected = dataset.schema.clone();
        if let Some(stamp) = stamp {
            if expected.column(&stamp.column).is_none() {
                return Err(Error::Conflict(format!(
                    "dataset `{}` has no `{}` column: it is not a pooled dataset",
                    dataset.name, stamp.column
                )));
            }
            expected
                .columns
                .retain(|column| column.name != stamp.column);
        }
        let checked = engine.check(staged, Some(&expected)).await?;
        let now = Timestamp::now();
        let previous = dataset.current_version;
        let version = engine
            .append_stamped(
                &TableLocation::of(&dataset),
                previous,
                staged,
                &checked,
                stamp,
            )
            .await?;
        let version = self.new_version(call, version, &checked, staged, now)?;
        let mut tx = self.store().write().await?;
        tx.append_dataset_version(dataset.id, previous, &version)
            .await?;
        dataset.current_version = version.version;
        dataset.updated_at = now;
        let outcome = UploadOutcome {
            created: false,
            dataset: DatasetView::new(&dataset),
            version,
        };
        self.commit_dataset_change(
            tx,
            call,
            &dataset,
            "dataset.appended",
            Some(&outcome.version),
            &outcome,
        )
        .await?;
        Ok(outcome)
    }

    fn new_version(
        &self,
        call: &Call<'_>,
        version: i64,
        checked: &Checked,
        staged: &StagedUpload,
        at: Timestamp,
    ) -> Result<DatasetVersion> {
        Ok(DatasetVersion {
            version,
            rows_added: i64::try_from(checked.rows)
                .map_err(|_| Error::Internal("row count out of range".into()))?,
            bytes: i64::try_from(staged.bytes())
                .map_err(|_| Error::Internal("byte count out of range".into()))?,
            format: staged.format(),
            created_at: at,
            created_by: call.actor.user_id,
        })
    }

    /// Commits a dataset change with its audit entry and event.
    async fn commit_dataset_change<T: Serialize>(
        &self,
        tx: WriteTx,
        call: &Call<'_>,
        dataset: &Dataset,
        event_type: &'static str,
        version: Option<&DatasetVersion>,
        response: &T,
    ) -> Result<()> {
        let resource = Resource::Organisation(dataset.org_id);
        let data = dataset_event_data(dataset, version);
        let done = Done {
            action: Action::DatasetManage.as_str(),
            resource: &resource,
            detail: serde_json::json!({ "event": event_type, "dataset": data.clone() }),
            events: vec![event(event_type, dataset.id, Some(dataset.org_id), data)],
        };
        self.commit(tx, None, call, done, response).await
    }

    /// An organisation's live dataset by name, for a caller already authorized.
    async fn live_dataset(&self, org_id: OrgId, name: &str) -> Result<Dataset> {
        let name = DatasetName::parse(name)?;
        self.store()
            .dataset_by_name(org_id, &name)
            .await?
            .ok_or_else(|| Error::not_found(format!("dataset `{name}`")))
    }

    async fn authorize_read(&self, call: &Call<'_>, org_id: OrgId) -> Result<Resource> {
        let resource = Resource::Organisation(org_id);
        self.authorize(call, Action::DatasetRead, &resource, &Context::default())
            .await?;
        Ok(resource)
    }

    /// An organisation's datasets in name order.
    pub async fn datasets(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<DatasetView>> {
        self.authorize_read(call, org_id).await?;
        let limit = self.page_limit(limit)?;
        let after = cursor.map(DatasetName::parse).transpose()?;
        let datasets = self
            .store()
            .datasets(org_id, after.as_ref(), limit + 1)
            .await?;
        let views = datasets.iter().map(DatasetView::new).collect();
        Ok(Page::from_overfetch(views, limit, |view: &DatasetView| {
            view.name.to_string()
        }))
    }

    /// One dataset: its schema, classes and current version.
    pub async fn dataset(&self, call: &Call<'_>, org_id: OrgId, name: &str) -> Result<DatasetView> {
        self.authorize_read(call, org_id).await?;
        Ok(DatasetView::new(&self.live_dataset(org_id, name).await?))
    }

    /// A dataset's versions, newest first.
    pub async fn dataset_versions(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<DatasetVersion>> {
        self.authorize_read(call, org_id).await?;
        let limit = self.page_limit(limit)?;
        let dataset = self.live_dataset(org_id, name).await?;
        let before = cursor
            .map(|cursor| {
                cursor
                    .parse::<i64>()
                    .map_err(|_| crate::orgs::invalid_cursor())
            })
            .transpose()?;
        let versions = self
            .store()
            .dataset_versions(dataset.id, before, limit + 1)
            .await?;
        Ok(Page::from_overfetch(versions, limit, |version| {
            version.version.to_string()
        }))
    }

    /// Up to `limit` rows of a dataset as of `version` (its current one by default).
    pub async fn dataset_rows(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
        version: Option<i64>,
        limit: Option<u32>,
    ) -> Result<DatasetRows> {
        self.authorize_read(call, org_id).await?;
        let dataset = self.live_dataset(org_id, name).await?;
        let version = version.unwrap_or(dataset.current_version);
        if version < 1 || version > dataset.current_version {
            return Err(Error::not_found(format!(
                "version {version} of dataset `{}` (it has versions 1 to {})",
                dataset.name, dataset.current_version
            )));
        }
        let limit = match limit {
            None => 100,
            Some(0) => return Err(Error::invalid("limit", "must be at least 1")),
            Some(limit) if limit as usize > DATASET_ROWS_MAX => {
                return Err(Error::invalid(
                    "limit",
                    format!("must be at most {DATASET_ROWS_MAX}"),
                ));
            }
            Some(limit) => limit as usize,
        };
        let rows = self
            .datasets_engine()?
            .rows(&TableLocation::of(&dataset), version, limit)
            .await?;
        Ok(DatasetRows {
            version,
            columns: rows.columns,
            rows: rows.rows,
        })
    }

    /// Gives the dataset's columns their classes, replacing the earlier ones; a column left out
    /// is unclassified, which means `blocked`.
    pub async fn classify_dataset(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
        classings: Vec<ColumnClassing>,
    ) -> Result<DatasetView> {
        let action = Action::DatasetManage;
        let resource = Resource::Organisation(org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = self
            .set_dataset_classes(call, org_id, name, classings)
            .await;
        self.audited(call, action, &resource, result).await
    }

    /// Classifies a dataset's columns for a caller already authorized.
    pub(crate) async fn set_dataset_classes(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
        classings: Vec<ColumnClassing>,
    ) -> Result<DatasetView> {
        let dataset_name = DatasetName::parse(name)?;
        let _writing = self.inner.dataset_locks.lock(org_id, &dataset_name).await;
        let mut dataset = self.live_dataset(org_id, name).await?;
        let classes = ColumnClasses::parse(&dataset.schema, &classings)?;
        let now = Timestamp::now();
        let mut tx = self.store().write().await?;
        tx.set_dataset_classes(dataset.id, &classes, now).await?;
        dataset.classes = classes;
        dataset.updated_at = now;
        let view = DatasetView::new(&dataset);
        self.commit_dataset_change(tx, call, &dataset, "dataset.classified", None, &view)
            .await?;
        Ok(view)
    }

    /// Deletes a dataset: it is no longer listed, read or queried, and its name is free again.
    /// Its event, `dataset.deleted`, is what suspends the protocols that use it.
    pub async fn delete_dataset(
        &self,
        call: &Call<'_>,
        org_id: OrgId,
        name: &str,
    ) -> Result<DatasetView> {
        let action = Action::DatasetManage;
        let resource = Resource::Organisation(org_id);
        self.authorize(call, action, &resource, &Context::default())
            .await?;
        let result = async {
            let dataset_name = DatasetName::parse(name)?;
            let _writing = self.inner.dataset_locks.lock(org_id, &dataset_name).await;
            let mut dataset = self.live_dataset(org_id, name).await?;
            let now = Timestamp::now();
            let mut tx = self.store().write().await?;
            tx.delete_dataset(dataset.id, now).await?;
            self.on_dataset_deleted(&mut tx, &dataset).await?;
            dataset.status = DatasetStatus::Deleted;
            dataset.updated_at = now;
            let view = DatasetView::new(&dataset);
            self.commit_dataset_change(tx, call, &dataset, "dataset.deleted", None, &view)
                .await?;
            Ok(view)
        }
        .await;
        self.audited(call, action, &resource, result).await
    }

    /// The hook a deletion runs inside its transaction: protocols that use the dataset are
    /// suspended, so that no query can reach a deleted dataset and the suspension commits with
    /// the deletion or not at all.
    async fn on_dataset_deleted(&self, tx: &mut WriteTx, dataset: &Dataset) -> Result<()> {
        let suspended = self.suspend_protocols_using(tx, dataset).await?;
        tracing::info!(dataset = %dataset.id, name = %dataset.name, protocols = suspended.len(), "dataset deleted; protocols using it suspended");
        Ok(())
    }
}
