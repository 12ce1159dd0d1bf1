"""Rules raised by the pickle analysis (AUD-PKL-*), shared by every pickle-family module."""

from __future__ import annotations

from auditor.formats.pickle.imports import Tier
from auditor.model import Rule, Severity

DANGEROUS_IMPORT = Rule(
    "AUD-PKL-001", Severity.CRITICAL, "Pickle imports a dangerous callable",
    "Loading the pickle imports (and usually calls) something that runs programs, executes "
    "code, loads another pickle, touches files or the network: this is how model malware works.",
    "Do not load this file. Re-export the weights as safetensors from a trusted source.",
)
UNKNOWN_IMPORT = Rule(
    "AUD-PKL-002", Severity.HIGH, "Pickle imports an unaudited callable",
    "Every import in a pickle runs code on load; one that is neither a known tensor rebuilder "
    "nor a known ML class is unaudited, and denylists always miss the next dangerous one.",
    "Convert to safetensors, or review the class and add it to safe-imports in auditor.toml.",
)
KNOWN_ML_IMPORT = Rule(
    "AUD-PKL-003", Severity.MEDIUM, "Pickle imports an ML library class",
    "Classes of common ML libraries (scikit-learn, xgboost, pandas, numpy scalars) appear in "
    "legitimate "
    "pickles, but their constructors and __setstate__ still run on load.",
    "Prefer a format without code (safetensors, ONNX, skops) where the library allows it.",
    benign="scikit-learn, XGBoost, LightGBM, pandas and OmegaConf objects can only be saved as "
    "pickles, "
    "and their __setstate__ runs library code on load; that code is the library's, not the "
    "file's, so a reviewer accepts it as the price of the format, not as an attack.",
)
UNRESOLVED = Rule(
    "AUD-PKL-004", Severity.HIGH, "Pickle import cannot be resolved statically",
    "STACK_GLOBAL names computed while loading, or EXT codes from the copyreg registry, decide "
    "the import only at run time: a scanner cannot show it harmless.",
    "Do not load this file; re-export it with a standard pickler or as safetensors.",
)
ODD_NAME = Rule(
    "AUD-PKL-005", Severity.HIGH, "Pickle import name is malformed or disguised",
    "Whitespace, NULs, look-alike characters or local-scope names in an import are never "
    "produced by a real pickler; they exist to slip past exact-match lists.",
    "Do not load this file.",
)
MUTATION = Rule(
    "AUD-PKL-006", Severity.CRITICAL, "Pickle writes into an imported object",
    "BUILD, SETITEM or APPEND on a module, class or function redefines it for the rest of the "
    "load: an allowlisted name can be pointed at anything (allowlist hijacking).",
    "Do not load this file.",
)
COMPUTED_CALL = Rule(
    "AUD-PKL-007", Severity.HIGH, "Pickle calls an object that is not a graded import",
    "REDUCE/NEWOBJ/OBJ on a value produced while loading (a call result, a memo entry, a "
    "persistent object) calls something the scanner could not name.",
    "Do not load this file.",
)
MALFORMED = Rule(
    "AUD-PKL-008", Severity.HIGH, "Pickle stream is malformed or truncated",
    "The loader executes every opcode up to the error; a broken stream with the payload first "
    "runs it and then fails, while scanners that give up on errors report nothing.",
    "Do not load this file; obtain it again from the publisher.",
)
FRAME = Rule(
    "AUD-PKL-009", Severity.HIGH, "Pickle frame boundary violated",
    "An opcode crossing its FRAME, or a frame inside a frame, is accepted by the C unpickler "
    "but rejected by pure-Python parsers: scanner and loader read different streams.",
    "Re-export the file with a standard pickler.",
)
TRAILING = Rule(
    "AUD-PKL-010", Severity.HIGH, "Data after the end of the pickle",
    "Bytes after STOP that are not a valid pickle are not needed by any loader reading this "
    "format; they hide content from scanners that stop at the first STOP.",
    "Re-export the file; a clean pickle ends at its STOP opcode.",
)
MULTIPLE = Rule(
    "AUD-PKL-011", Severity.MEDIUM, "Stream holds more than one pickle",
    "pickle.load reads only the first pickle, but other loaders read on; every pickle in the "
    "stream was analysed.",
    "Make sure the consumer of this file expects several pickles.",
)
BUILT_TARGET = Rule(
    "AUD-PKL-013", Severity.HIGH, "Pickle builds the name of what it imports or calls",
    "getattr, operator.attrgetter/methodcaller, vars()/globals()/__dict__ lookups and "
    "decoders or joins of constant strings (codecs, base64, str.join, bytes.decode) hide the "
    "callable's name from lists of names; no real pickler writes them. Critical when the name "
    "resolves to a dangerous callable, high otherwise.",
    "Do not load this file.",
)
REEXPORT = Rule(
    "AUD-PKL-014", Severity.CRITICAL, "Pickle reaches a sensitive object through a library path",
    "A module of a trusted library re-exports an object defined elsewhere (a process spawner, "
    "a network client or listener, a file writer, functools.partial): the pickle names the "
    "library's path, the loader gets the sensitive object. Trust follows the module that "
    "defines the object (a table introspected from the libraries at development time).",
    "Do not load this file.",
)

RULES = (
    DANGEROUS_IMPORT, UNKNOWN_IMPORT, KNOWN_ML_IMPORT, UNRESOLVED, ODD_NAME, MUTATION,
    COMPUTED_CALL, MALFORMED, FRAME, TRAILING, MULTIPLE, BUILT_TARGET, REEXPORT,
)

TIER_RULES: dict[Tier, Rule] = {
    Tier.DANGEROUS: DANGEROUS_IMPORT,
    Tier.UNKNOWN: UNKNOWN_IMPORT,
    Tier.KNOWN_ML: KNOWN_ML_IMPORT,
}
