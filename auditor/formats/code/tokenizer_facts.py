"""The vocabulary facts of `tokenizer.json` and the special tokens of `tokenizer_config.json`.

Facts only, chosen by file name: nothing here decides a finding. The JSON
reader hands the visited parts to the sinks below as they stream past
(`jsonstream.scan_json(visit=...)`), or walks the parsed document the same
way (`visit_parsed`), so a 30 MB tokenizer.json is fingerprinted without
being kept. How the tokens are spelt (byte-level, SentencePiece, plain) is
decided at the end from the decoder and pre-tokenizer types, which the
tokenizers library writes before the model but a hand-made file need not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.formats._lib.jsonstream import Sink

if TYPE_CHECKING:
    from auditor.formats._lib.vocab import VocabBuilder

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
MAX_ADDED = 4096  # added tokens remembered by content, to give bos/eos their ids
MAX_TYPES = 64


def _vocab() -> Any:
    """The vocabulary builder's module, imported with numpy only when a tokenizer.json is read
    (a scan with no tokenizer never pays for numpy)."""
    from auditor.formats._lib import vocab

    return vocab


@dataclass
class TokenizerJson:
    """Sinks for tokenizer.json's model, vocab, added tokens, decoder and post-processor."""

    builder: VocabBuilder = field(default_factory=lambda: _vocab().VocabBuilder())
    model_type: str | None = None
    types: list[str] = field(default_factory=list)  # decoder / pre-tokenizer component types
    added: dict[str, int] = field(default_factory=dict)
    template: list[Any] = field(default_factory=list)  # post-processor "single" template
    processors: list[Any] = field(default_factory=list)
    unigram_index: int = 0

    @property
    def visit(self) -> dict[tuple[str, ...], Sink]:
        return {
            ("model",): self._model,
            ("model", "vocab"): self._vocab,
            ("added_tokens",): self._added,
            ("decoder",): self._types,
            ("decoder", "decoders"): self._types,
            ("pre_tokenizer",): self._types,
            ("pre_tokenizer", "pretokenizers"): self._types,
            ("post_processor", "single"): self._template,
            ("post_processor", "processors"): self._processors,
        }

    def _model(self, keys: list[str | None], values: list[Any]) -> None:
        for k, v in zip(keys, values, strict=True):
            if k == "type" and isinstance(v, str):
                self.model_type = v

    def _vocab(self, keys: list[str | None], values: list[Any]) -> None:
        if keys and keys[0] is not None:  # {"token": id}: BPE, WordPiece, WordLevel
            self.builder.add_text(values, keys)  # type: ignore[arg-type]
            return
        first = self.unigram_index  # [["piece", score], ...]: Unigram, ids are positions
        self.unigram_index += len(values)
        pieces = [v[0] if isinstance(v, list) and v else None for v in values]
        self.builder.add_text(range(first, first + len(values)), pieces)

    def _added(self, keys: list[str | None], values: list[Any]) -> None:
        for v in values:
            if isinstance(v, dict) and type(v.get("id")) is int and isinstance(
                    v.get("content"), str):
                self.builder.add_text([v["id"]], [v["content"]])
                if len(self.added) < MAX_ADDED:
                    self.added.setdefault(v["content"], v["id"])

    def _types(self, keys: list[str | None], values: list[Any]) -> None:
        for k, v in zip(keys, values, strict=True):
            if len(self.types) >= MAX_TYPES:
                return
            if k == "type" and isinstance(v, str):
                self.types.append(v)
            elif k is None and isinstance(v, dict) and isinstance(v.get("type"), str):
                pattern = v.get("pattern")
                if v["type"] == "Replace" and isinstance(pattern, dict) and pattern.get(
                        "String") == "\u2581":
                    self.types.append("Metaspace")
                else:
                    self.types.append(v["type"])

    def _template(self, keys: list[str | None], values: list[Any]) -> None:
        self.template.extend(values[: MAX_TYPES - len(self.template)])

    def _processors(self, keys: list[str | None], values: list[Any]) -> None:
        for v in values[:MAX_TYPES]:
            if isinstance(v, dict) and isinstance(v.get("single"), list):
                self.template.extend(v["single"][:MAX_TYPES])

    def kind(self) -> str:
        vocab = _vocab()
        if "ByteLevel" in self.types:
            return vocab.BYTE_LEVEL
        if {"Metaspace", "ByteFallback"} & set(self.types) or self.model_type == "Unigram":
            return vocab.SENTENCEPIECE
        return vocab.PLAIN

    def facts(self) -> dict[str, Any]:
        bos, eos = _template_specials(self.template)
        specials = {"bos": bos, "eos": eos,
                    "bos_id": self.added.get(bos) if bos is not None else None,
                    "eos_id": self.added.get(eos) if eos is not None else None}
        found = self.builder.finish(self.kind(), specials)
        return {"vocab": found} if found is not None else {}


def _template_specials(template: list[Any]) -> tuple[str | None, str | None]:
    """bos: the special token before the first sequence; eos: the one after the last."""
    def special(item: Any) -> str | None:
        inner = item.get("SpecialToken") if isinstance(item, dict) else None
        token = inner.get("id") if isinstance(inner, dict) else None
        return token if isinstance(token, str) else None

    seqs = [i for i, item in enumerate(template) if isinstance(item, dict) and "Sequence" in item]
    if not seqs:
        return None, None
    before = [special(t) for t in template[: seqs[0]]]
    after = [special(t) for t in template[seqs[-1] + 1:]]
    return (next((t for t in before if t), None), next((t for t in after if t), None))


@dataclass
class TokenizerConfig:
    """Sinks for tokenizer_config.json's bos_token / eos_token (a string or an AddedToken)."""

    specials: dict[str, str] = field(default_factory=dict)

    @property
    def visit(self) -> dict[tuple[str, ...], Sink]:
        return {(): self._top, ("bos_token",): self._added("bos"),
                ("eos_token",): self._added("eos")}

    def _top(self, keys: list[str | None], values: list[Any]) -> None:
        for k, v in zip(keys, values, strict=True):
            if k in ("bos_token", "eos_token") and isinstance(v, str):
                self.specials[k[:3]] = v

    def _added(self, which: str) -> Sink:
        def sink(keys: list[str | None], values: list[Any]) -> None:
            for k, v in zip(keys, values, strict=True):
                if k == "content" and isinstance(v, str):
                    self.specials[which] = v
        return sink

    def facts(self) -> dict[str, Any]:
        if not self.specials:
            return {}
        return {"specials": {"bos": self.specials.get("bos"), "eos": self.specials.get("eos")}}


def collector_for(name: str) -> TokenizerJson | TokenizerConfig | None:
    """The fact collector for a file of this name, if any (facts only: never a check)."""
    if name == TOKENIZER_JSON:
        return TokenizerJson()
    if name == TOKENIZER_CONFIG:
        return TokenizerConfig()
    return None
