//! The `redis_history` virtual table and the `redis_history_at(key, ms)` function.
//!
//! ```sql
//! SELECT ts_ms, op, value FROM redis_history WHERE key = 'cart:7' AND ts_ms > 1700000000000;
//! ```
//!
//! Columns: `db, key, version, op, ts_ms, type, value, expire_at`; `value` is the
//! snapshot as JSON. Equality on `key` (with or without `db`) and ranges on `ts_ms` are
//! pushed down: the table reads `redlite_history` through its primary key
//! `(db, key, ts_ms, seq)`, in pages, so a query for one key costs what that key's
//! entries cost, whatever the table's size. Without a key it reads every entry in
//! primary-key order.

use std::borrow::Cow;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{ffi, params_from_iter, Connection};

use crate::db::KeyType;
use crate::error::{Error, Result};
use crate::history::{self, Snapshot};
use crate::sql::{user_error, Shared};
use crate::value;

const COL_DB: c_int = 0;
const COL_KEY: c_int = 1;
const COL_TS: c_int = 4;

// idx_num bits.
const HAS_DB: c_int = 1;
const HAS_KEY: c_int = 2;
const TS_LOW: c_int = 4; // ts_ms >= ? (or >, adjusted)
const TS_LOW_STRICT: c_int = 8;
const TS_HIGH: c_int = 16; // ts_ms <= ? (or <)
const TS_HIGH_STRICT: c_int = 32;
const TS_EQ: c_int = 64;

/// Rows fetched per page: bounds memory on tables with millions of entries.
const PAGE: i64 = 512;

/// Registers `redis_history` and `redis_history_at`.
pub fn register(conn: &Connection, shared: &Shared) -> Result<()> {
    const MODULE: Module<HistoryTab> = Module::eponymous_only_module();
    conn.create_module(c"redis_history", &MODULE, Some(shared.clone()))
        .map_err(|e| Error::err(format!("registering redis_history: {e}")))?;
    let shared = shared.clone();
    conn.create_scalar_function(
        "redis_history_at",
        2,
        FunctionFlags::SQLITE_UTF8,
        move |ctx| {
            let (Some(key), ms) = (value::from_sql(ctx.get_raw(0)), ctx.get_raw(1)) else {
                return Ok(ToSqlOutput::Owned(Value::Null));
            };
            let ms = match ms {
                ValueRef::Integer(i) => i,
                ValueRef::Real(f) => f as i64,
                ValueRef::Null => return Ok(ToSqlOutput::Owned(Value::Null)),
                _ => return Err(user_error(Error::NotInteger)),
            };
            // SAFETY: this call's own connection; nothing outlives the closure.
            let state = unsafe {
                let handle = ctx.get_connection()?.handle();
                shared.with_conn(handle, |conn, session| {
                    let cx = crate::db::Ctx::new(conn, session, 0);
                    history::state_at(&cx, cx.db(), &key, ms).map_err(user_error)
                })?
            };
            Ok(ToSqlOutput::Owned(match state {
                None => Value::Null,
                Some(Snapshot::String(v)) => value::to_value(v.into_vec()),
                Some(other) => Value::Text(other.to_json()),
            }))
        },
    )
    .map_err(|e| Error::err(format!("registering redis_history_at: {e}")))?;
    Ok(())
}

#[repr(C)]
struct HistoryTab {
    base: ffi::sqlite3_vtab,
    db: *mut ffi::sqlite3,
    shared: Shared,
}

