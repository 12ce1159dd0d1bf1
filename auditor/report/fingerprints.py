"""`auditor fingerprint show`: what each model's bytes measure as, for a person or a program.

It reads only the report (`facts["fingerprint"]` and the lineage entries
graded `measured`), so it shows exactly what the SBOM and the policies see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from auditor.model import ModelReport


def _measured(model: ModelReport) -> list[dict[str, Any]]:
    return [e for e in model.facts.get("lineage", []) if e.get("grade") == "measured"]


def render(models: Sequence[ModelReport], fmt: str) -> str:
    if fmt == "json":
        doc = {"models": [{"name": m.name, "fingerprint": m.facts.get("fingerprint", {}),
                           "measured": _measured(m),
                           "declared": [e for e in m.facts.get("lineage", [])
                                        if e.get("grade") != "measured"]}
                          for m in models]}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    lines: list[str] = []
    for model in models:
        fp = model.facts.get("fingerprint", {})
        lines.append(f"model {model.name}")
        tok = fp.get("tokenizer")
        if tok:
            lines.append(f"  tokenizer     {tok['kind'] or 'unknown'}, {tok['size']} tokens, "
                         f"sha256 {tok['digest'][:16]}…")
        specials = fp.get("specials")
        if specials:
            lines.append("  specials      " + ", ".join(f"{k} {v!r}" for k, v in specials.items()))
        arch = fp.get("architecture")
        if arch:
            shown = ", ".join(f"{k} {v}" for k, v in arch.items() if k != "pattern")
            lines.append(f"  architecture  {shown}")
        weights = fp.get("weights")
        if weights:
            lines.append(f"  weights       {weights['rows']} rows of {weights['tensor']} "
                         f"[{weights['vocab']} x {weights['hidden']}]")
        if not fp:
            lines.append("  nothing to fingerprint (no tokenizer, shape or embedding found)")
        elif not weights:
            why = "; ".join(fp.get("skipped", [])) or ("no token embedding with sampled rows "
                                                        "found")
            lines.append(f"  weights       not measured ({why}): only the family table can "
                         "match")
        measured = _measured(model)
        for entry in measured:
            lines.append(f"  measured      {entry['name']} ({entry['relation']}, publisher "
                         f"{entry['publisher']}, score {entry.get('score', 0):.2f}): "
                         f"{'; '.join(entry['evidence'])}")
        if fp and not measured:
            lines.append("  measured      no family or reference matches clearly")
        lines.append("")
    return "\n".join(lines)
