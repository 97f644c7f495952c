-- Datasets: the metadata of versioned tables an organisation owns. The rows themselves live in
-- Delta Lake tables in the data folder (crate `agora-data`); this is what the engine needs to
-- find, classify and govern them. Times are microseconds since the epoch.

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'deleted')),
    -- The newest version, equal to the Delta table's version; versions count from 1.
    current_version BIGINT NOT NULL CHECK (current_version >= 1),
    -- `DatasetSchema` and `ColumnClasses` as JSON text.
    schema_json TEXT NOT NULL,
    classes_json TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    deleted_at_us BIGINT
);
-- A name is taken once per organisation among its live datasets; deleting one frees its name.
CREATE UNIQUE INDEX datasets_live_name ON datasets (org_id, name) WHERE status = 'active';
CREATE INDEX datasets_by_org ON datasets (org_id, status, name);

-- What each upload added: one row per Delta version.
CREATE TABLE dataset_versions (
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    version BIGINT NOT NULL CHECK (version >= 1),
    rows_added BIGINT NOT NULL CHECK (rows_added >= 0),
    bytes BIGINT NOT NULL CHECK (bytes >= 0),
    format TEXT NOT NULL CHECK (format IN ('csv', 'json_lines', 'parquet')),
    created_at_us BIGINT NOT NULL,
    created_by TEXT,
    PRIMARY KEY (dataset_id, version)
);
