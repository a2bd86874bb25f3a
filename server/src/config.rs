//! Configuration: the options Redis users know, from the command line and an optional
//! redis.conf-style file, plus what `CONFIG GET` / `CONFIG SET` need to read and change
//! them at run time.
//!
//! One table, [`OPTIONS`], names every option with its default and meaning; `--help`,
//! `CONFIG GET` patterns and the file parser all go through it, so they cannot drift.
//! Values are parsed with Redis's rules and errors (`argument couldn't be parsed into an
//! integer`, memory values such as `512mb`, `yes`/`no`), because `CONFIG SET` must reply
//! with Redis's exact text.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::protocol::{DEFAULT_PROTO_MAX_BULK_LEN, DEFAULT_QUERY_BUFFER_LIMIT};

/// The default TCP port, as Redis.
pub const DEFAULT_PORT: u16 = 6379;

/// `appendfsync`: when SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    /// `synchronous=FULL`: every group commit fsyncs the WAL before any reply leaves.
    Always,
    /// `synchronous=NORMAL`, plus an fsync of the `-wal` file once a second when something
    /// was committed: up to about a second of acknowledged writes may be lost on power
    /// loss, nothing on a process crash.
    Everysec,
    /// `synchronous=NORMAL`: the WAL is fsynced only at checkpoints; the OS decides when
    /// the rest reaches the disk.
    No,
}

impl AppendFsync {
    /// The Redis spelling.
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }

    /// The `PRAGMA synchronous` value that implements it.
    pub fn synchronous(self) -> &'static str {
        match self {
            AppendFsync::Always => "FULL",
            AppendFsync::Everysec | AppendFsync::No => "NORMAL",
        }
    }

    fn parse(value: &str) -> Option<AppendFsync> {
        match value.to_ascii_lowercase().as_str() {
            "always" => Some(AppendFsync::Always),
            "everysec" => Some(AppendFsync::Everysec),
            "no" => Some(AppendFsync::No),
            _ => None,
        }
    }
}

/// `loglevel`, with Redis's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, including per-connection events.
    Debug,
    /// Connections and maintenance.
    Verbose,
    /// Start, stop and notable events (the default).
    Notice,
    /// Only warnings and errors.
    Warning,
}

impl LogLevel {
    /// The Redis spelling.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
        }
    }

    /// The `tracing` level it maps to.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::TRACE,
            LogLevel::Verbose => tracing::Level::DEBUG,
            LogLevel::Notice => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
        }
    }

    fn parse(value: &str) -> Option<LogLevel> {
        match value.to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "verbose" => Some(LogLevel::Verbose),
            "notice" => Some(LogLevel::Notice),
            "warning" => Some(LogLevel::Warning),
            _ => None,
        }
    }
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port; 0 = no TCP listener.
    pub port: u16,
    /// Addresses to listen on; a leading `-` marks one that may fail to bind.
    pub bind: Vec<String>,
    /// Path of a Unix socket to listen on as well.
    pub unixsocket: Option<PathBuf>,
    /// Permissions of the Unix socket (octal in the file; 0 = leave the umask's).
    pub unixsocketperm: u32,
    /// The default user's password; `None` = no password.
    pub requirepass: Option<String>,
    /// Refuse non-loopback TCP clients while no password is set.
    pub protected_mode: bool,
    /// Most clients connected at once.
    pub maxclients: u64,
    /// Close clients idle this many seconds (0 = never).
    pub timeout: u64,
    /// Durability of commits.
    pub appendfsync: AppendFsync,
    /// Directory of the database file.
    pub dir: PathBuf,
    /// Database file name, inside `dir`.
    pub dbfilename: String,
    /// Number of databases; must be 16 (the core's `DATABASES`).
    pub databases: i64,
    /// Largest bulk string a request may carry.
    pub proto_max_bulk_len: i64,
    /// Most unparsed bytes a client may have buffered.
    pub client_query_buffer_limit: usize,
    /// Log verbosity.
    pub loglevel: LogLevel,
    /// `client-output-buffer-limit`: per client class (normal, replica, pubsub). Only the
    /// pubsub class is enforced (see [`OutputBufferLimits`]).
    pub client_output_buffer_limit: OutputBufferLimits,
    /// Read-only SQLite connections (threads) serving read commands.
    pub reader_threads: usize,
    /// Threads that run client connections (`io-threads`).
    pub io_threads: usize,
    /// The config file this came from, if any (INFO `config_file`).
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            port: DEFAULT_PORT,
            bind: vec!["127.0.0.1".into(), "-::1".into()],
            unixsocket: None,
            unixsocketperm: 0,
            requirepass: None,
            protected_mode: true,
            maxclients: 10_000,
            timeout: 0,
            appendfsync: AppendFsync::Everysec,
            dir: PathBuf::from("."),
            dbfilename: "redlite.db".into(),
            databases: redlite::db::DATABASES,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_QUERY_BUFFER_LIMIT,
            loglevel: LogLevel::Notice,
            client_output_buffer_limit: OutputBufferLimits::default(),
            reader_threads: 4,
            io_threads: 1,
            config_file: None,
        }
    }
}

