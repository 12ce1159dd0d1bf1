"""The rule set's version moves with the rule set.

The mirror keys its incremental scans on `RULES_VERSION`, so a rule added or
re-rated without a new version would never reach models already scanned. The
catalogue's ids and severities are pinned here per version: changing them fails
this test until the version is bumped and the new fingerprint recorded.
"""

from __future__ import annotations

import hashlib

from auditor.rules import catalogue
from auditor.scanning.engine import RULES_VERSION

# RULES_VERSION -> sha256 of the catalogue's "id severity" lines, sorted by id.
CATALOGUE_BY_VERSION = {
    "0.1.0+rules.2": "29eca2dbf0949933058a914884245f00beb91b1738eceb87751d98d2f1f9607c",
}


def test_the_rules_version_names_this_exact_rule_set():
    lines = "\n".join(f"{rule_id} {rule.severity.label}"
                      for rule_id, rule in sorted(catalogue().items()))
    fingerprint = hashlib.sha256(lines.encode()).hexdigest()
    assert CATALOGUE_BY_VERSION.get(RULES_VERSION) == fingerprint, (
        f"the rule set changed: bump RULES_VERSION in auditor/scanning/engine.py and record "
        f"{fingerprint} for it here")
