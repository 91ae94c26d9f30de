-- Application → patch dependencies reported by sysinv (report_app_dependencies); rowid keeps report order.
CREATE TABLE app_dependencies (
  app TEXT PRIMARY KEY,
  patch_ids TEXT NOT NULL CHECK (json_valid(patch_ids)),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) STRICT;
