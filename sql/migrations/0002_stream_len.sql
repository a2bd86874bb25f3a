-- Redlite schema, version 2. Applied by src/schema.rs after version 1 (sql/schema.sql).
-- Streams now keep redlite_keys.len exact (their entry count), as the other collections
-- do, so XLEN and trimming read it instead of counting. A file written at version 1 left
-- it at 0 for streams: count each stream's entries once. On a new file there is no row.
UPDATE redlite_keys
   SET len = (SELECT count(*) FROM redlite_stream_entries e WHERE e.key_id = redlite_keys.id)
 WHERE type = 6;
