"""Format modules: each parses one kind of file from its bytes, never executing anything.

The contract every format follows is `contract.FormatSpec`; the formats, in sniff
order, are `registry.ENTRIES` (each module imported on first need; `registry.SPECS`
imports them all). The rooms: `pickle/` (the pickle machine and the
checkpoints built on pickles), `archives/` (zip, tar, compressed streams),
`weights/` (the other weight formats), `code/` (code, templates, configs, cards,
tokenizers), `_lib/` (shared byte readers), plus `scan_rules` (the rules every
format shares with the engine).
"""
