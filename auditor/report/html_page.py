"""What both HTML reporters share: one self-contained page, its tables, its filter script.

The page is read by a person in a browser, on a machine that may hold other
secrets, about an artifact that may be hostile. So it loads nothing: no
network, no external script, font or image; a Content-Security-Policy meta tag
allows only the one stylesheet and the one script below, by their SHA-256
hashes. Every string that came from the artifact goes through `esc` (text and
attributes) or `json_block` (data for the script, safe inside `<script>`); the
script reads that data with `textContent` + `JSON.parse` and writes only
`hidden` flags and counts, never markup. Without JavaScript every table is
complete: the filters only hide rows, and stay hidden themselves until the
script runs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.model import Severity

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #1d1d1f;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #d0d0d5; padding: .25em .5em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f2f2f5; }
.verdict { font-size: 1.3em; font-weight: bold; padding: .5em 1em; border-radius: 4px; }
.pass { background: #e3f5e1; color: #14532d; } .fail { background: #fde2e1; color: #7f1d1d; }
.sev-critical, .sev-high { color: #b91c1c; font-weight: bold; } .sev-medium { color: #b45309; }
.sev-low { color: #1d4ed8; } .sev-info { color: #555; }
#findings td:nth-child(-n+2), #failed td:nth-child(-n+2),
.violations td:nth-child(-n+3) { white-space: nowrap; }
#filters { margin: .5em 0; } #filters label { margin-right: 1em; }
.none { color: #666; font-style: italic; }
code { font-family: ui-monospace, monospace; }
"""

# Hides the findings rows the filters exclude. Reads the rows' severity and rule from the JSON
# data block (never from markup), writes only `hidden` and a count.
_SCRIPT = """
(function () {
  "use strict";
  var block = document.getElementById("auditor-findings");
  var table = document.getElementById("findings");
  if (!block || !table) { return; }
  var data = JSON.parse(block.textContent);
  var rows = table.tBodies[0].rows;
  if (data.length !== rows.length) { return; }
  var boxes = document.querySelectorAll("#filters input[name=severity]");
  var rule = document.getElementById("rule-filter");
  var shown = document.getElementById("shown");
  function apply() {
    var wanted = {};
    boxes.forEach(function (box) { wanted[box.value] = box.checked; });
    var count = 0;
    for (var i = 0; i < rows.length; i++) {
      var visible = wanted[data[i].severity] === true &&
        (rule.value === "" || rule.value === data[i].rule);
      rows[i].hidden = !visible;
      if (visible) { count++; }
    }
    shown.textContent = count + " of " + rows.length + " shown";
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  rule.addEventListener("change", apply);
  document.getElementById("filters").hidden = false;
  apply();
}());
"""


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CSP = ("default-src 'none'; base-uri 'none'; form-action 'none'; "
       f"style-src {_sha256(_CSS)}; script-src {_sha256(_SCRIPT)}")


def esc(value: object) -> str:
    """Any value as HTML text or attribute content: `<`, `>`, `&` and both quotes escaped."""
    return html.escape("" if value is None else str(value), quote=True)