/// One class's `client-output-buffer-limit`: disconnect a client whose pending output
/// reaches `hard_bytes`, or stays at or above `soft_bytes` for more than `soft_seconds`.
/// Zero disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimit {
    /// Hard limit in bytes (0 = none).
    pub hard_bytes: u64,
    /// Soft limit in bytes (0 = none).
    pub soft_bytes: u64,
    /// How long the soft limit may be exceeded, in seconds.
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit` for Redis's three classes, in Redis's CONFIG GET order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimits {
    /// `normal`: reported only.
    pub normal: OutputBufferLimit,
    /// `replica` (`slave`): reported only; Redlite has no replicas.
    pub replica: OutputBufferLimit,
    /// `pubsub`: enforced on every client with at least one subscription.
    pub pubsub: OutputBufferLimit,
}

impl Default for OutputBufferLimits {
    /// Redis's defaults: `normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60`.
    fn default() -> Self {
        OutputBufferLimits {
            normal: OutputBufferLimit {
                hard_bytes: 0,
                soft_bytes: 0,
                soft_seconds: 0,
            },
            replica: OutputBufferLimit {
                hard_bytes: 256 << 20,
                soft_bytes: 64 << 20,
                soft_seconds: 60,
            },
            pubsub: OutputBufferLimit {
                hard_bytes: 32 << 20,
                soft_bytes: 8 << 20,
                soft_seconds: 60,
            },
        }
    }
}

impl OutputBufferLimits {
    /// Applies `<class> <hard> <soft> <seconds>` groups, all or none, with Redis's
    /// errors (an empty value changes nothing, as in Redis).
    fn apply(&mut self, value: &str) -> Result<(), ValueError> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err(ValueError::Other(
                "Wrong number of arguments in buffer limit configuration.".into(),
            ));
        }
        let mut next = *self;
        for group in words.chunks(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "slave" | "replica" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => {
                    return Err(ValueError::Other(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    ))
                }
            };
            let bad = || {
                ValueError::Other(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                )
            };
            let hard = parse_memory(group[1], 0, i64::MAX).map_err(|_| bad())?;
            let soft = parse_memory(group[2], 0, i64::MAX).map_err(|_| bad())?;
            let seconds = redlite::num::parse_i64(group[3].as_bytes())
                .filter(|s| *s >= 0)
                .ok_or_else(bad)?;
            *class = OutputBufferLimit {
                hard_bytes: hard as u64,
                soft_bytes: soft as u64,
                soft_seconds: seconds as u64,
            };
        }
        *self = next;
        Ok(())
    }
}

impl fmt::Display for OutputBufferLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (name, l)) in [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ]
        .iter()
        .enumerate()
        {
            if n > 0 {
                f.write_str(" ")?;
            }
            write!(
                f,
                "{name} {} {} {}",
                l.hard_bytes, l.soft_bytes, l.soft_seconds
            )?;
        }
        Ok(())
    }
}

/// One option: its name, default, whether `CONFIG SET` may change it, and its meaning.
#[derive(Debug)]
pub struct OptionDef {
    /// The name, as in redis.conf.
    pub name: &'static str,
    /// The default, as `--help` shows it.
    pub default: &'static str,
    /// Whether `CONFIG SET` can change it while the server runs.
    pub mutable: bool,
    /// What it means, in SQLite terms where that matters.
    pub help: &'static str,
}

macro_rules! opt {
    ($name:literal, $default:literal, $mutable:expr, $help:literal) => {
        OptionDef {
            name: $name,
            default: $default,
            mutable: $mutable,
            help: $help,
        }
    };
}

/// Every option, in `--help` and `CONFIG GET *` order.
pub static OPTIONS: &[OptionDef] = &[
    opt!("port", "6379", false, "TCP port to listen on (0: no TCP listener)."),
    opt!("bind", "127.0.0.1 -::1", false,
         "Addresses to listen on, space separated; a leading '-' means skip it if it cannot be bound. '*' is every IPv4 address, '::*' every IPv6 one."),
    opt!("unixsocket", "", false, "Also listen on this Unix socket path (none by default)."),
    opt!("unixsocketperm", "0", false, "Permissions of the Unix socket, in octal (0: as the umask leaves them)."),
    opt!("requirepass", "", true, "Password of the default user; clients must AUTH first. Empty: no password."),
    opt!("protected-mode", "yes", true,
         "While no password is set, accept TCP clients from loopback addresses only and answer others with -DENIED."),
    opt!("maxclients", "10000", true, "Most clients connected at once; one more gets '-ERR max number of clients reached'."),
    opt!("timeout", "0", true, "Close a client idle for this many seconds (0: never)."),
    opt!("appendfsync", "everysec", true,
         "always: every commit fsyncs the SQLite WAL before replying (synchronous=FULL). everysec: synchronous=NORMAL plus an fsync of the WAL once a second, so power loss may lose about the last second of writes and a crash loses nothing. no: synchronous=NORMAL, the OS decides (fsync at checkpoints only)."),
    opt!("dir", ".", false, "Directory of the database file."),
    opt!("dbfilename", "redlite.db", false, "SQLite database file name, inside dir (created if missing; WAL mode)."),
    opt!("databases", "16", false, "Number of databases (SELECT 0-15); only 16 is supported."),
    opt!("proto-max-bulk-len", "512mb", true, "Largest bulk string a request may carry (memory units: 1k, 1kb, 1m, 1mb, 1g, 1gb)."),
    opt!("client-query-buffer-limit", "1gb", true, "Most unparsed request bytes one client may have buffered; past it the connection is closed."),
    opt!("loglevel", "notice", true, "debug, verbose, notice or warning."),
    opt!("client-output-buffer-limit", "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60", true,
         "<class> <hard> <soft> <soft-seconds> groups, as Redis. Enforced for pubsub: a subscriber whose unsent output reaches <hard> bytes, or stays at or above <soft> for more than <soft-seconds>, is disconnected. normal and replica are accepted and reported only (replies are bounded by the request pipeline; there are no replicas)."),
    opt!("io-threads", "1", false,
         "Threads that run client connections, each with its own event loop; a client stays on one. With one, as in Redis, a round trip never wakes a second thread (GET with 50 clients, one command each: 1.0x Redis against 0.75x with two threads, on 2 cores); more help deep pipelines when cores are free. Unlike Redis's I/O threads, commands run on them too (reads that need no SQLite thread of their own)."),
    opt!("reader-threads", "4", false, "Redlite: read-only SQLite connections (one thread each) that serve read commands."),
    opt!("save", "\"\"", true, "Accepted for compatibility and always \"\": every write is committed to the SQLite file, there are no snapshots."),
    opt!("appendonly", "no", true, "Accepted for compatibility and always \"no\": durability is set with appendfsync."),
    opt!("maxmemory", "0", false, "Reported as 0: Redlite keeps data on disk and never evicts."),
    opt!("maxmemory-policy", "noeviction", false, "Reported as noeviction: Redlite never evicts keys."),
];

/// Why a value was refused; `Display` gives Redis's text after `... - `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// Not an integer.
    NotInteger,
    /// Not a memory value (`512mb`).
    NotMemory,
    /// Outside the allowed range.
    Range(i128, i128),
    /// Not `yes` or `no`.
    NotBool,
    /// Not one of a fixed set.
    OneOf(&'static str),
    /// Cannot change while the server runs.
    Immutable,
    /// Anything else.
    Other(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::NotInteger => f.write_str("argument couldn't be parsed into an integer"),
            ValueError::NotMemory => f.write_str("argument must be a memory value"),
            ValueError::Range(lo, hi) => {
                write!(f, "argument must be between {lo} and {hi} inclusive")
            }
            ValueError::NotBool => f.write_str("argument must be 'yes' or 'no'"),
            ValueError::OneOf(list) => {
                write!(f, "argument(s) must be one of the following: {list}")
            }
            ValueError::Immutable => f.write_str("can't set immutable config"),
            ValueError::Other(text) => f.write_str(text),
        }
    }
}

/// A configuration error at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An option name we do not know.
    #[error("unknown option '{0}' (see --help)")]
    Unknown(String),
    /// A bad value.
    #[error("option '{name}': {error}")]
    Value {
        /// The option.
        name: String,
        /// What was wrong.
        error: ValueError,
    },
    /// A bad line in the config file.
    #[error("{file}:{line}: {error}")]
    File {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        error: Box<ConfigError>,
    },
    /// Reading the file failed.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// Anything else (bad quoting, missing values).
    #[error("{0}")]
    Other(String),
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Cli {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

impl Config {
    /// Parses `redlite-server [config-file] [--option value ...]`: the file is read first,
    /// then the flags override it, as Redis does.
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, ConfigError> {
        let args: Vec<String> = args.into_iter().collect();
        let mut config = Config::default();
        let mut rest = &args[..];
        if let Some(first) = rest.first() {
            match first.as_str() {
                "-h" | "--help" => return Ok(Cli::Help),
                "-v" | "--version" => return Ok(Cli::Version),
                path if !path.starts_with("--") => {
                    config.load_file(Path::new(path))?;
                    rest = &rest[1..];
                }
                _ => {}
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let flag = &rest[i];
            let Some(name) = flag.strip_prefix("--") else {
                return Err(ConfigError::Other(format!(
                    "unexpected argument '{flag}': options are --name value (see --help)"
                )));
            };
            match name {
                "help" => return Ok(Cli::Help),
                "version" => return Ok(Cli::Version),
                _ => {}
            }
            // Like Redis: every argument up to the next `--option` is a value.
            let mut values = Vec::new();
            i += 1;
            while i < rest.len() && !rest[i].starts_with("--") {
                values.push(rest[i].clone());
                i += 1;
            }
            config.apply(name, &values)?;
        }
        Ok(Cli::Run(Box::new(config)))
    }

    /// Reads a redis.conf-style file: `name value...` lines, `#` comments, quoted values.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io(path.display().to_string(), e))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let wrap = |error: ConfigError| ConfigError::File {
                file: path.display().to_string(),
                line: n + 1,
                error: Box::new(error),
            };
            let words = split_line(line).map_err(|e| wrap(ConfigError::Other(e)))?;
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            self.apply(&name.to_ascii_lowercase(), values)
                .map_err(wrap)?;
        }
        self.config_file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(())
    }

    /// Sets option `name` from its values at start-up (any option, mutable or not).
    pub fn apply(&mut self, name: &str, values: &[String]) -> Result<(), ConfigError> {
        let name = name.to_ascii_lowercase();
        let def = find(&name).ok_or_else(|| ConfigError::Unknown(name.clone()))?;
        let value = if def.name == "bind" || def.name == "client-output-buffer-limit" {
            values.join(" ")
        } else {
            match values {
                [one] => one.clone(),
                [] => String::new(),
                _ => {
                    return Err(ConfigError::Other(format!(
                        "option '{name}' takes one value, got {}",
                        values.len()
                    )))
                }
            }
        };
        self.set_value(def.name, &value, true)
            .map_err(|error| ConfigError::Value {
                name: def.name.to_string(),
                error,
            })
    }

    /// Sets option `name` (canonical) to `value`. With `startup` false, as `CONFIG SET`
    /// does: immutable options are refused.
    pub fn set_value(&mut self, name: &str, value: &str, startup: bool) -> Result<(), ValueError> {
        let def =
            find(name).ok_or_else(|| ValueError::Other(format!("unknown option '{name}'")))?;
        if !startup && !def.mutable {
            return Err(ValueError::Immutable);
        }
        match def.name {
            "port" => self.port = parse_int(value, 0, 65535)? as u16,
            "bind" => {
                let addrs: Vec<String> = value.split_whitespace().map(str::to_string).collect();
                if addrs.is_empty() {
                    return Err(ValueError::Other("bind needs at least one address".into()));
                }
                self.bind = addrs;
            }
            "unixsocket" => self.unixsocket = (!value.is_empty()).then(|| PathBuf::from(value)),
            "unixsocketperm" => {
                self.unixsocketperm = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|p| *p <= 0o777)
                    .ok_or(ValueError::Other(
                        "argument must be an octal permission such as 700".into(),
                    ))?;
            }
            "requirepass" => self.requirepass = (!value.is_empty()).then(|| value.to_string()),
            "protected-mode" => self.protected_mode = parse_bool(value)?,
            "maxclients" => self.maxclients = parse_int(value, 1, u32::MAX as i64)? as u64,
            "timeout" => self.timeout = parse_int(value, 0, i32::MAX as i64)? as u64,
            "appendfsync" => {
                self.appendfsync =
                    AppendFsync::parse(value).ok_or(ValueError::OneOf("everysec, always, no"))?
            }
            "dir" => self.dir = PathBuf::from(value),
            "dbfilename" => {
                if value.is_empty() || value.contains('/') {
                    return Err(ValueError::Other(
                        "dbfilename can't be a path, just a filename".into(),
                    ));
                }
                self.dbfilename = value.to_string();
            }
            "databases" => {
                let n = parse_int(value, 1, i32::MAX as i64)?;
                if n != redlite::db::DATABASES {
                    return Err(ValueError::Other(format!(
                        "Redlite supports exactly {} databases, not {n}",
                        redlite::db::DATABASES
                    )));
                }
                self.databases = n;
            }
            "proto-max-bulk-len" => {
                self.proto_max_bulk_len = parse_memory(value, 1024 * 1024, i64::MAX)?;
            }
            "client-query-buffer-limit" => {
                let max = i64::try_from(usize::MAX).unwrap_or(i64::MAX);
                self.client_query_buffer_limit = parse_memory(value, 1024 * 1024, max)? as usize;
            }
            "client-output-buffer-limit" => self.client_output_buffer_limit.apply(value)?,
            "loglevel" => {
                self.loglevel = LogLevel::parse(value)
                    .ok_or(ValueError::OneOf("debug, verbose, notice, warning"))?
            }
            "reader-threads" => self.reader_threads = parse_int(value, 1, 64)? as usize,
            "io-threads" => self.io_threads = parse_int(value, 1, 128)? as usize,
            "save" if !value.is_empty() => {
                return Err(ValueError::Other(
                    "Redlite commits every write to its SQLite file and takes no snapshots; \
                     only save \"\" is accepted"
                        .into(),
                ));
            }
            "appendonly" if parse_bool(value)? => {
                return Err(ValueError::Other(
                    "Redlite has no append-only file; set durability with appendfsync".into(),
                ));
            }
            // Reported for clients that read them; nothing to set.
            _ => {}
        }
        Ok(())
    }

    /// The current value of option `name` (canonical), as `CONFIG GET` shows it.
    pub fn get_value(&self, name: &str) -> Option<String> {
        Some(match name {
            "port" => self.port.to_string(),
            "bind" => self.bind.join(" "),
            "unixsocket" => self
                .unixsocket
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            "unixsocketperm" => format!("{:o}", self.unixsocketperm),
            "requirepass" => self.requirepass.clone().unwrap_or_default(),
            "protected-mode" => yes_no(self.protected_mode).into(),
            "maxclients" => self.maxclients.to_string(),
            "timeout" => self.timeout.to_string(),
            "appendfsync" => self.appendfsync.name().into(),
            "dir" => std::fs::canonicalize(&self.dir)
                .unwrap_or_else(|_| self.dir.clone())
                .display()
                .to_string(),
            "dbfilename" => self.dbfilename.clone(),
            "databases" => self.databases.to_string(),
            "proto-max-bulk-len" => self.proto_max_bulk_len.to_string(),
            "client-query-buffer-limit" => self.client_query_buffer_limit.to_string(),
            "loglevel" => self.loglevel.name().into(),
            "client-output-buffer-limit" => self.client_output_buffer_limit.to_string(),
            "reader-threads" => self.reader_threads.to_string(),
            "io-threads" => self.io_threads.to_string(),
            "save" => String::new(),
            "appendonly" => "no".into(),
            "maxmemory" => "0".into(),
            "maxmemory-policy" => "noeviction".into(),
            _ => return None,
        })
    }

    /// The database file: `dir/dbfilename`.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }

    /// Checks what only makes sense as a whole (after every option is read).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.port == 0 && self.unixsocket.is_none() {
            return Err(ConfigError::Other(
                "port 0 and no unixsocket: the server would accept no clients".into(),
            ));
        }
        Ok(())
    }
}

