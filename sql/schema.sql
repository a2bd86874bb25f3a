-- Redlite schema, version 1. Applied by src/schema.rs when PRAGMA user_version < 1.
-- Runs on SQLite 3.37+ (STRICT). Every table is prefixed `redlite_` so the extension can
-- live inside an application's own database without colliding with its tables.
-- Times are integer milliseconds since the Unix epoch, computed in Rust from the Clock.
-- Keys, fields, members and values are canonical: TEXT when the bytes are valid UTF-8
-- without NUL, BLOB otherwise (hence the ANY columns).

-- One row per live key. type: 1 string, 2 hash, 3 list, 4 set, 5 zset, 6 stream.
CREATE TABLE IF NOT EXISTS redlite_keys (
  id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: WATCH and SCAN rely on it
  db         INTEGER NOT NULL,
  key        ANY NOT NULL,
  type       INTEGER NOT NULL,
  expire_at  INTEGER,                 -- ms; NULL = no expiry
  version    INTEGER NOT NULL,        -- bumped by every write (WATCH, history); a string's
                                      -- value-only writes count in its row (version 8)
  -- Element count of hashes, lists, sets, sorted sets and streams (0 for strings), kept
  -- exact by the UPDATE that bumps the version, so lengths and random picks never count.
  len        INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (db, key)
) STRICT;
CREATE INDEX IF NOT EXISTS redlite_keys_expire ON redlite_keys (expire_at)
  WHERE expire_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS redlite_strings (
  key_id INTEGER PRIMARY KEY REFERENCES redlite_keys (id) ON DELETE CASCADE,
  value  ANY NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS redlite_hashes (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  field  ANY NOT NULL,
  value  ANY NOT NULL,
  PRIMARY KEY (key_id, field)
) STRICT, WITHOUT ROWID;

-- Lists: elements ordered by pos; pushes extend by a gap, inserts take the midpoint,
-- and a closed gap renumbers that one list.
CREATE TABLE IF NOT EXISTS redlite_lists (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  pos    INTEGER NOT NULL,
  value  ANY NOT NULL,
  PRIMARY KEY (key_id, pos)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_sets (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  member ANY NOT NULL,
  PRIMARY KEY (key_id, member)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_zsets (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  member ANY NOT NULL,
  score  REAL NOT NULL,
  PRIMARY KEY (key_id, member)
) STRICT, WITHOUT ROWID;
-- Equal scores order by member bytes (memcmp), as Redis; CAST makes TEXT and BLOB
-- members compare as bytes.
CREATE INDEX IF NOT EXISTS redlite_zsets_score
  ON redlite_zsets (key_id, score, CAST(member AS BLOB));

-- Streams: one row per stream with its id counters, one per entry.
CREATE TABLE IF NOT EXISTS redlite_streams (
  key_id          INTEGER PRIMARY KEY REFERENCES redlite_keys (id) ON DELETE CASCADE,
  last_ms         INTEGER NOT NULL DEFAULT 0,
  last_seq        INTEGER NOT NULL DEFAULT 0,
  entries_added   INTEGER NOT NULL DEFAULT 0,
  max_deleted_ms  INTEGER NOT NULL DEFAULT 0,
  max_deleted_seq INTEGER NOT NULL DEFAULT 0,
  first_ms        INTEGER,             -- recorded first entry id (XINFO), NULL when empty
  first_seq       INTEGER
) STRICT;

CREATE TABLE IF NOT EXISTS redlite_stream_entries (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  ms     INTEGER NOT NULL,
  seq    INTEGER NOT NULL,
  fields BLOB NOT NULL,                -- field/value pairs in order (see src/stream.rs)
  PRIMARY KEY (key_id, ms, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_stream_groups (
  key_id       INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  name         ANY NOT NULL,
  last_ms      INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL,
  entries_read INTEGER,                -- NULL = unknown, as Redis's -1
  PRIMARY KEY (key_id, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_stream_consumers (
  key_id    INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  group_name ANY NOT NULL,
  name      ANY NOT NULL,
  seen_at   INTEGER NOT NULL,
  active_at INTEGER,
  PRIMARY KEY (key_id, group_name, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_stream_pending (
  key_id         INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  group_name     ANY NOT NULL,
  ms             INTEGER NOT NULL,
  seq            INTEGER NOT NULL,
  consumer       ANY NOT NULL,
  delivered_at   INTEGER NOT NULL,
  delivery_count INTEGER NOT NULL,
  PRIMARY KEY (key_id, group_name, ms, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS redlite_stream_pending_consumer
  ON redlite_stream_pending (key_id, group_name, consumer, ms, seq);

-- History: opt-in rules (most specific wins) and the recorded entries, which outlive
-- their key (no foreign key on purpose).
-- level: 0 global, 1 database, 2 key. retention: NULL unlimited, 'time' ms, 'count' n.
CREATE TABLE IF NOT EXISTS redlite_history_config (
  level           INTEGER NOT NULL,
  db              INTEGER NOT NULL DEFAULT -1,
  key             ANY NOT NULL DEFAULT '',
  enabled         INTEGER NOT NULL,
  retention_kind  TEXT,
  retention_value INTEGER,
  PRIMARY KEY (level, db, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS redlite_history (
  id        INTEGER PRIMARY KEY,
  db        INTEGER NOT NULL,
  key       ANY NOT NULL,
  version   INTEGER NOT NULL,
  op        TEXT NOT NULL,
  ts_ms     INTEGER NOT NULL,
  type      INTEGER,                   -- NULL once the key is gone
  value     BLOB,                      -- MessagePack snapshot; NULL once the key is gone
  expire_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS redlite_history_key ON redlite_history (db, key, ts_ms);

-- Small settings (autovacuum and the like), one row each.
CREATE TABLE IF NOT EXISTS redlite_settings (
  name  TEXT PRIMARY KEY,
  value ANY
) STRICT, WITHOUT ROWID;
