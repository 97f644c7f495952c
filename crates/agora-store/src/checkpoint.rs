//! The SQLite WAL checkpointer: a thread that copies committed pages from the write-ahead log back
//! into the database file, so that no commit pays for it.
//!
//! With `wal_autocheckpoint` at its default, the commit that pushes the WAL past 1,000 pages runs
//! the checkpoint itself: it writes every page back and fsyncs the database file before it
//! answers, so a large ledger batch paid for about two fsyncs and twice its writes. The store's
//! connections turn that off, and this thread runs a passive checkpoint every
//! [`CHECKPOINT_INTERVAL_MS`]: passive never waits for a lock and never blocks a writer or a
//! reader, and once it has copied the whole WAL the next writer starts the log over from the
//! beginning, which bounds its size to about what is committed between two checkpoints.
//! Durability does not depend on it: a commit is durable once its WAL frames are synced.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use agora_domain::{Error, Result};

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_INTERVAL_MS: u64 = 100;

/// The checkpointer thread's handle; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    /// Never sent on: its drop disconnects the channel, which tells the thread to stop.
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Opens its own connection to the file and starts the thread.
    pub(crate) fn start(path: &Path) -> Result<Self> {
        let connection = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            Error::Unavailable(format!(
                "cannot open {} for WAL checkpoints: {e}",
                path.display()
            ))
        })?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("agora-sqlite-checkpoint".into())
            .spawn(move || run(connection, stopped))
            .map_err(|e| Error::Internal(format!("cannot start the WAL checkpointer: {e}")))?;
        Ok(Self { _stop: stop })
    }
}

fn run(connection: rusqlite::Connection, stopped: mpsc::Receiver<()>) {
    let interval = Duration::from_millis(CHECKPOINT_INTERVAL_MS);
    // Only a disconnection ends the wait early: the store is gone.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
        let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        });
        if let Err(error) = checkpoint {
            // A busy or locked database is retried at the next tick; anything else is logged.
            tracing::warn!(%error, "the SQLite WAL checkpoint failed; retrying");
        }
    }
}