unsafe impl<'vtab> VTab<'vtab> for HistoryTab {
    type Aux = Shared;
    type Cursor = HistoryCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Shared>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let shared = aux
            .cloned()
            .ok_or_else(|| user_error(Error::err("redis_history without state")))?;
        let tab = HistoryTab {
            base: ffi::sqlite3_vtab::default(),
            // SAFETY: this table's own connection, used only from its callbacks.
            db: unsafe { db.handle() },
            shared,
        };
        Ok((
            Cow::Borrowed(c"CREATE TABLE x(db, key, version, op, ts_ms, type, value, expire_at)"),
            tab,
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        use IndexConstraintOp::*;
        let mut mask = 0;
        // Argument order in xFilter: db, key, low, high, eq (each when present).
        let mut slots: [Option<usize>; 5] = [None; 5];
        for (i, c) in info.constraints().enumerate() {
            if !c.is_usable() {
                continue;
            }
            match (c.column(), c.operator()) {
                (COL_DB, SQLITE_INDEX_CONSTRAINT_EQ) => {
                    mask |= HAS_DB;
                    slots[0] = Some(i);
                }
                (COL_KEY, SQLITE_INDEX_CONSTRAINT_EQ) => {
                    mask |= HAS_KEY;
                    slots[1] = Some(i);
                }
                (COL_TS, SQLITE_INDEX_CONSTRAINT_GE | SQLITE_INDEX_CONSTRAINT_GT)
                    if slots[2].is_none() =>
                {
                    mask |= TS_LOW;
                    if c.operator() == SQLITE_INDEX_CONSTRAINT_GT {
                        mask |= TS_LOW_STRICT;
                    }
                    slots[2] = Some(i);
                }
                (COL_TS, SQLITE_INDEX_CONSTRAINT_LE | SQLITE_INDEX_CONSTRAINT_LT)
                    if slots[3].is_none() =>
                {
                    mask |= TS_HIGH;
                    if c.operator() == SQLITE_INDEX_CONSTRAINT_LT {
                        mask |= TS_HIGH_STRICT;
                    }
                    slots[3] = Some(i);
                }
                (COL_TS, SQLITE_INDEX_CONSTRAINT_EQ) if slots[4].is_none() => {
                    mask |= TS_EQ;
                    slots[4] = Some(i);
                }
                _ => {}
            }
        }
        let mut argv = 0;
        for i in slots.iter().flatten() {
            argv += 1;
            let mut usage = info.constraint_usage(*i);
            usage.set_argv_index(argv);
            // SQLite re-checks nothing we consume: types of constraint values are
            // compared as SQL would (the inner query does the comparison).
            usage.set_omit(true);
        }
        let by_key = mask & HAS_KEY != 0;
        info.set_idx_num(mask);
        if by_key {
            info.set_idx_cstr(c"redlite_history primary key");
            info.set_estimated_cost(10.0);
            info.set_estimated_rows(100);
        } else {
            info.set_estimated_cost(1_000_000.0);
        }
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<HistoryCursor<'vtab>> {
        Ok(HistoryCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            tab: self,
            plan: Plan::default(),
            rows: Vec::new(),
            at: 0,
            done: true,
            phantom: PhantomData,
        })
    }
}

/// The pushed-down constraints of one scan.
#[derive(Debug, Default, Clone)]
struct Plan {
    db: Option<i64>,
    key: Option<Vec<u8>>,
    low: i64,
    high: i64,
    /// Position after the last row returned, in the table's order: (db, key, ts_ms, seq).
    after: Option<(i64, Value, i64, i64)>,
    /// A constraint that can match nothing (NULL, or a non-integer db).
    empty: bool,
}

struct Row {
    values: [Value; 8],
    /// The row's place in the table: (db, ts_ms, seq) after its key, `values[1]`.
    db: i64,
    ts: i64,
    seq: i64,
}

#[repr(C)]
struct HistoryCursor<'vtab> {
    base: ffi::sqlite3_vtab_cursor,
    tab: *const HistoryTab,
    plan: Plan,
    rows: Vec<Row>,
    at: usize,
    done: bool,
    phantom: PhantomData<&'vtab HistoryTab>,
}

