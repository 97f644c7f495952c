//! Datasets' metadata: name per organisation, owner, schema, column classes, current version,
//! status, and one row per version. The rows themselves are Delta tables that `agora-data` keeps.

use agora_domain::dataset::{
    ColumnClasses, Dataset, DatasetName, DatasetSchema, DatasetStatus, DatasetVersion,
};
use agora_domain::{DatasetId, Error, OrgId, Result, Timestamp};
use sqlx::any::AnyRow;

use crate::{Store, WriteTx, column, db_error, get, optional_column};

const DATASET_COLUMNS: &str = "id, org_id, name, status, current_version, schema_json, classes_json, \
     created_at_us, updated_at_us";
const VERSION_COLUMNS: &str = "version, rows_added, bytes, format, created_at_us, created_by";

fn json_column<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> Result<T> {
    let text: String = get(row, name)?;
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("column {name}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("dataset metadata: {e}")))
}

fn dataset_from_row(row: &AnyRow) -> Result<Dataset> {
    let name: String = get(row, "name")?;
    Ok(Dataset {
        id: column(row, "id")?,
        org_id: column(row, "org_id")?,
        name: DatasetName::parse(&name)
            .map_err(|e| Error::Internal(format!("column name holds `{name}`: {e}")))?,
        status: column(row, "status")?,
        current_version: get(row, "current_version")?,
        schema: json_column::<DatasetSchema>(row, "schema_json")?,
        classes: json_column::<ColumnClasses>(row, "classes_json")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        updated_at: Timestamp::from_micros(get(row, "updated_at_us")?),
    })
}

fn version_from_row(row: &AnyRow) -> Result<DatasetVersion> {
    Ok(DatasetVersion {
        version: get(row, "version")?,
        rows_added: get(row, "rows_added")?,
        bytes: get(row, "bytes")?,
        format: column(row, "format")?,
        created_at: Timestamp::from_micros(get(row, "created_at_us")?),
        created_by: optional_column(row, "created_by")?,
    })
}

impl Store {
    /// An organisation's live dataset of that name.
    pub async fn dataset_by_name(
        &self,
        org_id: OrgId,
        name: &DatasetName,
    ) -> Result<Option<Dataset>> {
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE org_id = $1 AND name = $2 AND status = 'active'"
        );
        let row = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(name.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(db_error)?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    /// An organisation's live datasets in name order, those after `after` when given, at most `limit`.
    pub async fn datasets(
        &self,
        org_id: OrgId,
        after: Option<&DatasetName>,
        limit: u32,
    ) -> Result<Vec<Dataset>> {
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE org_id = $1 AND status = 'active' AND name > $2 \
             ORDER BY name LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(after.map(DatasetName::as_str).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// A dataset's versions, newest first, those older than `before` when given, at most `limit`.
    pub async fn dataset_versions(
        &self,
        dataset_id: DatasetId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DatasetVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions WHERE dataset_id = $1 AND version < $2 \
             ORDER BY version DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(dataset_id.to_string())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(db_error)?;
        rows.iter().map(version_from_row).collect()
    }
}

impl WriteTx {
    /// Inserts a new dataset with its first version. A live dataset of the same name in the same
    /// organisation answers `Conflict`.
    pub async fn insert_dataset(
        &mut self,
        dataset: &Dataset,
        first: &DatasetVersion,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO datasets (id, org_id, name, status, current_version, schema_json, classes_json, \
             created_at_us, updated_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(dataset.id.to_string())
        .bind(dataset.org_id.to_string())
        .bind(dataset.name.as_str())
        .bind(dataset.status.as_str())
        .bind(dataset.current_version)
        .bind(to_json(&dataset.schema)?)
        .bind(to_json(&dataset.classes)?)
        .bind(dataset.created_at.as_micros())
        .bind(dataset.updated_at.as_micros())
        .execute(self.conn())
        .await
        .map_err(|error| match db_error(error) {
            Error::Conflict(_) => Error::Conflict(format!(
                "the organisation already has a dataset named `{}`; append to it, or delete it first",
                dataset.name
            )),
            other => other,
        })?;
        self.insert_dataset_version(dataset.id, first).await
    }

    /// Reads a live dataset inside the transaction.
    pub async fn dataset_by_name(
        &mut self,
        org_id: OrgId,
        name: &DatasetName,
    ) -> Result<Option<Dataset>> {
        let sql = format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE org_id = $1 AND name = $2 AND status = 'active'"
        );
        let row = sqlx::query(&sql)
            .bind(org_id.to_string())
            .bind(name.as_str())
            .fetch_optional(self.conn())
            .await
            .map_err(db_error)?;
        row.as_ref().map(dataset_from_row).transpose()
    }

    /// Records a new version and makes it current, provided the current version is still
    /// `expected_current` (another append in between answers `Conflict`).
    pub async fn append_dataset_version(
        &mut self,
        dataset_id: DatasetId,
        expected_current: i64,
        version: &DatasetVersion,
    ) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE datasets SET current_version = $1, updated_at_us = $2 \
             WHERE id = $3 AND current_version = $4 AND status = 'active'",
        )
        .bind(version.version)
        .bind(version.created_at.as_micros())
        .bind(dataset_id.to_string())
        .bind(expected_current)
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        if updated.rows_affected() != 1 {
            return Err(Error::Conflict(format!(
                "dataset {dataset_id} changed while this version was written (expected version {expected_current}); retry"
            )));
        }
        self.insert_dataset_version(dataset_id, version).await
    }

    async fn insert_dataset_version(
        &mut self,
        dataset_id: DatasetId,
        version: &DatasetVersion,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO dataset_versions (dataset_id, version, rows_added, bytes, format, created_at_us, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(dataset_id.to_string())
        .bind(version.version)
        .bind(version.rows_added)
        .bind(version.bytes)
        .bind(version.format.as_str())
        .bind(version.created_at.as_micros())
        .bind(version.created_by.map(|user| user.to_string()))
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn set_dataset_classes(
        &mut self,
        dataset_id: DatasetId,
        classes: &ColumnClasses,
        at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE datasets SET classes_json = $1, updated_at_us = $2 WHERE id = $3 AND status = 'active'",
        )
        .bind(to_json(classes)?)
        .bind(at.as_micros())
        .bind(dataset_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Marks a dataset deleted; its name is free again. Its Delta table stays in the data folder.
    pub async fn delete_dataset(&mut self, dataset_id: DatasetId, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE datasets SET status = $1, deleted_at_us = $2, updated_at_us = $2 WHERE id = $3 AND status = 'active'",
        )
        .bind(DatasetStatus::Deleted.as_str())
        .bind(at.as_micros())
        .bind(dataset_id.to_string())
        .execute(self.conn())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
