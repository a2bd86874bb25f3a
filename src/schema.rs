//! Schema creation and migrations, tracked with `PRAGMA user_version`.
//!
//! `sql/schema.sql` is version 1; each later change adds `sql/migrations/NNNN_name.sql` and
//! a row to `MIGRATIONS`; files are applied in order, each in the same transaction as
//! the `user_version` bump, so a crash leaves either the old or the new schema.

use rusqlite::Connection;

use crate::error::Result;

/// The schema version this build writes.
pub const VERSION: i64 = 8;

/// The base schema, then the migrations after it: (version reached, SQL). A new file runs
/// them all (each later one is then a no-op on empty tables).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../sql/schema.sql")),
    // Streams' `redlite_keys.len`, left at 0 by version 1, counted once.
    (2, include_str!("../sql/migrations/0002_stream_len.sql")),
    // Rank rows of large sorted sets (their layout changed again in version 5).
    (3, include_str!("../sql/migrations/0003_zset_ranks.sql")),
    // Deleted keys' rows go on every connection, foreign keys on or off (triggers).
    (
        4,
        include_str!("../sql/migrations/0004_delete_triggers.sql"),
    ),
    // Rank rows become a tree of counts; every large set's rows are rebuilt.
    (5, include_str!("../sql/migrations/0005_zset_rank_tree.sql")),
    // History entries clustered by key, numbered per key (`seq`).
    (6, include_str!("../sql/migrations/0006_history_by_key.sql")),
    // A string's row carries its key's expiry: GET reads one row.
    (7, include_str!("../sql/migrations/0007_string_expiry.sql")),
    // ...and the writes to its value alone: SET writes one row.
    (8, include_str!("../sql/migrations/0008_string_version.sql")),
];

/// The last version that changed the rank rows' layout: a file below it gets the rows of
/// its large sorted sets built once its migrations ran.
const RANKS_CHANGED: i64 = 5;

/// The version that clusters history by key. Its file rebuilds the table; a file whose
/// table is already clustered (its version number set back by hand) skips it.
const HISTORY_BY_KEY: i64 = 6;

/// Whether `redlite_history` already has the clustered layout (a `seq` column).
fn history_by_key(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('redlite_history') WHERE name = 'seq'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

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
    let start: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for &(version, sql) in MIGRATIONS {
        if version > start && !(version == HISTORY_BY_KEY && history_by_key(conn)?) {
            conn.execute_batch(sql)?;
        }
    }
    if start < RANKS_CHANGED {
        crate::zrank::build_missing(conn)?;
    }
    conn.execute_batch(VIEWS)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}