/// A row's rowid: entries have no integer key of their own, and SQLite may use rowids to
/// drop duplicates between the scans of an OR, so this is a hash of the primary key,
/// the same in every scan.
fn rowid_of(row: &Row) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    row.db.hash(&mut h);
    // Keys are stored as TEXT or BLOB.
    match &row.values[1] {
        Value::Text(t) => t.as_bytes().hash(&mut h),
        Value::Blob(b) => b.hash(&mut h),
        _ => {}
    }
    (row.ts, row.seq).hash(&mut h);
    h.finish() as i64
}

fn int_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

impl HistoryCursor<'_> {
    fn tab(&self) -> &HistoryTab {
        // SAFETY: SQLite keeps the table alive while its cursors are open.
        unsafe { &*self.tab }
    }

    /// Loads the next page of rows after the plan's position.
    fn load_page(&mut self) -> rusqlite::Result<()> {
        let tab = self.tab();
        // SAFETY: a non-owning wrapper of this table's connection, for this callback only.
        let conn = unsafe { Connection::from_handle(tab.db)? };
        let p = &self.plan;
        let mut params: Vec<Value> = Vec::new();
        let mut sql = String::from(
            "SELECT seq, db, key, version, op, ts_ms, type, value, expire_at FROM redlite_history WHERE ",
        );
        // Each branch reads one range of the primary key (db, key, ts_ms, seq), resuming
        // after the last row of the previous page.
        match &p.key {
            Some(key) => {
                sql.push_str("key = ?1 AND ts_ms >= ?2 AND ts_ms <= ?3 ");
                params.push(value::to_value(key.clone()));
                params.push(Value::Integer(p.low));
                params.push(Value::Integer(p.high));
                // Databases come last in the order: the same name may have entries with
                // the same (ts_ms, seq) in two databases.
                let (after_ts, after_seq, after_db) = p
                    .after
                    .as_ref()
                    .map_or((i64::MIN, 0, -1), |a| (a.2, a.3, a.0));
                params.push(Value::Integer(after_ts));
                params.push(Value::Integer(after_seq));
                match p.db {
                    Some(db) => {
                        sql.push_str(
                            "AND (ts_ms, seq) > (?4, ?5) AND db = ?6 \
                             ORDER BY ts_ms, seq LIMIT CAST(?7 AS INTEGER)",
                        );
                        params.push(Value::Integer(db));
                    }
                    // Every database, so the primary key still applies: one probe per
                    // database instead of a scan.
                    None => {
                        sql.push_str(
                            "AND (ts_ms, seq, db) > (?4, ?5, ?6) \
                             AND db IN (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) \
                             ORDER BY ts_ms, seq, db LIMIT CAST(?7 AS INTEGER)",
                        );
                        params.push(Value::Integer(after_db));
                    }
                }
            }
            None => {
                sql.push_str("ts_ms >= ?1 AND ts_ms <= ?2 ");
                params.push(Value::Integer(p.low));
                params.push(Value::Integer(p.high));
                if let Some(db) = p.db {
                    sql.push_str("AND db = ?3 ");
                    params.push(Value::Integer(db));
                }
                if let Some((db, key, ts, seq)) = &p.after {
                    let n = params.len();
                    sql.push_str(&format!(
                        "AND (db, key, ts_ms, seq) > (?{}, ?{}, ?{}, ?{}) ",
                        n + 1,
                        n + 2,
                        n + 3,
                        n + 4
                    ));
                    params.push(Value::Integer(*db));
                    params.push(key.clone());
                    params.push(Value::Integer(*ts));
                    params.push(Value::Integer(*seq));
                }
                sql.push_str(&format!(
                    "ORDER BY db, key, ts_ms, seq LIMIT CAST(?{} AS INTEGER)",
                    params.len() + 1
                ));
            }
        }
        params.push(Value::Integer(PAGE));
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        self.rows.clear();
        self.at = 0;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let db: i64 = r.get(1)?;
            let ts: i64 = r.get(5)?;
            let ty: Option<i64> = r.get(6)?;
            let blob: Option<Vec<u8>> = r.get(7)?;
            let json = blob
                .as_deref()
                .and_then(Snapshot::decode)
                .map_or(Value::Null, |s| Value::Text(s.to_json()));
            let type_name = ty
                .and_then(KeyType::from_i64)
                .map_or(Value::Null, |t| Value::Text(t.name().to_string()));
            self.rows.push(Row {
                values: [
                    Value::Integer(db),
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    Value::Integer(ts),
                    type_name,
                    json,
                    r.get(8)?,
                ],
                db,
                ts,
                seq,
            });
        }
        self.done = (self.rows.len() as i64) < PAGE;
        if let Some(last) = self.rows.last() {
            self.plan.after = Some((last.db, last.values[1].clone(), last.ts, last.seq));
        }
        Ok(())
    }
}

