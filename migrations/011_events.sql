-- Domain events (design.md section 7): one row per committed change, ids strictly increasing
-- (AUTOINCREMENT never reuses an id, even after the oldest rows are pruned); the last N are kept.
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  type TEXT NOT NULL,
  data TEXT NOT NULL CHECK (json_valid(data))
) STRICT;
