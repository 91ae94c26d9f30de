-- Inventories stored once per distinct content: most hosts of a fleet run the same packages, so a
-- report of a known inventory writes a pointer, not 100 KB of JSON. `digest` is the SHA-256 of
-- `packages`; rows migrated from host_inventories get a digest no new inventory can have
-- ('migrated:<hostname>') and are shared once their host reports again.
CREATE TABLE inventories (
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  packages TEXT NOT NULL CHECK (json_valid(packages))
) STRICT;

INSERT INTO inventories (digest, packages) SELECT 'migrated:' || hostname, packages FROM host_inventories;

CREATE TABLE host_inventories_shared (
  hostname TEXT PRIMARY KEY REFERENCES hosts (hostname) ON DELETE CASCADE,
  inventory_id INTEGER NOT NULL REFERENCES inventories (id)
) STRICT;

INSERT INTO host_inventories_shared (hostname, inventory_id)
  SELECT h.hostname, i.id FROM host_inventories h JOIN inventories i ON i.digest = 'migrated:' || h.hostname;

DROP TABLE host_inventories;
ALTER TABLE host_inventories_shared RENAME TO host_inventories;
CREATE INDEX host_inventories_by_inventory ON host_inventories (inventory_id);

-- An inventory no host points at any more goes (a host dropped, or reporting another one).
CREATE TRIGGER host_inventories_gc_delete AFTER DELETE ON host_inventories
WHEN NOT EXISTS (SELECT 1 FROM host_inventories WHERE inventory_id = OLD.inventory_id)
BEGIN
  DELETE FROM inventories WHERE id = OLD.inventory_id;
END;

CREATE TRIGGER host_inventories_gc_update AFTER UPDATE OF inventory_id ON host_inventories
WHEN OLD.inventory_id <> NEW.inventory_id AND NOT EXISTS (SELECT 1 FROM host_inventories WHERE inventory_id = OLD.inventory_id)
BEGIN
  DELETE FROM inventories WHERE id = OLD.inventory_id;
END;
