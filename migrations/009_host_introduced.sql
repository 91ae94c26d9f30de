-- Packages a patch is known to have added on a host (design.md section 5, "Keys and safety"): an
-- install recorded them as newly installed, or they were the host's missing_pkgs before. Only these
-- may be removed when no feed version and no Applied patch provides them any more.
CREATE TABLE host_introduced (
  hostname TEXT NOT NULL REFERENCES hosts (hostname) ON DELETE CASCADE,
  name TEXT NOT NULL,
  arch TEXT NOT NULL,
  PRIMARY KEY (hostname, name, arch)
) STRICT;
