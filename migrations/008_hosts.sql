-- Hosts reported by agents, their installed packages, interim sets and install requests.
CREATE TABLE hosts (
  hostname TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  ip TEXT NOT NULL,
  nodetype TEXT,
  subfunctions TEXT NOT NULL CHECK (json_valid(subfunctions)),
  sw_version TEXT NOT NULL,
  os_id TEXT NOT NULL,
  os_version_id TEXT NOT NULL,
  os_pretty_name TEXT NOT NULL,
  arch TEXT NOT NULL,
  driver TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('idle', 'installing', 'install-failed', 'install-rejected')),
  patch_failed INTEGER NOT NULL CHECK (patch_failed IN (0, 1)),
  requires_reboot INTEGER NOT NULL CHECK (requires_reboot IN (0, 1)),
  reboot_reasons TEXT NOT NULL CHECK (json_valid(reboot_reasons)),
  locked INTEGER NOT NULL CHECK (locked IN (0, 1)),
  inventory_hash TEXT,
  first_seen_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  last_report_at TEXT NOT NULL
) STRICT;

-- The installed packages a host last reported, as one JSON array (written whole on every change).
CREATE TABLE host_inventories (
  hostname TEXT PRIMARY KEY REFERENCES hosts (hostname) ON DELETE CASCADE,
  packages TEXT NOT NULL CHECK (json_valid(packages))
) STRICT;

-- apply/remove of a patch makes it interim (Partial-*) until every host known then has reported
-- again: a host is still pending for the patch while its last report is older than `since`.
CREATE TABLE patch_interim (
  patch_id TEXT PRIMARY KEY REFERENCES patches (id) ON DELETE CASCADE,
  since TEXT NOT NULL
) STRICT;

-- Install requests and their outcome; kept after a host is dropped (history).
CREATE TABLE installs (
  id INTEGER PRIMARY KEY,
  hostname TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'installing', 'success', 'failed', 'rejected')),
  force INTEGER NOT NULL CHECK (force IN (0, 1)),
  requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  started_at TEXT,
  finished_at TEXT,
  reason TEXT,
  message TEXT,
  output_tail TEXT,
  changed TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(changed))
) STRICT;

-- One open install per host.
CREATE UNIQUE INDEX installs_one_open ON installs (hostname) WHERE status IN ('pending', 'installing');
