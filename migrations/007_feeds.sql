-- Release feeds: the base packages hosts of a release had at install time, per package family.
CREATE TABLE feed_packages (
  id INTEGER PRIMARY KEY,
  sw_version TEXT NOT NULL,
  family TEXT NOT NULL CHECK (family IN ('rpm', 'deb')),
  name TEXT NOT NULL,
  epoch INTEGER,
  version TEXT NOT NULL,
  pkg_release TEXT,
  arch TEXT NOT NULL,
  file_name TEXT NOT NULL,
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
  size INTEGER NOT NULL CHECK (size >= 0),
  added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  UNIQUE (sw_version, family, name, arch, epoch, version, pkg_release)
) STRICT;

CREATE INDEX feed_packages_sha256 ON feed_packages (sha256);
