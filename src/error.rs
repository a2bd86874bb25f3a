//! The one error type of the core, rendered to Redis's exact error text by `Display`.
//!
//! Front ends prepend `-` (RESP) or raise the text as a SQL error; neither rewrites it.

/// A command error. `Display` yields the text Redis sends after the `-`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument or a stored value is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// INCR/DECR family overflow.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// An argument or a stored value is not a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// INCRBYFLOAT/HINCRBYFLOAT producing inf or nan.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// Unparseable option combination.
    #[error("ERR syntax error")]
    Syntax,
    /// A key that must exist does not (RENAME and friends).
    #[error("ERR no such key")]
    NoSuchKey,
    /// Arity mismatch; carries the canonical lowercase name (`hset`, `config|set`).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// Bad expire time; carries the lowercase command name.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    /// SELECT/SWAPDB index out of range.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// A string would exceed 512 MiB.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// An unknown command, rendered as Redis does (name as typed, args quoted).
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name as the client typed it.
        name: String,
        /// Pre-rendered `'a' 'b' ` list.
        args: String,
    },
    /// Any other Redis error, full text after the `-` (`ERR ...`, `NOAUTH ...`).
    #[error("{0}")]
    Msg(String),
    /// An error from SQLite itself (busy, disk full, corrupt file).
    #[error("ERR {0}")]
    Sql(#[from] rusqlite::Error),
}

impl Error {
    /// An `ERR`-prefixed error with free text.
    pub fn err(text: impl std::fmt::Display) -> Error {
        Error::Msg(format!("ERR {text}"))
    }

    /// An unknown-command error, formatted exactly as Redis's `processCommand`:
    /// each argument quoted and followed by a space, up to 128 bytes of arguments.
    pub fn unknown_command(argv: &[Vec<u8>]) -> Error {
        let name = argv.first().map(|n| sanitize(n, 128)).unwrap_or_default();
        let mut args = String::new();
        for arg in argv.iter().skip(1) {
            if args.len() >= 128 {
                break;
            }
            let room = 128 - args.len();
            args.push('\'');
            args.push_str(&sanitize(arg, room));
            args.push_str("' ");
        }
        Error::UnknownCommand { name, args }
    }
}

/// Renders bytes the way Redis's `sdscatrepr`-free error path does: at most `max` bytes,
/// newlines and other control bytes replaced by spaces so the error stays one line.
fn sanitize(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// Result alias used throughout the core.
pub type Result<T> = std::result::Result<T, Error>;
