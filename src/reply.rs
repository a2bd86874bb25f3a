//! The reply a command produces, independent of any wire format.
//!
//! The server encodes a [`Reply`] as RESP2 or RESP3; the SQL layer maps it to SQL values
//! (integer → INTEGER, bulk → TEXT/BLOB, nil → NULL, aggregates → JSON text).

/// One command reply. The variants follow RESP3's types; the RESP2 encoder flattens the
/// ones RESP2 lacks exactly as Redis does (maps become flat arrays, doubles bulk strings,
/// booleans integers, nulls `$-1` or `*-1`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Simple(String),
    /// An error line, full text without the leading `-` (`ERR syntax error`).
    Error(String),
    /// `:n`.
    Int(i64),
    /// A binary-safe bulk string.
    Bulk(Vec<u8>),
    /// A null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// A null array (`*-1` in RESP2, `_` in RESP3): BLPOP timeouts, aborted EXEC.
    NilArray,
    /// An array of replies.
    Array(Vec<Reply>),
    /// A RESP3 map; a flat array of pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A RESP3 set; an array in RESP2.
    Set(Vec<Reply>),
    /// A map that RESP2 sends as an array of two-element arrays (XREAD, XREADGROUP)
    /// and RESP3 as a map.
    PairMap(Vec<(Reply, Reply)>),
    /// Pairs that RESP2 sends as one flat array and RESP3 as an array of two-element
    /// arrays, as Redis does for `WITHSCORES` and `HRANDFIELD ... WITHVALUES`.
    Pairs(Vec<(Reply, Reply)>),
    /// A RESP3 double; a bulk string formatted as Redis does in RESP2.
    Double(f64),
    /// A RESP3 boolean; `:1`/`:0` in RESP2.
    Bool(bool),
    /// A RESP3 verbatim string (INFO, CLIENT INFO); a bulk string in RESP2.
    Verbatim(Vec<u8>),
}

impl Reply {
    /// The `+OK` reply.
    pub fn ok() -> Reply {
        Reply::Simple("OK".to_string())
    }

    /// A bulk reply from anything byte-like.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// A bulk reply, or nil for `None`.
    pub fn bulk_or_nil(bytes: Option<Vec<u8>>) -> Reply {
        bytes.map_or(Reply::Nil, Reply::Bulk)
    }

    /// An array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Vec<u8>>,
    {
        Reply::Array(items.into_iter().map(|b| Reply::Bulk(b.into())).collect())
    }

    /// True for [`Reply::Error`].
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

impl From<i64> for Reply {
    fn from(n: i64) -> Reply {
        Reply::Int(n)
    }
}

impl From<crate::Error> for Reply {
    fn from(e: crate::Error) -> Reply {
        Reply::Error(e.to_string())
    }
}
