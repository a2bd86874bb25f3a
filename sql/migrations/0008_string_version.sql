-- Redlite schema, version 8. Applied by src/schema.rs after version 7.
-- A write that changes only a string's value (SET on a string without expiry, INCR,
-- APPEND, SETRANGE, ...) writes only the string's row: it counts itself in that row's
-- `version` and stamps `updated_at` there, instead of also updating the key's row,
-- which lies on another page. A commit of 800 random SETs over 100,000 keys wrote 833
-- WAL frames, 535 of them for the key rows.
-- A key's version is then redlite_keys.version plus its string row's `version`, and its
-- update time the later of the two `updated_at`s; both sums only grow, so every write
-- still changes the version (WATCH, history). Readers add them up: the WATCH stamps
-- (server/src/multi.rs), KEYINFO (src/keys.rs), history (src/db.rs, src/history.rs)
-- and the views; lookups read the key's row alone.
-- Both columns come before the value, so reading or bumping them never walks a large
-- value's overflow pages: the table is rebuilt, as version 7 did (see there for why the
-- view and triggers go first).

DROP VIEW IF EXISTS redis_strings;
DROP VIEW IF EXISTS redis_keyspace;
DROP TRIGGER IF EXISTS redlite_keys_delete_string;
DROP TRIGGER IF EXISTS redlite_keys_expire_string;
CREATE TABLE redlite_strings_new (
  key_id     INTEGER PRIMARY KEY REFERENCES redlite_keys (id) ON DELETE CASCADE,
  expire_at  INTEGER,                 -- ms; NULL = no expiry; always the key's expire_at
  version    INTEGER NOT NULL DEFAULT 0, -- writes to the value alone (added to the key's)
  updated_at INTEGER NOT NULL DEFAULT 0, -- ms of the last of them; 0 = none
  value      ANY NOT NULL
) STRICT;
INSERT INTO redlite_strings_new (key_id, expire_at, value)
  SELECT key_id, expire_at, value FROM redlite_strings;
DROP TABLE redlite_strings;
ALTER TABLE redlite_strings_new RENAME TO redlite_strings;

CREATE TRIGGER redlite_keys_delete_string AFTER DELETE ON redlite_keys
WHEN old.type = 1 BEGIN
  DELETE FROM redlite_strings WHERE key_id = old.id;
END;
CREATE TRIGGER redlite_keys_expire_string AFTER UPDATE OF expire_at ON redlite_keys
WHEN new.type = 1 AND new.expire_at IS NOT old.expire_at BEGIN
  UPDATE redlite_strings SET expire_at = new.expire_at WHERE key_id = new.id;
END;
