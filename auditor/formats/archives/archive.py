"""Generic archives: zip, tar and compressed streams; every member goes back to the engine.

The zip reader (`archive_zip`) compares the loader's and the strict reading,
the tar reader (`archive_tar`) parses headers itself, compressed streams
(`archive_compressed`) are decompressed as bounded streams. A zip or tar
whose member names show a PyTorch checkpoint or an npz is scanned with that
layout even when its first member did not reveal it to the earlier sniffers.
"""

from __future__ import annotations

from typing import BinaryIO

from auditor.formats.archives import compressed as archive_compressed
from auditor.formats.archives import members as archive_members
from auditor.formats.archives import tar as archive_tar
from auditor.formats.archives import zip as archive_zip
from auditor.formats.contract import ScanContext
from auditor.formats.pickle import numpy as numpy_format
from auditor.formats.pickle import torch_zip as torch_format
from auditor.model import FormatResult

NAME = "zip"

RULES = archive_zip.RULES + archive_members.RULES + archive_tar.RULES + archive_compressed.RULES

_ZIP_LAYOUTS = (torch_format.ZIP_LAYOUT, numpy_format.NPZ_LAYOUT)
_TAR_LAYOUTS = (torch_format.TAR_LAYOUT,)
_ZIP_MAGIC = (archive_zip.LOCAL_SIG, archive_zip.END_SIG)


def sniff(head: bytes, name: str) -> bool:
    return (head.startswith(_ZIP_MAGIC) or archive_tar.is_tar(head)
            or archive_compressed.kind_of(head) is not None)


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    head, f = archive_members.peek(f, archive_tar.BLOCK)
    if head.startswith(_ZIP_MAGIC):
        archive_zip.scan_zip(f, ctx, _ZIP_LAYOUTS)
    elif archive_tar.is_tar(head):
        archive_tar.scan_tar(f, ctx, _TAR_LAYOUTS)
    else:
        kind = archive_compressed.kind_of(head)
        assert kind is not None  # sniff said so
        archive_compressed.scan_compressed(f, ctx, kind)
    return ctx.result