def json_block(element_id: str, data: Any) -> str:
    """Data for the script as a JSON data block that no string inside can end or escape.

    `<`, `>` and `&` become JSON escapes (so `</script>` or `<!--` never appears), as do
    U+2028/U+2029; the block's type keeps the browser from running it.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for raw, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, safe)
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def location(member: str | None, offset: int | None) -> str:
    """Where inside its file a finding is: archive member and byte offset, as far as known."""
    parts = [f"member {member}" if member else "",
             f"offset {offset}" if isinstance(offset, int) and offset >= 0 else ""]
    return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class Code:
    """A table cell shown as code (a rule id), escaped like every other cell."""

    text: str


def _cell(value: object) -> str:
    return f"<td><code>{esc(value.text)}</code></td>" if isinstance(value, Code) \
        else f"<td>{esc(value)}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, empty: str,
          table_id: str = "", kind: str = "", row_classes: Sequence[str] = ()) -> str:
    """A table of escaped cells; `empty` is said instead when there are no rows.

    `table_id` for a table the page has once, `kind` (a class) for one it has per model;
    `row_classes`, one per row, for rows the script filters (the findings' severities).
    """
    body = []
    for index, row in enumerate(rows):
        cls = f' class="{esc(row_classes[index])}"' if index < len(row_classes) else ""
        body.append(f"<tr{cls}>" + "".join(_cell(cell) for cell in row) + "</tr>")
    if not body:
        return f'<p class="none">{esc(empty)}</p>'
    ident = f' id="{esc(table_id)}"' if table_id else ""
    ident += f' class="{esc(kind)}"' if kind else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (f"<table{ident}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body)
            + "\n</tbody></table>")


def section(title: str, *parts: str) -> str:
    """A titled section; `parts` are HTML already built by the functions here."""
    return f"<section><h2>{esc(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def para(text: str) -> str:
    return f"<p>{esc(text)}</p>"


@dataclass(frozen=True)
class FindingRow:
    """One finding as the findings table shows it, from either subject."""

    model: str
    severity: str
    rule: str
    file: str
    message: str
    location: str


def _severities(present: Iterable[str]) -> list[str]:
    """Every severity, worst first, then any other label a foreign SBOM used (`unknown`)."""
    known = [s.label for s in sorted(Severity, reverse=True)]
    return known + sorted(set(present) - set(known))


def findings_section(rows: Sequence[FindingRow], title: str = "Findings") -> str:
    """The findings table, most severe first, with severity and rule filters for the script."""
    rank = {s.label: int(s) for s in Severity}
    ordered = sorted(rows, key=lambda r: (-rank.get(r.severity, -1), r.rule, r.model, r.file))
    if not ordered:
        return section(title, '<p class="none" id="findings-count">0 findings</p>')
    boxes = "".join(
        f'<label><input type="checkbox" name="severity" value="{esc(label)}" checked> '
        f"{esc(label)}</label>" for label in _severities(r.severity for r in ordered))
    rules = "".join(f'<option value="{esc(rule)}">{esc(rule)}</option>'
                    for rule in sorted({r.rule for r in ordered}))
    filters = (f'<form id="filters" hidden>{boxes}<label>rule <select id="rule-filter">'
               f'<option value="">all rules</option>{rules}</select></label>'
               ' <output id="shown"></output></form>')
    shown = table(("severity", "rule", "model", "file", "message", "location"),
                  [(r.severity, Code(r.rule), r.model, r.file, r.message, r.location)
                   for r in ordered], empty="", table_id="findings",
                  row_classes=[f"sev-{r.severity}" for r in ordered])
    return section(
        title, f'<p id="findings-count">{len(ordered)} findings</p>', filters, shown,
        json_block("auditor-findings", [{"severity": r.severity, "rule": r.rule}
                                        for r in ordered]),
    )


def page(title: str, passed: bool, headline: str, sections: Sequence[str]) -> str:
    """The whole document: CSP, style, the verdict banner, the sections, the filter script."""
    state = "pass" if passed else "fail"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="verdict {state}" id="verdict">{esc(headline)}</p>\n'
        + "\n".join(sections)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )


def _score(value: object) -> str:
    """A measured similarity, or nothing when unmeasured (-1 or absent)."""
    return f"{value:.2f}" if isinstance(value, int | float) and value >= 0 else ""


def lineage_table(entries: Sequence[dict[str, Any]], extra: Sequence[str] = ()) -> str:
    """Ancestors with how strongly each derivation is proven (grade) and from what (evidence).

    Scan and verdict lineage entries share these keys (the scan's facts and the SBOM's
    pedigree); `extra` names further keys a verdict adds (jurisdiction, tier, tripped).
    """
    def cell(entry: dict[str, Any], key: str) -> object:
        value = entry.get(key)
        return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else value

    rows = [
        [e.get("depth"), e.get("name"), e.get("relation"), e.get("grade"),
         "; ".join(str(x) for x in e.get("evidence") or ()), e.get("publisher"),
         e.get("publisher_grade"), _score(e.get("score")), *(cell(e, k) for k in extra)]
        for e in entries
    ]
    return table(("depth", "ancestor", "relation", "grade", "evidence", "publisher",
                  "publisher grade", "score", *extra), rows,
                 empty="no ancestor declared, resolved or measured")