unsafe impl VTabCursor for HistoryCursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let mut next = 0;
        let mut take = |bit: c_int| -> rusqlite::Result<Option<Value>> {
            if idx_num & bit == 0 {
                return Ok(None);
            }
            let v: Value = args.get(next)?;
            next += 1;
            Ok(Some(v))
        };
        let mut plan = Plan {
            low: i64::MIN,
            high: i64::MAX,
            ..Plan::default()
        };
        if let Some(v) = take(HAS_DB)? {
            match int_arg(&v) {
                Some(db) => plan.db = Some(db),
                None => plan.empty = true,
            }
        }
        if let Some(v) = take(HAS_KEY)? {
            match value::from_sql(ValueRef::from(&v)) {
                Some(k) => plan.key = Some(k),
                None => plan.empty = true,
            }
        }
        // Bounds compare as integers; a fractional bound is rounded inward.
        if let Some(v) = take(TS_LOW)? {
            match &v {
                Value::Integer(i) => {
                    plan.low = if idx_num & TS_LOW_STRICT != 0 {
                        i.saturating_add(1)
                    } else {
                        *i
                    }
                }
                Value::Real(f) => {
                    let c = f.ceil() as i64;
                    plan.low = if idx_num & TS_LOW_STRICT != 0 && f.fract() == 0.0 {
                        c.saturating_add(1)
                    } else {
                        c
                    };
                }
                _ => plan.empty = true,
            }
        }
        if let Some(v) = take(TS_HIGH)? {
            match &v {
                Value::Integer(i) => {
                    plan.high = if idx_num & TS_HIGH_STRICT != 0 {
                        i.saturating_sub(1)
                    } else {
                        *i
                    }
                }
                Value::Real(f) => {
                    let c = f.floor() as i64;
                    plan.high = if idx_num & TS_HIGH_STRICT != 0 && f.fract() == 0.0 {
                        c.saturating_sub(1)
                    } else {
                        c
                    };
                }
                _ => plan.empty = true,
            }
        }
        if let Some(v) = take(TS_EQ)? {
            match int_arg(&v) {
                Some(t) => {
                    plan.low = plan.low.max(t);
                    plan.high = plan.high.min(t);
                }
                None => plan.empty = true,
            }
        }
        self.plan = plan;
        self.rows.clear();
        self.at = 0;
        if self.plan.empty || self.plan.low > self.plan.high {
            self.done = true;
            return Ok(());
        }
        catch_unwind(AssertUnwindSafe(|| self.load_page()))
            .unwrap_or_else(|_| Err(user_error(Error::err("internal error in redis_history"))))
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.at += 1;
        if self.at >= self.rows.len() && !self.done {
            return catch_unwind(AssertUnwindSafe(|| self.load_page())).unwrap_or_else(|_| {
                Err(user_error(Error::err("internal error in redis_history")))
            });
        }
        Ok(())
    }

    fn eof(&self) -> bool {
        self.at >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        match self
            .rows
            .get(self.at)
            .and_then(|r| r.values.get(i as usize))
        {
            Some(v) => ctx.set_result(v),
            None => ctx.set_result(&Value::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.rows.get(self.at).map_or(0, rowid_of))
    }
}
