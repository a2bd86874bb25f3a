-- Redlite schema, version 3. Applied by src/schema.rs after version 2.
-- Rank rows of large sorted sets (src/zrank.rs): for each level 1-3, the separators of
-- that level (an empty pos: the level's head) with the number of members from each up to
-- the next. pos is the score (8 order-preserving bytes) then the member's bytes, so the
-- rows sort as Redis orders members. After this file, src/schema.rs builds the rows of
-- sorted sets that are already large (none on a new file).
CREATE TABLE IF NOT EXISTS redlite_zset_ranks (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  level  INTEGER NOT NULL,
  pos    BLOB NOT NULL,
  count  INTEGER NOT NULL,
  PRIMARY KEY (key_id, level, pos)
) STRICT, WITHOUT ROWID;
