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
//! Listeners:
//! - WATCH on keys that were absent when watched ([`crate::multi::WatchRegistry`]): a
//!   version stamp cannot tell "absent" from "created, then deleted again", so such keys
//!   are re-checked here after every write that touches them.
//! - Blocked clients (BLPOP, BZPOPMIN, XREAD BLOCK, ...; [`crate::blocking::Blocked`]):
//!   the scopes that concern a waiter are collected, and the writer serves those waiters
//!   right after the command, inside the same transaction; their replies, like every
//!   reply of the group commit, leave only after its COMMIT.
//!
//! Writes made by other processes leave no signal; they are seen through version stamps
//! (WATCH) or `PRAGMA data_version` (blocked clients).

use rusqlite::Connection;

use redlite::command::Spec;

use crate::blocking::{Blocked, Ready};
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
        // Movable keys (Redis's `getkeys_proc`): the table has no positions for them.
        "lmpop" | "zmpop" => numkeys_keys(argv, 1, db),
        "blmpop" | "bzmpop" => numkeys_keys(argv, 2, db),
        "xreadgroup" => stream_keys(argv, db),
        // XGROUP, VACUUM, ...: no key positions, so any key of the database may have
        // changed.
        _ if spec.first_key <= 0 => vec![Scope::Db(db)],
        _ => spec
            .keys(argv)
            .into_iter()
            .map(|k| Scope::Key(db, k))
            .collect(),
    }
}

/// `numkeys key [key ...]` with numkeys at `argv[at]` (LMPOP, BLMPOP, ZMPOP, BZMPOP); the
/// whole database when it does not parse (the command then failed anyway).
fn numkeys_keys(argv: &[Vec<u8>], at: usize, db: i64) -> Vec<Scope<'_>> {
    let n = argv
        .get(at)
        .and_then(|a| redlite::num::parse_i64(a))
        .and_then(|n| usize::try_from(n).ok());
    match n {
        Some(n) if at + n < argv.len() => argv[at + 1..=at + n]
            .iter()
            .map(|k| Scope::Key(db, k.as_slice()))
            .collect(),
        _ => vec![Scope::Db(db)],
    }
}

/// XREADGROUP's keys: the first half of what follows STREAMS, found as Redis's
/// `xreadGetKeys` does (options skipped with their arguments).
fn stream_keys(argv: &[Vec<u8>], db: i64) -> Vec<Scope<'_>> {
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i].to_ascii_lowercase();
        match arg.as_slice() {
            b"block" | b"count" => i += 2,
            b"group" => i += 3,
            b"noack" => i += 1,
            b"streams" => {
                let rest = &argv[i + 1..];
                return rest[..rest.len() / 2]
                    .iter()
                    .map(|k| Scope::Key(db, k.as_slice()))
                    .collect();
            }
            _ => break,
        }
    }
    vec![Scope::Db(db)]
}

/// Everyone the writer tells about writes. Owned by the engine, shared with connections.
#[derive(Default)]
pub struct KeySignals {
    /// WATCHed keys that were absent when watched.
    pub watches: WatchRegistry,
    /// Clients waiting in blocking commands.
    pub blocked: Blocked,
}

impl KeySignals {
    /// True when nobody listens: the writer's hot path then skips working out what a
    /// write touched.
    pub fn idle(&self) -> bool {
        self.watches.is_empty() && self.blocked.is_empty()
    }

    /// Write command `argv` (name first) succeeded in database `db`, inside the writer's
    /// open transaction, at `now_ms`, by whoever holds the writer's connection.
    pub fn written(&self, conn: &Connection, now_ms: i64, spec: &Spec, db: i64, argv: &[Vec<u8>]) {
        if self.idle() {
            return;
        }
        let scopes = touched(spec, db, argv);
        self.watches.touched(conn, now_ms, &scopes);
        if !self.blocked.is_empty() {
            for scope in &scopes {
                self.blocked.touched(match scope {
                    Scope::Key(db, key) => Ready::Key(*db, key.to_vec()),
                    Scope::Db(db) => Ready::Db(*db),
                    Scope::All => Ready::All,
                });
            }
        }
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
        assert_eq!(scopes("lmpop 1 l LEFT", 5), vec![Scope::Key(5, b"l")]);
        assert_eq!(
            scopes("blmpop 0 2 a b LEFT COUNT 2", 1),
            vec![Scope::Key(1, b"a"), Scope::Key(1, b"b")]
        );
        assert_eq!(scopes("zmpop 5 a MIN", 0), vec![Scope::Db(0)]);
        assert_eq!(
            scopes("xreadgroup GROUP g c COUNT 1 BLOCK 0 STREAMS s t > >", 2),
            vec![Scope::Key(2, b"s"), Scope::Key(2, b"t")]
        );
        assert_eq!(
            scopes("blmove a b LEFT RIGHT 0", 0),
            vec![Scope::Key(0, b"a"), Scope::Key(0, b"b")]
        );
    }
}
