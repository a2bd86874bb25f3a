//! Schema creation and migrations, tracked with `PRAGMA user_version`.
//!
//! `sql/schema.sql` is version 1; each later change adds `sql/migrations/NNNN_name.sql` and
//! a row to `MIGRATIONS`; files are applied in order, each in the same transaction as
//! the `user_version` bump, so a crash leaves either the old or the new schema.

use rusqlite::Connection;

use crate::error::Result;

/// The schema version this build writes.
pub const VERSION: i64 = 4;

/// The base schema, then the migrations after it: (version reached, SQL). A new file runs
/// them all (each later one is then a no-op on empty tables).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../sql/schema.sql")),
    // Streams' `redlite_keys.len`, left at 0 by version 1, counted once.
    (2, include_str!("../sql/migrations/0002_stream_len.sql")),
    // Rank rows of large sorted sets; the sets already large get theirs built after it.
    (3, include_str!("../sql/migrations/0003_zset_ranks.sql")),
    // Deleted keys' rows go on every connection, foreign keys on or off (triggers).
    (
        4,
        include_str!("../sql/migrations/0004_delete_triggers.sql"),
    ),
];

const VIEWS: &str = include_str!("../sql/views.sql");

/// Brings the database up to [`VERSION`]. Cheap when it is already there (one pragma).
///
/// A file written by a newer Redlite is refused rather than misread.
pub fn ensure(conn: &Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == VERSION {
        return Ok(());
    }
    if current > VERSION {
        return Err(crate::Error::err(format!(
            "database schema version {current} is newer than this Redlite ({VERSION})"
        )));
    }
    let autocommit = conn.is_autocommit();
    if current == 0 && autocommit {
        // A new Redlite database: WAL lets readers and one writer work at once, across
        // processes. (No effect on in-memory databases; not allowed inside a transaction.)
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    if autocommit {
        conn.execute_batch("BEGIN IMMEDIATE")?;
    }
    let result = migrate(conn);
    if autocommit {
        match result {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    result
}

fn migrate(conn: &Connection) -> Result<()> {
    // Re-read under the write lock: another process may have migrated meanwhile.
    let mut current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for &(version, sql) in MIGRATIONS {
        if version > current {
            conn.execute_batch(sql)?;
            if version == 3 {
                crate::zrank::build_missing(conn)?;
            }
            current = version;
        }
    }
    conn.execute_batch(VIEWS)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}
