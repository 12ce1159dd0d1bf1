"""Chat templates: family-style templates are clean; every injection construct is flagged.

The family fixtures (tests/data/chat_templates) are written for these tests:
they use the constructs the Llama 3.x, Qwen2.5/3, DeepSeek-V3/R1, Mistral,
Gemma and Phi templates use (message loops, role conditionals, namespace()
counters, raise_exception, tool-call blocks, loop.last, slicing, |tojson,
strftime_now) in new text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor import pipeline
from auditor.formats.code import templates
from auditor.scanning.options import ScanOptions

FIXTURES = Path(__file__).parent / "data" / "chat_templates"
FAMILIES = {p.stem.removesuffix("_style"): p.read_text() for p in FIXTURES.glob("*_style.jinja")}
LLAMA_STYLE, QWEN_STYLE = FAMILIES["llama"], FAMILIES["qwen"]


def test_every_family_has_a_fixture():
    assert sorted(FAMILIES) == ["deepseek", "gemma", "llama", "mistral", "phi", "qwen"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_style_templates_are_clean(family):
    assert templates.review(FAMILIES[family]) == []


INJECTIONS = {
    "dunder_attribute": ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "AUD-TPL-001"),
    "dunder_item": ("{{ message['__class__'] }}", "AUD-TPL-001"),
    "attr_filter": ("{{ message|attr('__init__') }}", "AUD-TPL-001"),
    "tilde_concat": ("{{ message['__cl' ~ 'ass__'] }}", "AUD-TPL-001"),
    "plus_concat_via_set": ("{% set a = '__gl' %}{% set b = a + 'obals__' %}{{ f[b] }}",
                            "AUD-TPL-001"),
    "join_built": ("{{ message|attr(['__cl', 'ass__']|join) }}", "AUD-TPL-001"),
    "format_filter": ("{{ m|attr('%c%cclass%c%c'|format(95, 95, 95, 95)) }}", "AUD-TPL-001"),
    "replace_built": ("{{ m|attr('XXclassXX'|replace('X', '_')) }}", "AUD-TPL-001"),
    "hex_escapes": ("{{ m['\\x5f\\x5fclass\\x5f\\x5f'] }}", "AUD-TPL-001"),
    "reversed_slice": ("{{ m['__ssalc__'[::-1]] }}", "AUD-TPL-001"),
    "str_format_fields": ("{{ '{0.__class__.__base__}'.format(m) }}", "AUD-TPL-001"),
    "map_attribute": ("{{ messages|map(attribute='__class__')|list }}", "AUD-TPL-001"),
    "set_block_name": ("{% set n %}__globals__{% endset %}{{ f|attr(n) }}", "AUD-TPL-001"),
    "private_attribute": ("{{ self._TemplateReference__context }}", "AUD-TPL-001"),
    "for_over_literal": ("{% for n in ['__class__'] %}{{ m[n] }}{% endfor %}", "AUD-TPL-001"),
    "dict_keyword": ("{{ m|attr(dict(__class__=1)|first) }}", "AUD-TPL-001"),
    "unicode_escapes": ("{{ m|attr('\\u005f\\u005fglobals\\u005f\\u005f') }}",
                        "AUD-TPL-001"),
    "lipsum": ("{{ lipsum }}", "AUD-TPL-002"),
    "cycler": ("{{ cycler.next() }}", "AUD-TPL-002"),
    "joiner": ("{% set j = joiner() %}", "AUD-TPL-002"),
    "self": ("{{ self }}", "AUD-TPL-002"),
    "flask_config": ("{{ config.items() }}", "AUD-TPL-002"),
    "flask_request": ("{{ request.args }}", "AUD-TPL-002"),
    "include": ("{% include 'other.jinja' %}", "AUD-TPL-003"),
    "import": ("{% import 'macros.jinja' as m %}", "AUD-TPL-003"),
    "from_import": ("{% from 'macros.jinja' import x %}", "AUD-TPL-003"),
    "extends": ("{% extends 'base.jinja' %}", "AUD-TPL-003"),
    "attr_unresolvable": ("{{ m|attr(name ~ suffix) }}", "AUD-TPL-004"),
    "item_unresolvable": ("{% set k = prefix ~ 'ss__' %}{{ m[k] }}", "AUD-TPL-004"),
    "item_from_data_plus_text": ("{{ m[message.role | replace('user', x)] }}", "AUD-TPL-004"),
    "format_unresolvable": ("{{ (fmt ~ '}').format(m) }}", "AUD-TPL-004"),
    "parse_error": ("{% for m in messages %}{{ m }}", "AUD-TPL-005"),
    "range_abuse": ("{% for i in range(10**3, 99999999) %}x{% endfor %}", "AUD-TPL-006"),
    "repetition_abuse": ("{{ 'x' * 1000000000 }}", "AUD-TPL-006"),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_injection_construct_is_flagged(case):
    source, rule = INJECTIONS[case]
    assert rule in {i.rule.id for i in templates.review(source)}


@pytest.mark.parametrize("source", [
    "{% set role = message['role'] | lower %}{{ names[role] }}",
    "{{ names[message.role | trim] }}",
    "{{ messages[loop.index0 + 1] }}{{ tools[ns.index] }}{{ m[key] }}",
    "{{ m.content.split('</think>')[-1] }}{{ m['content'][:10] }}",
])
def test_data_driven_keys_are_not_built_names(source):
    assert templates.review(source) == []


def test_issues_carry_the_line_number():
    issues = templates.review("{{ a }}\n{{ b }}\n{{ c.__class__ }}")
    assert [(i.rule.id, i.line) for i in issues] == [("AUD-TPL-001", 3)]


def test_oversized_and_deeply_nested_templates_are_limits_not_crashes():
    assert templates.review("x" * (templates.MAX_TEMPLATE_CHARS + 1))[0].rule.id == "AUD-TPL-008"
    deep = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert templates.review(deep)[0].rule.id in ("AUD-TPL-005", "AUD-TPL-008")


def test_folding_never_allocates_from_hostile_widths():
    # '%999999999s' would allocate a gigabyte if evaluated; it stays unresolved.
    assert templates.review("{{ m|attr('%999999999s'|format('x')) }}")[0].rule.id == "AUD-TPL-004"


CANARY_PAYLOADS = [
    # the shape of the public llama-cpp-python advisory (CVE-2024-34359): a subclass walk
    "{% for c in ().__class__.__base__.__subclasses__() %}{% if 'warning' in c.__name__ %}"
    "{{ c()._module.__builtins__['__import__']('os').popen('touch CANARY') }}{% endif %}"
    "{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('touch CANARY').read() }}",
    "{{ lipsum.__globals__['os'].system('touch CANARY') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['__builtins__']"
    "['__import__']('os').system('touch CANARY') }}",
]


def _model(tmp_path: Path, payload: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "chat_template.jinja").write_text(payload)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": [{"name": "default", "template": "{{ messages[0]['content'] }}"},
                          {"name": "tool_use", "template": payload}],
        "bos_token": "<s>"}))
    return folder


@pytest.mark.parametrize("payload", CANARY_PAYLOADS)
def test_canary_template_is_flagged_in_every_source_and_never_rendered(tmp_path, payload):
    canary = tmp_path / "canary"
    folder = _model(tmp_path, payload.replace("CANARY", str(canary)))
    result = pipeline.scan(folder, ScanOptions(jobs=1))
    files = {f.path: f for f in result.models[0].files}
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        assert files[name].worst is not None and files[name].worst.label == "critical", name
    assert files["chat_template.jinja"].format == "jinja"
    assert files["tokenizer_config.json"].facts["chat_templates"] == ["default", "tool_use"]
    assert any("tool_use" in f.detail for f in files["tokenizer_config.json"].findings)
    assert not canary.exists()


def test_clean_template_files_and_config_pass_the_cli(tmp_path, run_cli):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "chat_template.jinja").write_text(QWEN_STYLE)
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": LLAMA_STYLE}))
    run = run_cli("scan", folder, "--format", "json")
    assert run.code == 0, run.out
    files = {f["path"]: f for f in json.loads(run.out)["models"][0]["files"]}
    assert files["chat_template.jinja"]["format"] == "jinja"
    assert files["chat_template.jinja"]["findings"] == []
    assert files["tokenizer_config.json"]["facts"]["chat_templates"] == ["default"]


def test_jinja_file_padded_past_the_sniff_window_is_still_reviewed(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "chat_template.jinja").write_text("\n" * 70_000 + "{{ x.__class__ }}")
    report = pipeline.scan(folder, ScanOptions(jobs=1)).models[0].files[0]
    assert report.format == "jinja"
    assert [f.rule for f in report.findings] == ["AUD-TPL-001"]


def test_null_chat_template_is_no_template(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": None}))
    report = pipeline.scan(folder, ScanOptions(jobs=1)).models[0].files[0]
    assert report.findings == () and report.facts["chat_templates"] == []
    assert report.facts["has_chat_template"] is False


@pytest.mark.parametrize("value", [42, ["not an object"], [{"name": "x"}]])
def test_malformed_chat_template_value_is_flagged(tmp_path, value):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": value}))
    report = pipeline.scan(folder, ScanOptions(jobs=1)).models[0].files[0]
    assert "AUD-TPL-007" in {f.rule for f in report.findings}


def test_invalid_utf8_jinja_file_fails_closed(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "chat_template.jinja").write_bytes(b"{{ messages }}\n" + b"ok" * 10)
    (folder / "bad.jinja").write_bytes(b"{{ messages }}\xff\xfe{{ x }}")
    files = {f.path: f for f in pipeline.scan(folder, ScanOptions(jobs=1)).models[0].files}
    assert files["chat_template.jinja"].findings == ()
    assert files["bad.jinja"].coverage.value in ("error", "unsupported")
    assert files["bad.jinja"].findings


def test_too_many_named_templates_is_a_limit_not_a_long_scan(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    many = [{"name": f"t{i}", "template": "{{ x }}"} for i in range(10_000)]
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": many}))
    report = pipeline.scan(folder, ScanOptions(jobs=1)).models[0].files[0]
    assert [f.rule for f in report.findings] == ["AUD-TPL-008"]
    assert report.coverage.value == "partial"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jinja's lexer on bad escapes
def test_corrupted_templates_never_crash_the_review():
    import random

    rng = random.Random(2)
    sources = sorted(FAMILIES.values())
    for _ in range(300):
        chars = list(rng.choice(sources))
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(len(chars))
            chars[pos:pos + rng.randint(0, 3)] = rng.choice("{}%#()[]'\"~|._-+ \n\\x_")
        templates.review("".join(chars))  # returns issues; never raises
