-- Read-only views for people: expired keys hidden (by the reader's wall clock), types
-- and times rendered as UTC text. Recreated by every migration so they match the code.

DROP VIEW IF EXISTS redis_keyspace;
CREATE VIEW redis_keyspace AS
  SELECT k.db, k.key, CASE k.type WHEN 1 THEN 'string' WHEN 2 THEN 'hash' WHEN 3 THEN 'list' WHEN 4 THEN 'set' WHEN 5 THEN 'zset' WHEN 6 THEN 'stream' END AS type, k.expire_at, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires, k.version + coalesce(s.version, 0) AS version,
         strftime('%Y-%m-%d %H:%M:%f', k.created_at / 1000.0, 'unixepoch') AS created,
         strftime('%Y-%m-%d %H:%M:%f', max(k.updated_at, coalesce(s.updated_at, 0)) / 1000.0, 'unixepoch') AS updated
  FROM redlite_keys k LEFT JOIN redlite_strings s ON s.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_strings;
CREATE VIEW redis_strings AS
  SELECT k.db, k.key, s.value, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires, k.version + s.version AS version
  FROM redlite_keys k JOIN redlite_strings s ON s.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_hashes;
CREATE VIEW redis_hashes AS
  SELECT k.db, k.key, h.field, h.value, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires
  FROM redlite_keys k JOIN redlite_hashes h ON h.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_lists;
CREATE VIEW redis_lists AS
  SELECT k.db, k.key,
         row_number() OVER (PARTITION BY l.key_id ORDER BY l.pos) - 1 AS idx, l.value, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires
  FROM redlite_keys k JOIN redlite_lists l ON l.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_sets;
CREATE VIEW redis_sets AS
  SELECT k.db, k.key, s.member, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires
  FROM redlite_keys k JOIN redlite_sets s ON s.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_zsets;
CREATE VIEW redis_zsets AS
  SELECT k.db, k.key, z.member, z.score, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires
  FROM redlite_keys k JOIN redlite_zsets z ON z.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

DROP VIEW IF EXISTS redis_streams;
CREATE VIEW redis_streams AS
  SELECT k.db, k.key, e.ms || '-' || e.seq AS id, e.ms, e.seq, CASE WHEN k.expire_at IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', k.expire_at / 1000.0, 'unixepoch') END AS expires
  FROM redlite_keys k JOIN redlite_stream_entries e ON e.key_id = k.id
  WHERE (k.expire_at IS NULL OR k.expire_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
