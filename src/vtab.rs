//! Table-valued functions: `SELECT * FROM redis_keys('user:*')`.
//!
//! One generic eponymous-only virtual table serves them all. Each is a [`TableFn`] row:
//! its visible columns, its arguments (hidden columns), and a function producing the
//! rows. Arguments are taken from equality constraints on the hidden columns, as in
//! SQLite's `generate_series`; a missing required argument makes the plan unusable
//! (SQLite reports "no query solution").
//!
//! rusqlite does not guard virtual table callbacks against panics, so each callback that
//! runs Redlite code catches unwinds itself and reports an error instead.

use std::borrow::Cow;
use std::ffi::{c_int, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::ffi;
use rusqlite::types::{Value, ValueRef};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::Connection;

use crate::db::{Ctx, KeyType};
use crate::error::{Error, Result};
use crate::keys::{self, ScanOpts};
use crate::sql::{user_error, Shared};
use crate::value;

/// Rows a table function produces from its arguments (`None` = argument not given).
pub type Producer = fn(&mut Ctx, &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>>;

/// One table-valued function.
#[derive(Debug)]
pub struct TableFn {
    /// SQL name.
    pub name: &'static str,
    /// Visible columns.
    pub columns: &'static [&'static str],
    /// Arguments, in call order (hidden columns).
    pub params: &'static [&'static str],
    /// How many leading arguments are required.
    pub required: usize,
    /// One line for the docs.
    pub summary: &'static str,
    /// Produces the rows.
    pub produce: Producer,
}

/// The keyspace's table-valued functions; each type module declares its own
/// (`hash::TABLE_FNS`, ...) and [`all`] chains them.
pub static TABLE_FNS: &[TableFn] = &[
    TableFn {
        name: "redis_keys",
        columns: &["key", "type", "ttl"],
        params: &["pattern"],
        required: 0,
        summary: "Live keys of the current database matching a glob pattern (all without one), with type and TTL in seconds (-1 for none).",
        produce: produce_keys,
    },
    TableFn {
        name: "redis_scan",
        columns: &["key", "type", "ttl"],
        params: &["pattern", "key_type"],
        required: 0,
        summary: "Like redis_keys, filtered by glob pattern and type name, read page by page as SCAN does.",
        produce: produce_scan,
    },
];

/// An integer argument of a table function, or `default` when it is not given; text
/// that is not an integer is the error its command would give.
pub fn int_arg(arg: &Option<Vec<u8>>, default: i64) -> Result<i64> {
    match arg {
        Some(raw) => crate::num::parse_i64(raw).ok_or(Error::NotInteger),
        None => Ok(default),
    }
}

fn ttl_secs(cx: &Ctx, expire_at: Option<i64>) -> i64 {
    expire_at.map_or(-1, |at| ((at - cx.now_ms).max(0) + 500) / 1000)
}

fn key_row(cx: &Ctx, key: Vec<u8>, ty: KeyType, expire_at: Option<i64>) -> Vec<Value> {
    vec![
        value::to_value(key),
        Value::Text(ty.name().to_string()),
        Value::Integer(ttl_secs(cx, expire_at)),
    ]
}

fn produce_keys(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let pattern = args[0].as_deref();
    let keys = keys::matching_keys(cx, pattern, None)?;
    Ok(keys
        .into_iter()
        .map(|(k, t, e)| key_row(cx, k, t, e))
        .collect())
}

