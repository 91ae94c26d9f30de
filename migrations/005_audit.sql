-- Audit trail of every mutating call: who, what, when, result.
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  params TEXT NOT NULL CHECK (json_valid(params)),
  result TEXT NOT NULL CHECK (result IN ('ok', 'error')),
  detail TEXT NOT NULL
) STRICT;

CREATE INDEX audit_at ON audit (at);
