-- Redlite schema, version 6. Applied by src/schema.rs after version 5.
-- History entries are stored clustered by key: one b-tree ordered by
-- (db, key, ts_ms, seq), where seq numbers a key name's entries 1, 2, 3, ... and ts_ms
-- never decreases along seq (src/history.rs). A write then touches one leaf (its entry
-- and the one retention drops sit side by side) instead of a table row, an index entry,
-- and an older row elsewhere; and COUNT retention finds the entry to drop from the first
-- and last entries' seq, instead of stepping back over n index entries.
CREATE TABLE redlite_history_by_key (
  db        INTEGER NOT NULL,
  key       ANY NOT NULL,
  ts_ms     INTEGER NOT NULL,
  seq       INTEGER NOT NULL,          -- 1, 2, 3, ... per (db, key), in write order
  version   INTEGER NOT NULL,
  op        TEXT NOT NULL,
  type      INTEGER,                   -- NULL once the key is gone
  value     BLOB,                      -- MessagePack snapshot; NULL once the key is gone
  expire_at INTEGER,
  PRIMARY KEY (db, key, ts_ms, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO redlite_history_by_key
  (db, key, ts_ms, seq, version, op, type, value, expire_at)
  SELECT db, key, ts_ms, row_number() OVER (PARTITION BY db, key ORDER BY ts_ms, id),
         version, op, type, value, expire_at
  FROM redlite_history;
DROP TABLE redlite_history;
ALTER TABLE redlite_history_by_key RENAME TO redlite_history;
