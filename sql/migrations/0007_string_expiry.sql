-- Redlite schema, version 7. Applied by src/schema.rs after version 6.
-- A string's row carries its key's expiry, so GET reads the value and the expiry from
-- one row found through the (db, key) index's rowid, without also reading the key's row
-- (three b-tree seeks become two). The column comes before the value, so reading it, or
-- changing it, never walks a large value's overflow pages. The trigger below keeps it
-- equal to redlite_keys.expire_at whichever statement changes that; the code inserts a
-- string's row with its key's expiry (src/string.rs, src/keys.rs, src/history.rs).
-- A row exists only while its key is a string (a key that changes type is deleted and
-- created again under a new id), so a row found is a string key's value.
-- Rebuilt rather than altered: ADD COLUMN would put the expiry after the value. The views
-- (recreated after every migration; redis_keyspace names the table since version 8) and
-- the triggers name the table, and RENAME checks every view and trigger, so they go
-- first (the expiry trigger exists when a file's version was set back by hand and this
-- runs again).

DROP VIEW IF EXISTS redis_strings;
DROP VIEW IF EXISTS redis_keyspace;
DROP TRIGGER IF EXISTS redlite_keys_delete_string;
DROP TRIGGER IF EXISTS redlite_keys_expire_string;
CREATE TABLE redlite_strings_new (
  key_id    INTEGER PRIMARY KEY REFERENCES redlite_keys (id) ON DELETE CASCADE,
  expire_at INTEGER,                 -- ms; NULL = no expiry; always the key's expire_at
  value     ANY NOT NULL
) STRICT;
INSERT INTO redlite_strings_new (key_id, expire_at, value)
  SELECT s.key_id, k.expire_at, s.value
  FROM redlite_strings s JOIN redlite_keys k ON k.id = s.key_id;
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
