"""PyTorch zip checkpoints, TorchScript archives and the legacy tar layout.

`torch.save` writes a zip: `<archive>/data.pkl` (the pickle that rebuilds the
object), raw tensor bytes under `<archive>/data/<key>` and a few bookkeeping
members. `torch.jit.save` adds `code/` (TorchScript source, run when the model
is called) and `constants.pkl`. Loaders unpickle every pickle they are told
to, so every member except raw storages and bookkeeping goes to the engine
(the pickle module judges pickles, whatever their name). Storages are not
read, only their first bytes sniffed: tensor data that starts like a pickle
or an archive is handed to the engine too and flagged, because a loader
never needs that and a second-stage loader could. The legacy tar layout
(`sys_info`, `pickle`, `storages`, `tensors`) is scanned member by member,
`storages` and `tensors` by their record layout (`torch_tar`).

`torch.export.save` writes a `.pt2` zip of its own (pytorch-export): the
program as JSON under `models/`, whose node targets the loader resolves by
attribute from torch, operator or math and calls; weights and tensor constants
under `data/` as raw bytes or, for tensor subclasses, torch.save archives it
torch.loads; custom and opaque objects it unpickles; sample inputs it
torch.loads. Each member is judged for that.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from auditor.errors import FormatError, LimitExceeded
from auditor.formats import scan_rules
from auditor.formats._lib.jsonutil import loads_strict
from auditor.formats._lib.streams import ReplayReader
from auditor.formats.archives import members as archive_members
from auditor.formats.archives import tar as archive_tar
from auditor.formats.archives import zip as archive_zip
from auditor.formats.archives.members import Layout, Role, add_at
from auditor.formats.contract import FormatSpec, ScanContext
from auditor.formats.pickle import torch_tar, torchscript_code
from auditor.model import FormatId, FormatResult, Rule, Severity

STORAGE_CONTENT = Rule(
    "AUD-PT-001", Severity.MEDIUM, "Tensor storage starts like a pickle or an archive",
    "Storages hold raw numbers that torch.load never unpickles; one that starts like a pickle "
    "or an archive is a second-stage payload waiting for another loader. Its content was "
    "scanned as a member.",
    "Re-save the checkpoint from trusted code; find out who produced this file.",
)
CODE = Rule(
    "AUD-PT-002", Severity.MEDIUM, "TorchScript archive ships code",
    "The code/ members are TorchScript programs that run when the model is called. TorchScript "
    "cannot import Python modules, but it runs whatever operators the program names.",
    "Load TorchScript only from publishers you trust, or use weights in safetensors.",
    benign="Every torch.jit.save archive ships its program as code/; the note says the model "
    "is a program, and AUD-PT-003 judges what that program references.",
)
CODE_TOKEN = Rule(
    "AUD-PT-003", Severity.HIGH, "TorchScript code uses a suspicious construct",
    "TorchScript written by torch.jit.save never contains Python imports, eval/exec or system "
    "modules, and rarely file access; their presence means the code was edited by hand. The "
    "source is parsed: names in string constants and comments do not count.",
    "Do not load the archive; inspect the named code member.",
)
BOOKKEEPING = Rule(
    "AUD-PT-004", Severity.MEDIUM, "PyTorch bookkeeping member has unexpected content",
    "Members such as version and byteorder hold a few characters of text; anything larger "
    "or binary is data hidden under a name nobody looks at. It was scanned as a member.",
    "Re-save the checkpoint with torch.save.",
)
EXPORT_TARGET = Rule(
    "AUD-PT-005", Severity.HIGH, "Exported program calls a function outside torch's operators",
    "torch.export.load resolves a node's target by walking attributes down from the torch, "
    "operator or math module, and the program then calls it with its inputs: a target such as "
    "'torch.os.system' or 'torch.serialization.pickle.loads' is that function. torch.export "
    "writes operator overloads (torch.ops.*), operator and math helpers and symbolic-shape "
    "functions only.",
    "Do not load the archive; re-export the model with torch.export from trusted code.",
)
RULES = (STORAGE_CONTENT, CODE, CODE_TOKEN, BOOKKEEPING, EXPORT_TARGET)

_MEMBER = re.compile(
    r"[^/]+/(data\.pkl|constants\.pkl|version|byteorder|\.format_version|\.storage_alignment"
    r"|\.data/|data/|code/|constants/|archive_format|models/)"
)
_STORAGE = re.compile(r"(data|constants)/\d+")
_BOOKKEEPING = frozenset({"version", ".data/version", "byteorder", ".data/serialization_id",
                          ".format_version", ".storage_alignment", "archive_format",
                          "archive_version"})
_BOOKKEEPING_MAX = 256
_STORAGE_HEAD = 64  # enough for a protocol-0 GLOBAL such as "csubprocess\nPopen\n"
_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_CODE_MAX = 16 * 1024 * 1024
# torch.export: payload files by prefix; node targets under torch that it writes.
_PAYLOAD_PREFIXES = ("weight_", "tensor_")
_TORCH_TARGETS = ("ops.", "sym_", "_sym_", "_assert", "_check")
_OPERATOR_CALLERS = frozenset({"call", "attrgetter", "methodcaller"})

# Heads that raw tensor data has no reason to start with.
_PICKLE_FIRST_OPS = frozenset(b"}])(cKJMNXU\x8c\x95\x88\x89GF\x93\x81")
_PROTO0_GLOBAL = re.compile(rb"[(\]}]*c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
_FOREIGN_MAGIC = {
    b"PK\x03\x04": "a zip", b"\x1f\x8b\x08": "gzip", b"\xfd7zXZ\x00": "xz",
    b"7z\xbc\xaf\x27\x1c": "7z", b"Rar!\x1a\x07": "rar", b"\x28\xb5\x2f\xfd": "zstd",
    b"\x93NUMPY": "a numpy array",
}

def sniff(head: bytes, name: str) -> bool:
    if head.startswith(archive_zip.LOCAL_SIG) and len(head) >= 30:
        (nlen,) = struct.unpack_from("<H", head, 26)
        first = head[30 : 30 + nlen].decode("utf-8", "replace")
        return _MEMBER.match(first) is not None
    return archive_tar.is_tar(head) and archive_tar.first_name(head) in _TAR_MEMBERS


def scan(f: BinaryIO, ctx: ScanContext) -> FormatResult:
    head, f = archive_members.peek(f, archive_tar.BLOCK)
    if archive_tar.is_tar(head):
        archive_tar.scan_tar(f, ctx, (TAR_LAYOUT,))
    else:
        archive_zip.scan_zip(f, ctx, (EXPORT_LAYOUT, ZIP_LAYOUT))
    return ctx.result


def _prefix_and_rest(name: str) -> tuple[str, str]:
    prefix, _, rest = name.partition("/")
    return prefix, rest


def detect_zip(names: Sequence[str]) -> FormatId | None:
    """pytorch-zip when `<archive>/data.pkl` exists; torchscript with code/ or constants.pkl."""
    rests = {_prefix_and_rest(n)[1] for n in names if "/" in n}
    if "data.pkl" not in rests and "constants.pkl" not in rests:
        return None
    if "constants.pkl" in rests or any(r.startswith("code/") for r in rests):
        return FormatId.TORCHSCRIPT
    return FormatId.PYTORCH_ZIP


def zip_role(name: str) -> Role:
    rest = _prefix_and_rest(name)[1]
    if _STORAGE.fullmatch(rest):
        return Role.STORAGE
    if rest in _BOOKKEEPING:
        return Role.METADATA
    if rest.startswith("code/") and rest.endswith(".py"):
        return Role.CODE
    return Role.SCAN


def detect_tar(names: Sequence[str]) -> FormatId | None:
    return FormatId.PYTORCH_TAR if _TAR_MEMBERS & set(names) else None


def _scan_rest(
    ctx: ScanContext, name: str, head: bytes, stream: BinaryIO, size: int | None
) -> None:
    whole = io.BufferedReader(ReplayReader(head, stream))  # type: ignore[arg-type]
    ctx.merge_member(ctx.scan_member(name, whole, size))  # type: ignore[arg-type]


def _storage(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    head = stream.read(_STORAGE_HEAD)
    what = _looks_like(head)
    storages = ctx.result.facts.get("storages", 0)
    ctx.result.facts["storages"] = storages + 1
    if what is not None:
        add_at(ctx, STORAGE_CONTENT, name, f"storage data starts like {what}")
        _scan_rest(ctx, name, head, stream, size)


def _looks_like(head: bytes) -> str | None:
    if len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] in _PICKLE_FIRST_OPS:
        return f"a protocol {head[1]} pickle"
    if _PROTO0_GLOBAL.match(head):
        return "a protocol 0 pickle"
    for magic, what in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            return what
    return None


def _bookkeeping(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    head = stream.read(_BOOKKEEPING_MAX + 1)
    if len(head) <= _BOOKKEEPING_MAX and all(32 <= b < 127 or b in b"\n\r\t" for b in head):
        return
    add_at(ctx, BOOKKEEPING, name, f"{'over ' if len(head) > _BOOKKEEPING_MAX else ''}"
           f"{len(head)} bytes, not short text")
    _scan_rest(ctx, name, head, stream, size)


def _code(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    data = stream.read(_CODE_MAX + 1)
    if len(data) > _CODE_MAX:
        add_at(ctx, scan_rules.LIMIT, name, f"TorchScript source over {_CODE_MAX} bytes; only "
               f"the first {_CODE_MAX} were checked")
        ctx.limit_hit()
    text = data[:_CODE_MAX].decode("utf-8", "replace")
    if not any(f.rule == CODE.id for f in ctx.result.findings):
        add_at(ctx, CODE, None, f"TorchScript source such as {name!r}")
    seen = set()
    for use in torchscript_code.suspicious(text):
        if use.what not in seen:  # one finding per kind of construct and member
            seen.add(use.what)
            add_at(ctx, CODE_TOKEN, name, f"{use.what}: {use.text!r} on line {use.line}")


def detect_export(names: Sequence[str]) -> FormatId | None:
    """pytorch-export: a torch.export archive (`archive_format`, or a program under models/)."""
    rests = {_prefix_and_rest(n)[1] for n in names if "/" in n}
    program = any(r.startswith("models/") and r.endswith(".json") for r in rests)
    if "archive_format" in rests or (program and any(r.startswith("data/") for r in rests)):
        return FormatId.PYTORCH_EXPORT
    return None


def export_role(name: str) -> Role:
    """What torch.export.load does with a member: read as raw bytes, unpickle, or parse."""
    rest = _prefix_and_rest(name)[1]
    if rest in _BOOKKEEPING:
        return Role.METADATA
    if rest.startswith("models/") and rest.endswith(".json"):
        return Role.CODE  # the serialized program: node targets are resolved and called
    folder, _, base = rest.rpartition("/")
    if folder in ("data/weights", "data/constants") and base.startswith(_PAYLOAD_PREFIXES):
        return Role.STORAGE  # raw bytes, or torch.load when its config says use_pickle
    return Role.SCAN  # configs, custom/opaque objects (unpickled), sample inputs, extra files


def _payload(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    """A weight or tensor constant: raw bytes, or a torch.save archive the loader torch.loads.

    Which one the loader does is said by a config that may come later in the
    archive, so the content decides: anything that is not plain numbers goes
    through the engine (the pickle analysis judges it), plain numbers count
    as a storage.
    """
    head = stream.read(_STORAGE_HEAD)
    if _looks_like(head) is None:
        ctx.result.facts["storages"] = ctx.result.facts.get("storages", 0) + 1
        return
    _scan_rest(ctx, name, head, stream, size)


def _program(ctx: ScanContext, name: str, stream: BinaryIO, size: int | None) -> None:
    """The serialized ExportedProgram: its node targets checked, then scanned as JSON."""
    data = stream.read(ctx.limits.max_json_bytes + 1)
    if len(data) > ctx.limits.max_json_bytes:
        add_at(ctx, scan_rules.LIMIT, name, f"program over {ctx.limits.max_json_bytes} bytes; "
               "its node targets were not checked")
        ctx.limit_hit()
    else:
        try:
            program, _ = loads_strict(data, what="exported program")
        except (FormatError, LimitExceeded):
            program = None  # the JSON format module reports it below
        for target in sorted(set(_node_targets(program))):
            if not _operator_target(target):
                add_at(ctx, EXPORT_TARGET, name, f"node target {target!r}")
    _scan_rest(ctx, name, data, stream, size)


def _node_targets(value: object) -> Iterator[str]:
    """The `target` of every graph node (objects with target, inputs and outputs), nested too."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            target = item.get("target")
            if isinstance(target, str) and "inputs" in item and "outputs" in item:
                yield target
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)