/// The definition of option `name` (canonical, lowercase).
pub fn find(name: &str) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|o| o.name.eq_ignore_ascii_case(name))
}

/// The text `--help` prints.
pub fn help_text() -> String {
    let mut out = format!(
        "redlite-server {}: Redis clients over a SQLite file.\n\n\
         Usage: redlite-server [/path/to/redlite.conf] [--option value ...]\n\
         \x20      redlite-server --help | --version\n\n\
         The config file has one 'option value' per line and '#' comments, as redis.conf;\n\
         command-line options override it. Options (default in brackets):\n\n",
        redlite::VERSION
    );
    for def in OPTIONS {
        let settable = if def.mutable {
            ""
        } else {
            " Fixed at start-up."
        };
        out.push_str(&format!("  --{} [{}]\n", def.name, def.default));
        out.push_str(&wrap(&format!("{}{settable}", def.help), 6, 88));
    }
    out.push_str(
        "\nExample: redlite-server --port 6380 --dir /var/lib/redlite --dbfilename app.db \
         --appendfsync always\n",
    );
    out
}

fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out.push_str(&" ".repeat(indent));
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&" ".repeat(indent));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn parse_bool(value: &str) -> Result<bool, ValueError> {
    match value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(ValueError::NotBool),
    }
}

fn parse_int(value: &str, lo: i64, hi: i64) -> Result<i64, ValueError> {
    let n = redlite::num::parse_i64(value.as_bytes()).ok_or(ValueError::NotInteger)?;
    if n < lo || n > hi {
        return Err(ValueError::Range(lo.into(), hi.into()));
    }
    Ok(n)
}

