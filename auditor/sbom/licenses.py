"""Model card licence ids → CycloneDX licences: an SPDX id when there is one, a name otherwise.

The Hub's licence ids are lower-case and mostly SPDX ids in disguise
(`apache-2.0` is `Apache-2.0`), but some are not SPDX at all (`llama3.1`,
`gemma`, `openrail`) and some name a licence SPDX only knows in a more
precise form (`gpl-3.0`). Writing a non-SPDX string as an `id` makes the SBOM
invalid; writing an SPDX licence as a `name` hides it from licence policies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

# Hub ids whose SPDX spelling is not their case-folded form (the GNU family is "-only" in SPDX).
HUB_TO_SPDX: dict[str, str] = {
    "agpl-3.0": "AGPL-3.0-only",
    "gpl-2.0": "GPL-2.0-only",
    "gpl-3.0": "GPL-3.0-only",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-3.0": "LGPL-3.0-only",
}
# Hub ids that mean "no licence stated here", not a licence called that.
NOT_A_LICENCE = frozenset({"unknown", ""})


@dataclass(frozen=True)
class Licence:
    """Exactly one of `spdx_id` and `name` is set."""

    spdx_id: str | None = None
    name: str | None = None
    url: str | None = None


def from_card(card: dict[str, object]) -> list[Licence]:
    """The licences a card's `license` field states (`other` uses `license_name`)."""
    raw = card.get("license")
    if isinstance(raw, str):
        ids = [raw]
    elif isinstance(raw, list):
        ids = [v for v in raw if isinstance(v, str)]
    else:
        ids = []
    link = card.get("license_link")
    url = link if isinstance(link, str) and link.startswith(("https://", "http://")) else None
    out: list[Licence] = []
    for hub_id in ids:
        key = hub_id.strip().lower()
        if key in NOT_A_LICENCE:
            continue
        if key == "other":
            name = card.get("license_name")
            out.append(Licence(name=name if isinstance(name, str) and name else "other", url=url))
            continue
        spdx_id = spdx(key)
        if spdx_id:
            out.append(Licence(spdx_id=spdx_id, url=url))
        else:
            out.append(Licence(name=hub_id.strip(), url=url))
    return out


def spdx(hub_id: str) -> str | None:
    """The SPDX id for a Hub licence id, or None when SPDX has none."""
    key = hub_id.strip().lower()
    return HUB_TO_SPDX.get(key) or _spdx_ids().get(key)


@cache
def _spdx_ids() -> dict[str, str]:
    """Lower-cased SPDX id → its spelling, from the SPDX id list cyclonedx-python-lib ships.

    This is the list and the lookup of `cyclonedx.spdx.fixup_id`, read without importing
    `cyclonedx.spdx`, which also builds a whole SPDX expression parser on import (a fifth
    of a gate's start-up) that nothing here uses.
    """
    from cyclonedx.schema._res import SPDX_JSON

    with open(SPDX_JSON, encoding="utf-8") as schema:
        return {spdx_id.lower(): spdx_id for spdx_id in json.load(schema)["enum"]}
