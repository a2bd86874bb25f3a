//! Redlite: Redis data types and commands over an ordinary SQLite file.
//!
//! The map:
//! - [`command`]: the declarative command table and [`command::execute`], the one entry
//!   point every front end uses (SQL's `redis()`, the RESP server).
//! - [`db`]: the keyspace: per-command [`db::Ctx`], key lookups, expiry rules.
//! - One module per data type, shaped alike (storage functions, then `cmd_*` handlers):
//!   [`keys`] (generic key commands), [`string`], [`hash`], [`list`], [`set`], [`zset`].
//!   Each declares its command rows (`COMMANDS`) and table-valued functions (`TABLE_FNS`).
//!   [`zrank`] keeps the counts that give ranks in large sorted sets.
//! - [`scan`]: the cursor scheme HSCAN, SSCAN and ZSCAN share (collections stored one row
//!   per element also share [`set::Table`] for random picks).
//! - [`history`]: per-key history, recorded by the executor, and the HISTORY command.
//! - [`vtab`]: the one generic virtual table behind every table-valued function.
//! - [`reply`], [`error`]: what a command returns, and Redis's exact error text.
//! - [`value`]: canonical SQL values for byte strings (TEXT when UTF-8 without NUL).
//! - [`args`], [`num`], [`glob`]: argument cursor, Redis's number rules, Redis's glob.
//! - [`clock`]: time from one place, so tests control it.
//! - [`schema`]: schema and migrations (`sql/*.sql`).
//! - [`sql`]: registration of the SQL functions and table-valued functions.
//!
//! There is no RESP and no FFI here: the server (`server/`) and the loadable extension
//! (`ext/`) are thin front ends over this crate.

pub mod args;
pub mod blocking;
pub mod clock;
pub mod command;
pub mod db;
pub mod error;
pub mod glob;
pub mod hash;
pub mod history;
pub mod history_config;
pub mod history_ends;
pub mod history_table;
pub mod keys;
pub mod list;
pub mod num;
pub mod reply;
pub mod scan;
pub mod schema;
pub mod set;
pub mod sql;
pub mod statement_cache;
pub mod stream;
pub mod string;
pub mod value;
pub mod vtab;
pub mod zrank;
pub mod zset;

pub use clock::{Clock, ManualClock, SystemClock};
pub use db::Session;
pub use error::{Error, Result};
pub use reply::Reply;
pub use sql::{register, register_with_clock};

/// The Redlite version, as `redlite_version()` and `INFO` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