/// Redis's `memtoull`: a number with an optional unit (`b`, `k`=1000, `kb`=1024, `m`, `mb`,
/// `g`, `gb`, any case).
pub fn parse_memory(value: &str, lo: i64, hi: i64) -> Result<i64, ValueError> {
    let lower = value.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_024 * 1_024,
        "g" => 1_000_000_000,
        "gb" => 1_024 * 1_024 * 1_024,
        _ => return Err(ValueError::NotMemory),
    };
    if digits.is_empty() {
        return Err(ValueError::NotMemory);
    }
    let n: u64 = digits.parse().map_err(|_| ValueError::NotMemory)?;
    let bytes = n.checked_mul(mul).ok_or(ValueError::NotMemory)?;
    let bytes = i64::try_from(bytes).map_err(|_| ValueError::Range(lo.into(), hi.into()))?;
    if bytes < lo || bytes > hi {
        return Err(ValueError::Range(lo.into(), hi.into()));
    }
    Ok(bytes)
}

/// Splits a config line into words, with double quotes (`\n \r \t \" \\ \xHH` escapes) and
/// single quotes, as Redis's `sdssplitargs`.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let mut word = Vec::new();
        match bytes[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return Err("unbalanced quotes in configuration line".into());
                    };
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' && q == b'"' {
                        let Some(&e) = bytes.get(i) else {
                            return Err("unbalanced quotes in configuration line".into());
                        };
                        i += 1;
                        match e {
                            b'n' => word.push(b'\n'),
                            b'r' => word.push(b'\r'),
                            b't' => word.push(b'\t'),
                            b'x' if i + 1 < bytes.len() => {
                                let hex = std::str::from_utf8(&bytes[i..i + 2]).unwrap_or("");
                                match u8::from_str_radix(hex, 16) {
                                    Ok(b) => {
                                        word.push(b);
                                        i += 2;
                                    }
                                    Err(_) => word.push(b'x'),
                                }
                            }
                            other => word.push(other),
                        }
                    } else if c == b'\\' && q == b'\'' && bytes.get(i) == Some(&b'\'') {
                        word.push(b'\'');
                        i += 1;
                    } else {
                        word.push(c);
                    }
                }
                if i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    return Err("closing quote must be followed by a space".into());
                }
            }
            _ => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    word.push(bytes[i]);
                    i += 1;
                }
            }
        }
        words.push(String::from_utf8(word).map_err(|_| "configuration values must be UTF-8")?);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_defaults() {
        let Cli::Run(c) = Config::from_args(args(&[
            "--port",
            "6380",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--appendfsync",
            "always",
        ]))
        .unwrap() else {
            panic!("expected Run")
        };
        assert_eq!(c.port, 6380);
        assert_eq!(c.bind, vec!["127.0.0.1", "-::1"]);
        assert_eq!(c.appendfsync, AppendFsync::Always);
    }

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("redlite-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.conf");
        std::fs::write(
            &path,
            "# comment\nport 7000\nrequirepass \"a b\"\nsave \"\"\n",
        )
        .unwrap();
        let Cli::Run(c) =
            Config::from_args(args(&[path.to_str().unwrap(), "--port", "7001"])).unwrap()
        else {
            panic!("expected Run")
        };
        assert_eq!(c.port, 7001);
        assert_eq!(c.requirepass.as_deref(), Some("a b"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_have_redis_text() {
        let mut c = Config::default();
        assert_eq!(
            c.set_value("timeout", "1.5", false)
                .unwrap_err()
                .to_string(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            c.set_value("timeout", "-1", false).unwrap_err().to_string(),
            "argument must be between 0 and 2147483647 inclusive"
        );
        assert_eq!(
            c.set_value("proto-max-bulk-len", "1", false)
                .unwrap_err()
                .to_string(),
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        );
        assert_eq!(
            c.set_value("port", "1", false).unwrap_err().to_string(),
            "can't set immutable config"
        );
        assert!(Config::from_args(args(&["--databases", "8"])).is_err());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("2mb", 0, i64::MAX), Ok(2 * 1024 * 1024));
        assert_eq!(parse_memory("1k", 0, i64::MAX), Ok(1000));
        assert_eq!(parse_memory("1GB", 0, i64::MAX), Ok(1 << 30));
        assert_eq!(parse_memory("abc", 0, i64::MAX), Err(ValueError::NotMemory));
    }

    #[test]
    fn output_buffer_limits_parse_as_redis() {
        let mut c = Config::default();
        assert_eq!(
            c.get_value("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        c.set_value("client-output-buffer-limit", "pubsub 1mb 256kb 1", false)
            .unwrap();
        assert_eq!(
            c.get_value("client-output-buffer-limit").unwrap(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 262144 1"
        );
        for (value, error) in [
            (
                "pubsub 1mb 256kb",
                "Wrong number of arguments in buffer limit configuration.",
            ),
            (
                "foo 1 2 3",
                "Invalid client class specified in buffer limit configuration.",
            ),
            (
                "pubsub x 1 1",
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ),
            (
                "pubsub 1 1 -1",
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            ),
        ] {
            assert_eq!(
                c.set_value("client-output-buffer-limit", value, false)
                    .unwrap_err()
                    .to_string(),
                error
            );
        }
        // A bad group leaves the earlier good ones unapplied.
        assert!(c
            .set_value("client-output-buffer-limit", "normal 1 2 3 pubsub 1", false)
            .is_err());
        assert_eq!(c.client_output_buffer_limit.normal.hard_bytes, 0);
        c.set_value(
            "client-output-buffer-limit",
            "NORMAL 1 2 3 replica 4 5 6",
            false,
        )
        .unwrap();
        assert_eq!(
            c.get_value("client-output-buffer-limit").unwrap(),
            "normal 1 2 3 slave 4 5 6 pubsub 1048576 262144 1"
        );
    }

    #[test]
    fn every_option_has_a_value() {
        let c = Config::default();
        for def in OPTIONS {
            assert!(c.get_value(def.name).is_some(), "{}", def.name);
        }
    }
}
