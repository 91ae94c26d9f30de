-- What each payload file is (read from its rpm/deb header at import), for the patch-state rule.
ALTER TABLE patch_files ADD COLUMN family TEXT CHECK (family IN ('rpm', 'deb'));
ALTER TABLE patch_files ADD COLUMN pkg_name TEXT;
ALTER TABLE patch_files ADD COLUMN pkg_epoch INTEGER;
ALTER TABLE patch_files ADD COLUMN pkg_version TEXT;
ALTER TABLE patch_files ADD COLUMN pkg_release TEXT;
ALTER TABLE patch_files ADD COLUMN pkg_arch TEXT;
