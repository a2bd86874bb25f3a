//! Keyspace signals: which keys a write touched, and who must hear of it before the next
//! command runs.
//!
//! The writer calls [`KeySignals::written`] after every write command that succeeded, on
//! the writer thread and inside the group commit's open transaction, so a listener sees
//! exactly the state the next command on the writer will see, and nothing can run in
//! between. The touched keys come from the command table's key positions
//! ([`Spec::keys`]), widened to whole databases for the commands whose keys the table
//! cannot locate ([`touched`]).
//!
//! Listeners today:
//! - WATCH on keys that were absent when watched ([`crate::multi::WatchRegistry`]): a
//!   version stamp cannot tell "absent" from "created, then deleted again", so such keys
//!   are re-checked here after every write that touches them.
//!
//! Blocking commands (BLPOP, BZPOPMIN, XREAD BLOCK, ...) are meant to be the next: collect
//! the [`Scope`]s of a batch in [`KeySignals::written`] and wake the clients waiting on
//! those keys after the writer's COMMIT (not before, or a woken client could read from a
//! snapshot that lacks the write). Writes made by other processes leave no signal; they
//! are seen through version stamps (WATCH) or `PRAGMA data_version` (waiters).

use rusqlite::Connection;

use redlite::command::Spec;

use crate::multi::WatchRegistry;

/// What one write may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    /// This key of this database.
    Key(i64, &'a [u8]),
    /// Any key of this database (FLUSHDB, SWAPDB, commands without key positions).
    Db(i64),
    /// Any key of any database (FLUSHALL).
    All,
}

/// The scopes a successful write command `argv` (name first), run in database `db`, may
/// have changed. Conservative: a wider scope only costs listeners a re-check.
pub fn touched<'a>(spec: &Spec, db: i64, argv: &'a [Vec<u8>]) -> Vec<Scope<'a>> {
    let db_arg = |i: usize| argv.get(i).and_then(|a| redlite::num::parse_i64(a));
    match spec.name {
        "flushall" => vec![Scope::All],
        "flushdb" => vec![Scope::Db(db)],
        "swapdb" => [db_arg(1), db_arg(2)]
            .into_iter()
            .flatten()
            .map(Scope::Db)
            .collect(),
        // COPY src dst DB n writes dst in database n.
        "copy" => {
            let target = argv
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"db"))
                .and_then(|i| db_arg(i + 1))
                .unwrap_or(db);
            let mut scopes = Vec::with_capacity(2);
            if let Some(dst) = argv.get(2) {
                scopes.push(Scope::Key(target, dst.as_slice()));
            }
            scopes
        }
        // LMPOP, ZMPOP, XGROUP, XREADGROUP, VACUUM, ...: the table has no key positions
        // for them, so any key of the database may have changed.
        _ if spec.first_key <= 0 => vec![Scope::Db(db)],
        _ => spec
            .keys(argv)
            .into_iter()
            .map(|k| Scope::Key(db, k))
            .collect(),
    }
}

/// Everyone the writer tells about writes. Owned by the engine, shared with connections.
#[derive(Default)]
pub struct KeySignals {
    /// WATCHed keys that were absent when watched.
    pub watches: WatchRegistry,
}

impl KeySignals {
    /// True when nobody listens: the writer's hot path then skips working out what a
    /// write touched. A new listener (blocked clients) must make this false while it
    /// has anyone waiting.
    pub fn idle(&self) -> bool {
        self.watches.is_empty()
    }

    /// Write command `argv` (name first) succeeded in database `db`, inside the writer's
    /// open transaction, at `now_ms`. Writer thread only.
    pub fn written(&self, conn: &Connection, now_ms: i64, spec: &Spec, db: i64, argv: &[Vec<u8>]) {
        if self.idle() {
            return;
        }
        let scopes = touched(spec, db, argv);
        self.watches.touched(conn, now_ms, &scopes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redlite::command;

    fn argv(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    fn scopes(line: &str, db: i64) -> Vec<Scope<'static>> {
        let args = Box::leak(Box::new(argv(line)));
        let spec = command::lookup(&args[0]).unwrap();
        touched(spec, db, args)
    }

    #[test]
    fn key_positions_and_wider_scopes() {
        assert_eq!(scopes("set k v", 3), vec![Scope::Key(3, b"k")]);
        assert_eq!(
            scopes("mset a 1 b 2", 0),
            vec![Scope::Key(0, b"a"), Scope::Key(0, b"b")]
        );
        assert_eq!(scopes("flushdb", 2), vec![Scope::Db(2)]);
        assert_eq!(scopes("flushall", 2), vec![Scope::All]);
        assert_eq!(scopes("swapdb 1 4", 0), vec![Scope::Db(1), Scope::Db(4)]);
        assert_eq!(scopes("copy a b DB 7", 0), vec![Scope::Key(7, b"b")]);
        assert_eq!(scopes("copy a b", 1), vec![Scope::Key(1, b"b")]);
        assert_eq!(scopes("lmpop 1 l LEFT", 5), vec![Scope::Db(5)]);
    }
}
