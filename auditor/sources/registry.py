"""What the rest of auditor names of the `oci://` source: its scheme, settings and rules.

Kept apart from the source itself (`sources/oci.py`) so that the CLI, the
pipeline and the rule catalogue can name them without loading httpx, tar and
TLS (the client module's settings are plain data; its HTTP stack loads only when
a registry is reached): a local scan never reaches a registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.model import Rule, Severity
from auditor.oci.access import RegistryAccess
from auditor.oci.reference import SCHEME

__all__ = ["LAYER_NOT_READ", "MODELS_NOT_FOLDER", "RULES", "SCHEME", "UNSAFE_MEMBER", "WHITEOUT",
           "RegistrySettings"]

WHITEOUT = Rule(
    "AUD-OCI-001", Severity.MEDIUM, "A later layer deletes a file of a lower layer (whiteout)",
    "The bytes pulled are not the files served: a whiteout hides a file a lower layer "
    "ships, so what a reviewer of one layer saw is not what the runtime mounts. The file "
    "is scanned and then dropped from the model as the runtime drops it.",
    "Rebuild the artifact without the deleted file instead of hiding it in a later layer.",
)
LAYER_NOT_READ = Rule(
    "AUD-OCI-002", Severity.MEDIUM, "A layer auditor cannot read (its files were not scanned)",
    "A layer in a compression or encoding auditor does not decode (zstd, encrypted) holds "
    "files a runtime may still unpack; they are unaudited.",
    "Push the layer as tar or tar+gzip, or scan the unpacked model folder.",
)
UNSAFE_MEMBER = Rule(
    "AUD-OCI-003", Severity.HIGH, "A layer entry's path leaves the layer (absolute or '..')",
    "Unpacking such an entry writes outside the model folder (a path traversal), over files "
    "of the host or of another model.",
    "Rebuild the layer with relative paths inside the model folder.",
)
MODELS_NOT_FOLDER = Rule(
    "AUD-OCI-004", Severity.HIGH, "A modelcar's /models is not a folder (a link or a file)",
    "KServe serves whatever /models resolves to in the container: a symlink or hard link "
    "there points the server at files elsewhere in the image, which are not the files "
    "under /models/ that were scanned, so the model actually served is unaudited.",
    "Ship the model as files in a /models folder of the image, not a link to them.",
)
RULES = (WHITEOUT, LAYER_NOT_READ, UNSAFE_MEMBER, MODELS_NOT_FOLDER)


@dataclass(frozen=True)
class RegistrySettings(RegistryAccess):
    """How to reach a registry (the CLI's `--plain-http` and `--registry-ca`, the access every
    registry client shares) and, for a scan, where the pulled files are kept."""

    keep: Path | None = None  # a new or empty folder the pulled files are kept in (--pull-to)