fn produce_scan(cx: &mut Ctx, args: &[Option<Vec<u8>>]) -> Result<Vec<Vec<Value>>> {
    let o = ScanOpts {
        pattern: args[0].as_deref(),
        count: 1000,
        ty: args[1].as_deref().map(KeyType::from_name),
    };
    let (mut cursor, mut out) = (0u64, Vec::new());
    loop {
        let (next, page) = keys::scan_page(cx, cursor, &o)?;
        out.extend(page.into_iter().map(|(k, t, e)| key_row(cx, k, t, e)));
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Every table-valued function, from every module.
pub fn all() -> impl Iterator<Item = &'static TableFn> {
    [
        TABLE_FNS,
        crate::hash::TABLE_FNS,
        crate::list::TABLE_FNS,
        crate::set::TABLE_FNS,
        crate::zset::TABLE_FNS,
        crate::stream::TABLE_FNS,
    ]
    .into_iter()
    .flat_map(|g| g.iter())
}

/// Registers every table-valued function on `conn`.
pub fn register(conn: &Connection, shared: &Shared) -> Result<()> {
    const MODULE: Module<TableFnTab> = Module::eponymous_only_module();
    for def in all() {
        let aux = Aux {
            def,
            shared: shared.clone(),
        };
        conn.create_module(def.name, &MODULE, Some(aux))
            .map_err(|e| Error::err(format!("registering {}: {e}", def.name)))?;
    }
    Ok(())
}

/// What each module instance carries: its definition and the connection's state.
pub struct Aux {
    def: &'static TableFn,
    shared: Shared,
}

#[repr(C)]
struct TableFnTab {
    base: ffi::sqlite3_vtab,
    db: *mut ffi::sqlite3,
    def: &'static TableFn,
    shared: Shared,
}

unsafe impl<'vtab> VTab<'vtab> for TableFnTab {
    type Aux = Aux;
    type Cursor = TableFnCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        aux: Option<&Aux>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let aux = aux.ok_or_else(|| user_error(Error::err("table function without state")))?;
        let mut schema = String::from("CREATE TABLE x(");
        schema.push_str(&aux.def.columns.join(", "));
        for p in aux.def.params {
            schema.push_str(&format!(", {p} HIDDEN"));
        }
        schema.push(')');
        let schema = CString::new(schema).map_err(|e| user_error(Error::err(e)))?;
        let tab = TableFnTab {
            base: ffi::sqlite3_vtab::default(),
            // SAFETY: the handle is the connection this table belongs to; it is only used
            // from SQLite's callbacks on that connection.
            db: unsafe { db.handle() },
            def: aux.def,
            shared: aux.shared.clone(),
        };
        Ok((Cow::Owned(schema), tab))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let first_param = self.def.columns.len() as c_int;
        let mut slots: Vec<Option<usize>> = vec![None; self.def.params.len()];
        let mut unusable = vec![false; self.def.params.len()];
        for (i, c) in info.constraints().enumerate() {
            let col = c.column() - first_param;
            if col < 0 {
                continue;
            }
            let col = col as usize;
            if !c.is_usable() {
                unusable[col] = true;
            } else if c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ {
                slots[col] = Some(i);
            }
        }
        if (0..self.def.required).any(|p| slots[p].is_none()) {
            return Ok(false);
        }
        if unusable.iter().zip(&slots).any(|(u, s)| *u && s.is_none()) {
            return Ok(false);
        }
        let mut mask = 0;
        let mut argv = 0;
        for (p, slot) in slots.iter().enumerate() {
            if let Some(i) = slot {
                argv += 1;
                mask |= 1 << p;
                let mut usage = info.constraint_usage(*i);
                usage.set_argv_index(argv);
                usage.set_omit(true);
            }
        }
        info.set_idx_num(mask);
        info.set_estimated_cost(1000.0);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<TableFnCursor<'vtab>> {
        Ok(TableFnCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            tab: self,
            rows: Vec::new(),
            at: 0,
            phantom: PhantomData,
        })
    }
}

#[repr(C)]
struct TableFnCursor<'vtab> {
    base: ffi::sqlite3_vtab_cursor,
    tab: *const TableFnTab,
    rows: Vec<Vec<Value>>,
    at: usize,
    phantom: PhantomData<&'vtab TableFnTab>,
}

impl TableFnCursor<'_> {
    fn tab(&self) -> &TableFnTab {
        // SAFETY: SQLite keeps the table alive while any of its cursors is open.
        unsafe { &*self.tab }
    }

    fn produce(&self, args: &[Option<Vec<u8>>]) -> rusqlite::Result<Vec<Vec<Value>>> {
        let tab = self.tab();
        let now_ms = tab.shared.clock().now_ms();
        // SAFETY: this table's own connection, used only during this callback.
        unsafe {
            tab.shared.with_conn(tab.db, |conn, session| {
                let mut cx = Ctx::new(conn, session, now_ms);
                (tab.def.produce)(&mut cx, args).map_err(user_error)
            })
        }
    }
}

unsafe impl VTabCursor for TableFnCursor<'_> {
    fn filter(
        &mut self,
        idx_num: c_int,
        _idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let n = self.tab().def.params.len();
        let mut values = Vec::with_capacity(n);
        let mut next = 0;
        for p in 0..n {
            if idx_num & (1 << p) != 0 {
                let v: Value = args.get(next)?;
                next += 1;
                values.push(value::from_sql(ValueRef::from(&v)));
            } else {
                values.push(None);
            }
        }
        // A NULL argument yields no rows, as SQL's own table functions do.
        let given_null = (0..n).any(|p| idx_num & (1 << p) != 0 && values[p].is_none());
        self.rows = if given_null {
            Vec::new()
        } else {
            catch_unwind(AssertUnwindSafe(|| self.produce(&values))).unwrap_or_else(|_| {
                Err(user_error(Error::err("internal error in a table function")))
            })?
        };
        self.at = 0;
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.at += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.at >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let ncols = self.tab().def.columns.len();
        let i = i as usize;
        match self.rows.get(self.at) {
            Some(row) if i < ncols => ctx.set_result(&row[i]),
            // Hidden argument columns read back as NULL.
            _ => ctx.set_result(&Value::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.at as i64)
    }
}
