"""Generic archives: zip, tar and compressed streams; every member goes back to the engine.

The zip reader (`zip`) compares the loader's and the strict reading, the tar
reader (`tar`) parses headers itself, compressed streams (`compressed`) are
decompressed as bounded streams. A zip or tar whose member names show a
layout the registry plugs in (a PyTorch checkpoint, an npz) is scanned with
that layout even when its first member did not reveal it to the earlier
sniffers. The layouts live with their formats, in other rooms: the registry
hands them over (`spec`), so this room never imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from auditor.formats.archives import compressed as archive_compressed
from auditor.formats.archives import members as archive_members
from auditor.formats.archives import tar as archive_tar
from auditor.formats.archives import zip as archive_zip
from auditor.formats.archives.members import Layout
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.model import FormatId, FormatResult

RULES = archive_zip.RULES + archive_members.RULES + archive_tar.RULES + archive_compressed.RULES

_ZIP_MAGIC = (archive_zip.LOCAL_SIG, archive_zip.END_SIG)
_COMPRESSED = (FormatId.GZIP, FormatId.BZ2, FormatId.XZ, FormatId.LZMA, FormatId.ZLIB)


def sniff(head: bytes, name: str) -> bool:
    return (head.startswith(_ZIP_MAGIC) or archive_tar.is_tar(head)
            or archive_compressed.kind_of(head) is not None)


@dataclass(frozen=True)
class _Archives:
    zip_layouts: tuple[Layout, ...]
    tar_layouts: tuple[Layout, ...]

    def scan(self, f: BinaryIO, ctx: ScanContext) -> FormatResult:
        head, f = archive_members.peek(f, archive_tar.BLOCK)
        if head.startswith(_ZIP_MAGIC):
            archive_zip.scan_zip(f, ctx, self.zip_layouts)
        elif archive_tar.is_tar(head):
            archive_tar.scan_tar(f, ctx, self.tar_layouts)
        else:
            kind = archive_compressed.kind_of(head)
            assert kind is not None  # sniff said so
            archive_compressed.scan_compressed(f, ctx, kind)
        return ctx.result


def spec(zip_layouts: tuple[Layout, ...], tar_layouts: tuple[Layout, ...]) -> FormatSpec:
    """The archive format, refined by the layouts it is given (tried in order)."""
    layouts = zip_layouts + tar_layouts
    return FormatSpec(
        id=FormatId.ZIP, sniff=sniff, scan=_Archives(zip_layouts, tar_layouts).scan,
        container=True, rules=RULES,
        facts=("members", "hidden_members", "crc_unverified", "decompressed_bytes", "storages",
               "records"),
        refines=(FormatId.TAR, *_COMPRESSED, *(f for layout in layouts for f in layout.formats)),
    )
