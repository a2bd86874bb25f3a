//! Loads the built `dist/libredlite.so` into a current SQLite (rusqlite's bundled copy),
//! the counterpart of the Python and shell tests, which run on Debian's SQLite 3.40.
//! `make test` builds dist/ first; this test fails (it does not skip) when it is missing.

use rusqlite::{Connection, LoadExtensionGuard};

fn load(conn: &Connection) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dist/libredlite");
    assert!(
        std::path::Path::new(&format!("{path}.so")).exists(),
        "{path}.so is missing: run `make` first"
    );
    // SAFETY: loading our own extension, built from this repository.
    unsafe {
        let _guard = LoadExtensionGuard::new(conn).unwrap();
        conn.load_extension(path, None::<&str>).unwrap();
    }
}

#[test]
fn loads_into_current_sqlite() {
    let conn = Connection::open_in_memory().unwrap();
    load(&conn);
    assert!(
        rusqlite::version_number() >= 3_045_000,
        "bundled SQLite should be current"
    );
    let v: String = conn
        .query_row("SELECT redis_set('k', 'v')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "OK");
    let (get, n): (String, i64) = conn
        .query_row(
            "SELECT redis_get('k'), redis_incrby('n', 41) + 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((get.as_str(), n), ("v", 42));
    let err = conn
        .query_row("SELECT redis_incr('k')", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn a_file_written_by_the_core_reads_through_the_extension() {
    let dir = std::env::temp_dir().join(format!("redlite-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shared.db");
    let _ = std::fs::remove_file(&path);
    {
        let conn = Connection::open(&path).unwrap();
        redlite::register(&conn).unwrap();
        conn.query_row("SELECT redis_set('from', 'core')", [], |_| Ok(()))
            .unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    load(&conn);
    let v: String = conn
        .query_row("SELECT redis_get('from')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "core");
    std::fs::remove_dir_all(&dir).unwrap();
}
