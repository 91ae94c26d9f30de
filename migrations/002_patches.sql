-- Patches: every metadata field of a .patch file (spec 2.4 / 4.2) plus the stored repostate.
CREATE TABLE patches (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL UNIQUE,
  sw_version TEXT NOT NULL,
  repostate TEXT NOT NULL CHECK (repostate IN ('Available', 'Applied', 'Committed')),
  status TEXT,
  unremovable TEXT,
  summary TEXT,
  description TEXT,
  install_instructions TEXT,
  warnings TEXT,
  apply_active_release_only TEXT,
  restart_script TEXT,
  reboot_required TEXT NOT NULL CHECK (reboot_required IN ('Y', 'N')),
  contents TEXT NOT NULL CHECK (json_valid(contents)),
  personalities TEXT NOT NULL CHECK (json_valid(personalities)),
  semantics TEXT NOT NULL CHECK (json_valid(semantics)),
  metadata_xml TEXT NOT NULL,
  signer TEXT,
  imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) STRICT;

CREATE INDEX patches_sw_version ON patches (sw_version);

-- requires links, in metadata order; the required patch need not exist (legacy allows dangling ids).
CREATE TABLE patch_requires (
  patch_id TEXT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  required_id TEXT NOT NULL,
  PRIMARY KEY (patch_id, position)
) STRICT;

CREATE INDEX patch_requires_required ON patch_requires (required_id);
