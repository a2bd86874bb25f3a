-- Redlite schema, version 4. Applied by src/schema.rs after version 3.
-- A deleted key takes its rows in the type tables with it. The tables' foreign keys say
-- ON DELETE CASCADE, but SQLite enforces foreign keys only on connections that turn them
-- on (PRAGMA foreign_keys = ON), which the sqlite3 shell, Python and most applications
-- that load the extension do not: their DEL, FLUSHDB and expiry left the rows behind.
-- These triggers delete them on every connection, from the one or few tables of the
-- key's type (a cascade probes all nine). Rows left behind by earlier versions go once.

DELETE FROM redlite_strings WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_hashes WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_lists WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_sets WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_zsets WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_zset_ranks WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_streams WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_stream_entries WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_stream_groups WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_stream_consumers WHERE key_id NOT IN (SELECT id FROM redlite_keys);
DELETE FROM redlite_stream_pending WHERE key_id NOT IN (SELECT id FROM redlite_keys);

CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_string AFTER DELETE ON redlite_keys
WHEN old.type = 1 BEGIN
  DELETE FROM redlite_strings WHERE key_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_hash AFTER DELETE ON redlite_keys
WHEN old.type = 2 BEGIN
  DELETE FROM redlite_hashes WHERE key_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_list AFTER DELETE ON redlite_keys
WHEN old.type = 3 BEGIN
  DELETE FROM redlite_lists WHERE key_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_set AFTER DELETE ON redlite_keys
WHEN old.type = 4 BEGIN
  DELETE FROM redlite_sets WHERE key_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_zset AFTER DELETE ON redlite_keys
WHEN old.type = 5 BEGIN
  DELETE FROM redlite_zsets WHERE key_id = old.id;
  DELETE FROM redlite_zset_ranks WHERE key_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS redlite_keys_delete_stream AFTER DELETE ON redlite_keys
WHEN old.type = 6 BEGIN
  DELETE FROM redlite_streams WHERE key_id = old.id;
  DELETE FROM redlite_stream_entries WHERE key_id = old.id;
  DELETE FROM redlite_stream_groups WHERE key_id = old.id;
  DELETE FROM redlite_stream_consumers WHERE key_id = old.id;
  DELETE FROM redlite_stream_pending WHERE key_id = old.id;
END;
