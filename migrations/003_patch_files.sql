-- Payload files of patches, stored once each under <data>/content by sha256.
CREATE TABLE patch_files (
  patch_id TEXT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('software', 'semantic', 'extra')),
  name TEXT NOT NULL,
  sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
  size INTEGER NOT NULL CHECK (size >= 0),
  -- 1 once commit made the file garbage (a higher version is committed): the bytes are gone, the name stays.
  pruned INTEGER NOT NULL DEFAULT 0 CHECK (pruned IN (0, 1)),
  PRIMARY KEY (patch_id, kind, name)
) STRICT;

CREATE INDEX patch_files_sha256 ON patch_files (sha256);
