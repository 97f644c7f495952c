//! Governed SQL: protocol documents, and a DataFusion engine that checks and rewrites every
//! consumer's plan so that its output obeys the protocols, whatever SQL is written.
//!
//! The app calls [`GovernedEngine::run`] with the consumer, its purpose and SQL, the active
//! protocols that name it, and the dataset versions as DataFusion tables; it gets a result or a
//! [`Refusal`] naming the rule. No HTTP, no metadata database: those stay in the app.

mod check;
pub mod engine;
pub mod error;
pub mod history;
pub mod output;
pub mod protocol;
mod rewrite;

pub use engine::{
    Dataset, GovernedEngine, PreparedQuery, ProtocolRef, QueryLimits, QueryOutput, QueryReport,
    QueryRequest, RemainderReport, SuppressedGroups,
};
pub use error::{Error, Refusal, Result};
pub use history::{MemoryHistory, RecordedGroup, ResultHistory};
pub use output::{ResultColumn, ResultSet};
pub use protocol::{
    AggregateName, AnalysisType, ColumnClass, ColumnRule, ContentHash, DatasetRule, DatasetSchema,
    JoinOperator, JoinRules, OutputConstraints, Protocol, ProtocolState, ProtocolVersion, Quotas,
    Transition, Validity, strictest,
};
pub use rewrite::SuppressionReason;
