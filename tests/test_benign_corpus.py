"""Real checkpoints are clean: nothing at high or above on what real training code writes.

One test writes the whole corpus (tests/benign/) with the real libraries and
scans each model folder as `auditor scan` would. A high or critical finding on
any of them is a false alarm. Medium findings are allowed only for rules whose
catalogue entry says why they are fair on benign files (`docs/rules.md`).
"""

from __future__ import annotations

from collections import Counter

from auditor import pipeline
from auditor.model import Severity
from auditor.rules import fair_on_benign
from auditor.scanning.options import ScanOptions
from tests.benign.corpus import WRITERS


def test_every_real_checkpoint_is_clean_at_high_and_its_mediums_are_fair(tmp_path):
    files = 0
    libraries = Counter()
    alarms, unexplained = [], []
    fair = fair_on_benign()
    for writer in WRITERS:
        folder = tmp_path / writer.name
        folder.mkdir()
        writer.make(folder)
        result = pipeline.scan(folder, ScanOptions(jobs=1))
        for model in result.models:
            files += len(model.files)
            libraries[writer.library.split(".")[0]] += 1
            for finding in model.all_findings():
                where = f"{writer.name}/{finding.file} {finding.location}".rstrip()
                line = f"{where}: {finding.rule} {finding.severity.label} {finding.detail}"
                if finding.severity >= Severity.HIGH:
                    alarms.append(line)
                elif finding.severity == Severity.MEDIUM and finding.rule not in fair:
                    unexplained.append(line)
    assert alarms == [], "false alarms on real checkpoints:\n" + "\n".join(alarms)
    assert unexplained == [], "medium findings no rule says are fair:\n" + "\n".join(unexplained)
    assert files >= 40 and len(libraries) >= 10, (files, libraries)
