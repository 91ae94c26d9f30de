-- Releases created by init_release. The running release comes from configuration and is always known.
CREATE TABLE releases (
  sw_version TEXT PRIMARY KEY,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) STRICT;