def _operator_target(target: str) -> bool:
    """True for what torch.export writes, or what the loader leaves an unresolved string."""
    root, _, rest = target.partition(".")
    if root == "torch":
        return rest.startswith(_TORCH_TARGETS)
    if root == "_operator":
        return rest not in _OPERATOR_CALLERS
    return True  # math.* is pure; "#…" is a registered extension; anything else stays a string


ZIP_LAYOUT = Layout(
    detect=detect_zip, role=zip_role, formats=(FormatId.PYTORCH_ZIP, FormatId.TORCHSCRIPT),
    handlers={Role.STORAGE: _storage, Role.METADATA: _bookkeeping, Role.CODE: _code},
)
EXPORT_LAYOUT = Layout(
    detect=detect_export, role=export_role, formats=(FormatId.PYTORCH_EXPORT,),
    handlers={Role.STORAGE: _payload, Role.METADATA: _bookkeeping, Role.CODE: _program},
)
TAR_LAYOUT = Layout(
    detect=detect_tar, formats=(FormatId.PYTORCH_TAR,),
    role=lambda name: Role.RECORDS if name in ("storages", "tensors") else Role.SCAN,
    handlers={Role.RECORDS: torch_tar.scan_records},
)


SPEC = FormatSpec(
    id=FormatId.PYTORCH_ZIP, sniff=sniff, scan=scan, container=True, rules=RULES,
    facts=("storages", "members", "hidden_members", "crc_unverified"),
    refines=(FormatId.TORCHSCRIPT, FormatId.PYTORCH_TAR, FormatId.PYTORCH_EXPORT),
)
