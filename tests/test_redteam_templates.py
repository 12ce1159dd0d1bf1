"""Red team: chat-template injection (SSTI) spelled the ways filters and payload kits spell it.

A chat template is rendered on every request; one that climbs from a string
to Python globals runs code in the serving process. Each spelling below
reaches `__class__`/`__globals__` (or an injection gadget) without writing it
plainly, and is carried by each place a loader reads templates from. The
templates are parsed, never rendered: a canary command in them never runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.formats.code import templates
from tests.builders import safetensors_bytes

CANARY = "touch {canary}"

SPELLINGS = {
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('" + CANARY + "').read() }}",
    "attr-tilde-concat": "{{ ''|attr('_'~'_class_'~'_') }}",
    "attr-hex-escapes": "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "item-hex-escapes": "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "map-attribute": "{{ ['']|map(attribute='__class__')|list }}",
    "selectattr": "{{ ['']|selectattr('__class__')|list }}",
    "sort-attribute-dotted": "{{ ['']|sort(attribute='__class__.__mro__')|list }}",
    "groupby": "{{ ['']|groupby('__class__')|list }}",
    "format-built-name": "{{ ''|attr('%c%cclass%c%c'|format(95,95,95,95)) }}",
    "dict-keyword-name": "{% set n = dict(__class__=1)|first %}{{ ''|attr(n) }}",
    "namespace-holder": "{% set ns = namespace(a=''.__class__) %}{{ ns.a }}",
    "join-built-name": "{{ ''|attr(['__cla','ss__']|join) }}",
    "replace-built-name": "{{ ''|attr('XXclassXX'|replace('X','_')) }}",
    "reverse-built-name": "{{ ''|attr('__ssalc__'|reverse) }}",
    "set-concat-name": "{% set a='__cla' %}{% set b='ss__' %}{{ ''|attr(a+b) }}",
    "self-template-reference": "{{ self._TemplateReference__context }}",
    "loop-object": "{% for m in messages %}{{ loop|attr('__class__') }}{% endfor %}",
    "macro-globals": "{% macro x() %}{% endmacro %}{{ x.__globals__ }}",
    "name-from-messages": "{{ ''|attr(messages[0]['content']) }}",
    "include-file": "{% include '/etc/passwd' %}",
}

BENIGN = ("{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] | trim }}"
          "{% if loop.last and add_generation_prompt %}<|assistant|>{% endif %}{% endfor %}")

WEIGHTS = safetensors_bytes({"w": ("F32", [2, 2])}, {"format": "pt"})


def carriers(template: str) -> dict[str, dict[str, bytes]]:
    """The files a loader takes a chat template from, each holding `template`."""
    return {
        "tokenizer_config": {"tokenizer_config.json": json.dumps(
            {"tokenizer_class": "LlamaTokenizer", "chat_template": template}).encode()},
        "named-list": {"tokenizer_config.json": json.dumps({"chat_template": [
            {"name": "default", "template": BENIGN},
            {"name": "tool_use", "template": template}]}).encode()},
        "chat_template.json": {"chat_template.json": json.dumps(
            {"chat_template": template}).encode()},
        "chat_template.jinja": {"chat_template.jinja": template.encode()},
        "additional-templates": {"additional_chat_templates/tools.jinja": template.encode()},
        "processor_config": {"processor_config.json": json.dumps(
            {"chat_template": template}).encode()},
    }


def scan(run_cli, folder: Path) -> tuple[int, set[str]]:
    result = run_cli("scan", folder, "--format", "json")
    doc = json.loads(result.out)
    severities = {f["severity"] for m in doc["models"] for fr in m["files"]
                  for f in fr["findings"]}
    return result.code, severities


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in {**files, "model.safetensors": WEIGHTS}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_injection_spelling_is_blocked(tmp_path, run_cli, spelling):
    template = SPELLINGS[spelling].replace("{canary}", str(tmp_path / "CANARY"))
    folder = write(tmp_path / "m", carriers(template)["tokenizer_config"])
    code, severities = scan(run_cli, folder)
    assert code == 1
    assert severities & {"critical", "high"}
    assert not (tmp_path / "CANARY").exists()


@pytest.mark.parametrize("carrier", sorted(carriers("")))
def test_injection_in_every_template_carrier_is_blocked(tmp_path, run_cli, carrier):
    template = SPELLINGS["attr-tilde-concat"]
    folder = write(tmp_path / "m", carriers(template)[carrier])
    code, severities = scan(run_cli, folder)
    assert code == 1
    assert "critical" in severities


@pytest.mark.parametrize("carrier", sorted(carriers("")))
def test_ordinary_chat_template_passes_in_every_carrier(tmp_path, run_cli, carrier):
    folder = write(tmp_path / "m", carriers(BENIGN)[carrier])
    code, severities = scan(run_cli, folder)
    assert code == 0, severities


# ---- format-string gadgets: str.format fields read attributes inside Python ------------------

# spelling -> the rules it must raise (all at least high)
FORMAT_GADGETS = {
    "format-class-field": ("{{ '{0.__class__}'.format(messages) }}",
                           {"AUD-TPL-001", "AUD-TPL-009"}),
    "format-init-globals": ("{{ '{0.__init__.__globals__}'.format(cycler) }}",
                            {"AUD-TPL-001", "AUD-TPL-009"}),
    "format-map-mro": ("{{ '{m.__class__.__mro__}'.format_map({'m': messages}) }}",
                       {"AUD-TPL-001", "AUD-TPL-009"}),
    "format-index-dunder": ("{{ '{0[__globals__]}'.format(x) }}", {"AUD-TPL-001"}),
    "attr-format": ("{{ '{0.__class__}'|attr('format')(messages) }}",
                    {"AUD-TPL-001", "AUD-TPL-009"}),
    "attr-format-built-method": ("{{ ('{0.__cla' ~ 'ss__}')|attr('for' ~ 'mat')(messages) }}",
                                 {"AUD-TPL-001", "AUD-TPL-009"}),
    "attr-format-map": ("{{ '{m.gi_frame.f_globals}'|attr('format_map')({'m': g}) }}",
                        {"AUD-TPL-001", "AUD-TPL-009"}),
    "item-format": ("{{ '{0.__class__}'['format'](messages) }}", {"AUD-TPL-001", "AUD-TPL-009"}),
    "format-bound-to-name": ("{% set f = '{0.__init__}'.format %}{{ f(joiner) }}",
                             {"AUD-TPL-001", "AUD-TPL-009"}),
    "percent-built-format-string": (
        "{{ ('{0.%s}'|format('_' ~ '_class_' ~ '_')).format(messages) }}",
        {"AUD-TPL-001", "AUD-TPL-009"}),
    "percent-built-char-codes": (
        "{{ ('{0.%c%cclass%c%c}' % (95, 95, 95, 95)).format(messages) }}",
        {"AUD-TPL-001", "AUD-TPL-009"}),
    "nested-spec-field": ("{{ '{0:{1.__class__}}'.format(a, b) }}",
                          {"AUD-TPL-001", "AUD-TPL-009"}),
    "plain-attribute-field": ("{{ '{0.environ}'.format(x) }}", {"AUD-TPL-009"}),
    "attr-format-on-data": ("{{ messages[0]['content']|attr('format')(messages) }}",
                            {"AUD-TPL-004"}),
    "format-via-dunder-mod": ("{{ '%s'.__mod__(messages) }}", {"AUD-TPL-001"}),
    "format-width-exhaustion": ("{{ '{0:>999999999}'.format(x) }}", {"AUD-TPL-006"}),
    "percent-width-exhaustion": ("{{ '%999999999s'|format(x) }}", {"AUD-TPL-006"}),
}


@pytest.mark.parametrize("case", sorted(FORMAT_GADGETS))
def test_format_string_gadget_is_reported(case):
    source, rules = FORMAT_GADGETS[case]
    found = {i.rule.id: i.rule.severity.label for i in templates.review(source)}
    assert rules <= set(found), found


@pytest.mark.parametrize("source", [
    "{{ '{} said {}'.format(message['role'], message['content']) }}",
    "{{ '{0}: {1!r}'.format(loop.index, m['content']) }}",
    "{{ '{role}'.format_map(message) }}{{ '{0[content]}'.format(message) }}",
    "{{ '%s: %s'|format(message['role'], message['content']) }}",
    "{{ '<|%s|>' % message['role'] }}{{ 'x'|attr('format')('y') }}",
])
def test_plain_format_fields_stay_clean(source):
    assert templates.review(source) == []


def test_format_gadget_blocks_the_cli_and_never_renders(tmp_path, run_cli):
    template = "{{ '{0.__init__.__globals__[os].popen}'|attr('format')(cycler) }}"
    folder = write(tmp_path / "m", carriers(template)["chat_template.jinja"])
    code, severities = scan(run_cli, folder)
    assert code == 1 and "critical" in severities
