//! Canonical SQL values for Redis byte strings.
//!
//! Bytes that are valid UTF-8 without NUL are stored and returned as TEXT, anything else
//! as BLOB. The same bytes therefore always become the same SQL value, whichever front end
//! they came through, so `redis_get('k') = 'v'` holds and joins against user tables work.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

/// The canonical SQL value of `bytes`, borrowing them.
pub fn to_sql(bytes: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(to_ref(bytes))
}

/// The canonical SQL value of `bytes`, borrowed: TEXT when they are UTF-8 without NUL,
/// BLOB otherwise.
pub fn to_ref(bytes: &[u8]) -> ValueRef<'_> {
    match canonical_text(bytes) {
        Some(text) => ValueRef::Text(text.as_bytes()),
        None => ValueRef::Blob(bytes),
    }
}

/// The canonical SQL value of `bytes`, owned.
pub fn to_value(bytes: Vec<u8>) -> Value {
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Value::Text(text),
        Ok(text) => Value::Blob(text.into_bytes()),
        Err(e) => Value::Blob(e.into_bytes()),
    }
}

fn canonical_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The bytes of a stored value or of a SQL argument.
///
/// TEXT and BLOB give their bytes; INTEGER its decimal form (as Redis would print it);
/// REAL the shortest form that reads back to the same double; NULL gives `None`.
pub fn from_sql(value: ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string().into_bytes()),
        ValueRef::Real(f) => Some(format_real(f).into_bytes()),
        ValueRef::Text(t) => Some(t.to_vec()),
        ValueRef::Blob(b) => Some(b.to_vec()),
    }
}

/// A SQL REAL as text: Rust's shortest round-trip form, with `.0` kept on integral
/// values so `redis_set('k', 2.0)` stores `2.0` as SQLite's `CAST(2.0 AS TEXT)` does.
fn format_real(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format!("{f:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_without_nul_is_text() {
        assert_eq!(to_value(b"hello".to_vec()), Value::Text("hello".into()));
        assert_eq!(
            to_value("héllo".as_bytes().to_vec()),
            Value::Text("héllo".into())
        );
    }

    #[test]
    fn nul_or_invalid_utf8_is_blob() {
        assert_eq!(to_value(b"a\0b".to_vec()), Value::Blob(b"a\0b".to_vec()));
        assert_eq!(to_value(vec![0xff, 0xfe]), Value::Blob(vec![0xff, 0xfe]));
        assert!(matches!(
            to_sql(&[0xff]),
            ToSqlOutput::Borrowed(ValueRef::Blob(_))
        ));
    }

    #[test]
    fn sql_numbers_become_decimal_text() {
        assert_eq!(from_sql(ValueRef::Integer(-42)), Some(b"-42".to_vec()));
        assert_eq!(from_sql(ValueRef::Real(2.0)), Some(b"2.0".to_vec()));
        assert_eq!(from_sql(ValueRef::Real(0.1)), Some(b"0.1".to_vec()));
        assert_eq!(from_sql(ValueRef::Null), None);
    }
}
