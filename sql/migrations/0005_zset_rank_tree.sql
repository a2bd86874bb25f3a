-- Redlite schema, version 5. Applied by src/schema.rs after version 4.
-- Rank rows (src/zrank.rs) become a tree of counts: each separator row holds its
-- ordinal among its parent's children and the member counts of its own children's
-- blocks, and level LEVELS + 1 holds one head row, the root. A rank is then one seek per
-- level rather than a sum over the rows of a block. The old rows cannot be converted in
-- SQL; src/schema.rs builds the new ones after this file for every large sorted set.
DROP TABLE IF EXISTS redlite_zset_ranks;
CREATE TABLE redlite_zset_ranks (
  key_id INTEGER NOT NULL REFERENCES redlite_keys (id) ON DELETE CASCADE,
  level  INTEGER NOT NULL,
  pos    BLOB NOT NULL,
  ord    INTEGER NOT NULL,
  counts BLOB,
  PRIMARY KEY (key_id, level, pos)
) STRICT, WITHOUT ROWID;
