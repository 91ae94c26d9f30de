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

CREATE TABLE host_packages (
  hostname TEXT NOT NULL REFERENCES hosts (hostname) ON DELETE CASCADE,
  name TEXT NOT NULL,
  epoch INTEGER,
  version TEXT NOT NULL,
  pkg_release TEXT,
  arch TEXT NOT NULL
) STRICT;

CREATE INDEX host_packages_host ON host_packages (hostname);

-- apply/remove of a patch lists every host known then; a host leaves the list when it reports again.
CREATE TABLE interim (
  patch_id TEXT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
  hostname TEXT NOT NULL REFERENCES hosts (hostname) ON DELETE CASCADE,
  PRIMARY KEY (patch_id, hostname)
) STRICT;

CREATE INDEX interim_host ON interim (hostname);

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
