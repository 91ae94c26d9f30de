-- requires_reboot (design.md section 5): the boot id a host last reported, and the boot id it had
-- when an install applied packages of a reboot-required patch (NULL: no such install since its
-- last reboot). A report with a different boot id clears the latter.
ALTER TABLE hosts ADD COLUMN boot_id TEXT;
ALTER TABLE hosts ADD COLUMN patched_boot_id TEXT;
