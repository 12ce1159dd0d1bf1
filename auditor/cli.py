"""Command line: parse, call, print, exit code. The one place errors become messages.

Exit codes (every command): 0 pass, 1 verdict failed, 2 usage or
configuration error, 3 internal or I/O error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from auditor.errors import (
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_PASS,
    EXIT_USAGE,
    AuditorError,
    UsageError,
)
from auditor.model import Severity
from auditor.report import DATA_FORMATS, SCAN_REPORTERS, VERDICT_REPORTERS
from auditor.version import __version__

if TYPE_CHECKING:
    from auditor.integrity.signing import Trust

SEVERITIES = [s.label for s in Severity]
F = TypeVar("F", bound=Callable[..., Any])


def _together(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator, listed in help order: a flag block written once."""

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _registry_flags(ca_file: Path | None, plain_http: bool) -> None:
    """`--registry-ca` and `--plain-http` exclude each other (plain HTTP has no TLS to
    check); every command with both options says so before it starts."""
    if ca_file is not None and plain_http:
        raise UsageError("--registry-ca and --plain-http exclude each other (plain HTTP has "
                         "no TLS to check)")


def _registry(ca_file: Path | None, plain_http: bool, keep: Path | None = None) -> Any:
    """The registry settings of `--registry-ca`, `--plain-http` and `--pull-to`."""
    from auditor.sources.registry import RegistrySettings

    _registry_flags(ca_file, plain_http)
    return RegistrySettings(plain_http=plain_http, ca_file=ca_file, keep=keep)


def _emit(text: str, output: Path | None) -> None:
    """Print to stdout, or write the file atomically with `-o`."""
    if output is None:
        click.echo(text, nl=False)
    else:
        from auditor.atomicio import write_atomic

        write_atomic(output, text)


# The Hub source flags shared by scan and gate.
_hub_options = _together(
    click.option("--download/--remote-only", default=True,
                 help="hf://: download and verify every file [default], or audit headers "
                 "in place with range requests (no weights downloaded)."),
    click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False),
                 help="Hugging Face cache [HF_HUB_CACHE, or HF_HOME/hub]."),
    click.option("--endpoint", metavar="URL",
                 help="Hub endpoint [HF_ENDPOINT, config hub-endpoint, or "
                 "https://huggingface.co]."),
    click.option("--token", metavar="TOKEN",
                 help="Hub access token [HF_TOKEN]; never printed."),
    click.option("--offline", is_flag=True,
                 help="Never touch the network; hf:// is read from the cache "
                 "[HF_HUB_OFFLINE=1]."),
)


# How an oci:// registry is reached (scan, gate, attest --push, verify-attestation, admission
# serve); credentials: environment or docker config.
_registry_options = _together(
    click.option("--registry-ca", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                 help="oci://: CA certificate(s) (PEM) the registry's TLS certificate is "
                 "checked against, besides the system's."),
    click.option("--plain-http", is_flag=True,
                 help="oci://: talk to the registry over plain HTTP (unencrypted: a lab "
                 "registry on localhost only)."),
)


# What the operator says the target is (scan, gate): graded `declared`, outranked by records.
_identity_options = _together(
    click.option("--revision", default=None,
                 help="hf:// and hf-cache://: branch, tag, refs/pr/N or commit [main]; a local "
                 "folder: the commit it holds, when not inferable."),
    click.option("--name", default=None, metavar="ORG/NAME",
                 help="A local folder: the repository it holds, for its origin (declared: a "
                 "git remote, download record or cache layout outranks it, and a "
                 "contradiction is a finding)."),
)


# The reference store measured lineage compares each model with (scan, gate, fingerprint show).
_FINGERPRINTS = click.option(
    "--fingerprints", type=click.Path(path_type=Path, file_okay=False), default=None,
    help="Reference store of base-model fingerprints (auditor fingerprint add) to measure "
    "lineage against [only the shipped family table].")


# Silences the progress display of scan and gate (the bar on a terminal, lines in a log).
_QUIET = click.option("--quiet", "-q", is_flag=True,
                      help="No progress on stderr (a bar on a terminal, otherwise a line "
                      "every 10 s of a long scan).")


# The flags shared by every command that scans (scan, gate, mirror scan).
_scan_flags = _together(
    click.option("--exclude", multiple=True, metavar="GLOB",
                 help="Skip files whose path or name matches GLOB (repeatable)."),
    click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                 help="Files scanned in parallel [config or: number of CPUs]."),
    click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
                 help="Config file [default: ./auditor.toml or [tool.auditor] in "
                 "./pyproject.toml]."),
)


_OUTPUT = click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
                       help="Write to this file (atomically) instead of stdout.")


# The verification flags of verify, scan, gate and policy check (one vocabulary).
_TSA_CHAIN = "auditor.tsa_certificate_chain"
_verify_options = _together(
    click.option("--key", type=click.Path(path_type=Path, dir_okay=False),
                 help="Trusted public key (PEM) for key-method signatures."),
    click.option("--certificate-chain", multiple=True,
                 type=click.Path(path_type=Path, dir_okay=False),
                 help="Trusted CA certificate(s) for certificate-method signatures."),
    click.option("--trust-config", type=click.Path(path_type=Path, dir_okay=False),
                 help="Sigstore client trust config (or trusted root) for keyless bundles."),
    click.option("--identity", help="Expected signer identity (certificate SAN)."),
    click.option("--issuer", help="Expected issuer (OIDC issuer or certificate issuer)."),
    click.option("--accept-expired-certificates", "accept_expired", is_flag=True,
                 help="UNSAFE: accept certificate-method signatures from certificates outside "
                 "their validity (checked at the leaf's own notBefore, as model_signing does) "
                 "instead of at a trusted signing time; prints a WARNING and marks the result."),
    # Kept out of the commands' parameters (one shared flag, read by `_trust` only).
    click.option("--tsa-certificate-chain", multiple=True, expose_value=False,
                 type=click.Path(path_type=Path, dir_okay=False),
                 callback=lambda ctx, _param, value: ctx.meta.__setitem__(_TSA_CHAIN, value),
                 help="Trusted root/intermediate(s) of RFC 3161 timestamp authorities only "
                 "(never signers); without it a bundle's timestamp is not used and validity "
                 "is checked at now."),
)


# The signer's flags shared by sign and attest.
_signer_options = _together(
    click.option("--key", required=True, type=click.Path(path_type=Path, dir_okay=False),
                 help="Private key (PEM, ECDSA P-256/P-384/P-521)."),
    click.option("--password-env", metavar="VAR",
                 help="Environment variable holding the key's password."),
    click.option("--certificate", type=click.Path(path_type=Path, dir_okay=False),
                 help="Signing certificate (PEM) to embed: the certificate method instead "
                 "of a bare key."),
)


def _trust(key: Path | None, certificate_chain: tuple[Path, ...], trust_config: Path | None,
           identity: str | None, issuer: str | None, accept_expired: bool = False
           ) -> Trust | None:
    """What the verify flags trust; the signing code (and `cryptography`) loads only if asked."""
    context = click.get_current_context(silent=True)
    tsa_chain = tuple(context.meta.get(_TSA_CHAIN, ())) if context else ()
    if not (key or certificate_chain or trust_config or tsa_chain):
        return None
    from auditor.integrity.signing import trust_from_options

    trust = trust_from_options(key, certificate_chain, trust_config, identity, issuer,
                               accept_expired, tsa_chain)
    _warn_accept_expired(accept_expired)
    return trust


def _warn_accept_expired(accept_expired: bool) -> None:
    """The unsafe waiver is never silent: one WARNING line on stderr whenever it is on."""
    if accept_expired:
        click.echo("WARNING: --accept-expired-certificates: signatures from certificates "
                   "outside their validity are accepted (as model_signing does)", err=True)


def _password(password_env: str | None) -> bytes | None:
    """A key password from the named environment variable (never from the command line)."""
    import os

    if not password_env:
        return None
    if password_env not in os.environ:
        raise UsageError(f"--password-env: environment variable {password_env} is not set")
    return os.environ[password_env].encode()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="auditor")
def cli() -> None:
    """auditor — may these weights run here? Static model supply-chain audit."""


@cli.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(list(SCAN_REPORTERS)), default="text",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report to this file (atomically) instead of stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding is at or above this severity [config or: high].")
@_scan_flags
@_identity_options
@_FINGERPRINTS
@_hub_options
@_registry_options
@click.option("--pull-to", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="oci://: keep the pulled files in this new or empty folder [streamed: one "
              "file on disk at a time, deleted once scanned].")
@click.option("--sbom", "sbom_path", type=click.Path(path_type=Path),
              help="Also write an ML-BOM to this file (into this folder: one per model): "
              "CycloneDX, or SPDX 3.0.1 with --output-format spdx-json.")
@click.option("--spec", type=click.Choice(["1.5", "1.6"]), default="1.6", show_default=True,
              help="CycloneDX version of the --sbom document.")
@click.option("--output-format", type=click.Choice(["json", "xml", "spdx-json"]),
              default="json", show_default=True,
              help="Encoding of the --sbom document: CycloneDX JSON or XML, or the same facts "
              "as SPDX 3.0.1 JSON-LD.")
@click.option("--hash", "extra_hashes", multiple=True, type=click.Choice(["sha512"]),
              help="Digest computed besides SHA-256, in the same pass (repeatable).")
@click.option("--reproducible", is_flag=True,
              help="Same input, same SBOM bytes: fixed timestamp (SOURCE_DATE_EPOCH or 0) and "
              "a serial number derived from the content (also on when SOURCE_DATE_EPOCH is set).")
@click.option("--signature", type=click.Path(path_type=Path, dir_okay=False),
              help="OMS signature to verify [default: model.sig in the model folder].")
@_verify_options
@_QUIET
def scan(
    target: str, fmt: str, output: Path | None, fail_on: str | None, exclude: tuple[str, ...],
    jobs: int | None, revision: str | None, name: str | None, fingerprints: Path | None,
    download: bool, cache_dir: Path | None,
    endpoint: str | None, token: str | None, offline: bool, config_path: Path | None,
    sbom_path: Path | None, spec: str, output_format: str, extra_hashes: tuple[str, ...],
    reproducible: bool, signature: Path | None, key: Path | None,
    certificate_chain: tuple[Path, ...], trust_config: Path | None, identity: str | None,
    issuer: str | None, accept_expired: bool, quiet: bool, registry_ca: Path | None,
    plain_http: bool, pull_to: Path | None,
) -> int:
    """Scan a model file or folder and report what loading it could do."""
    from auditor import pipeline
    from auditor.config import load_config
    from auditor.progress import for_stderr
    from auditor.report import render_scan
    from auditor.sources.hubclient import hub_settings

    config = load_config(config_path, scanned=target)
    threshold = Severity.parse(fail_on) if fail_on else config.fail_on
    options = config.scan_options(
        jobs, exclude,
        revision=revision,
        name=name,
        fingerprints=fingerprints,
        hash_algorithms=("sha256", *sorted(set(extra_hashes))),
        signature=signature,
        trust=_trust(key, certificate_chain, trust_config, identity, issuer, accept_expired),
    )
    progress = for_stderr(fmt, quiet)
    settings = hub_settings(
        endpoint=endpoint, config_endpoint=config.hub_endpoint, token=token,
        cache_dir=cache_dir, offline=offline, remote_only=not download,
    )
    result = pipeline.scan(target, options, settings, progress,
                           _registry(registry_ca, plain_http, pull_to))
    _emit(render_scan(result, fmt, threshold), output)
    if sbom_path is not None:
        pipeline.write_sboms(result, sbom_path, spec=spec, output_format=output_format,
                             reproducible=reproducible)
    return EXIT_FAIL if result.fails(threshold) else EXIT_PASS


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True, help="A table for the terminal, or the docs/rules.md page.")
@_OUTPUT
def rules(fmt: str, output: Path | None) -> int:
    """List every rule id, severity and title (markdown adds why it matters and the fix)."""
    from auditor import rules as catalogue

    _emit(catalogue.markdown() if fmt == "markdown" else catalogue.text(), output)
    return EXIT_PASS


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@_signer_options
@click.option("--certificate-chain", "chain", multiple=True,
              type=click.Path(path_type=Path, dir_okay=False),
              help="Intermediate/CA certificates to embed (certificate method).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Signature file [default: MODEL/model.sig].")
@click.option("--compat", type=click.Choice(["model_signing", "spec"]), default="model_signing",
              show_default=True, help="Resource naming and order convention.")
def sign(model: Path, key: Path, password_env: str | None, certificate: Path | None,
         chain: tuple[Path, ...], output: Path | None, compat: str) -> int:
    """Sign a model folder or file with an OpenSSF Model Signing (OMS) v1.0 signature."""
    from auditor.integrity import signing

    private = signing.load_private_key(key, _password(password_env))
    certs = signing.load_certificates(((certificate,) if certificate else ()) + chain)
    if chain and not certificate:
        raise UsageError("--certificate-chain needs --certificate (the signing certificate)")
    target = output or signing.default_signature(model)
    digests = signing.sign_model(model, private, target, certificates=certs, compat=compat)
    click.echo(f"signed {len(digests)} file(s) of {model} -> {target}")
    return EXIT_PASS


@cli.command()
@click.argument("model", type=click.Path(path_type=Path, exists=False))
@click.option("--signature", type=click.Path(path_type=Path, dir_okay=False),
              help="Signature file [default: MODEL/model.sig].")
@_verify_options
@click.option("--allow-unsigned-files", is_flag=True,
              help="Do not fail on files present but not covered by the signature.")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Result format.")
@_OUTPUT
def verify(model: Path, signature: Path | None, key: Path | None,
           certificate_chain: tuple[Path, ...], trust_config: Path | None, identity: str | None,
           issuer: str | None, accept_expired: bool, allow_unsigned_files: bool, fmt: str,
           output: Path | None) -> int:
    """Verify an OMS signature: the signer is trusted and every file is as signed."""
    import json

    from auditor.integrity import signing

    if not model.exists():
        raise UsageError(f"{model}: no such file or folder")
    trust = _trust(key, certificate_chain, trust_config, identity, issuer, accept_expired)
    if trust is None:
        raise UsageError("verify needs --key, --certificate-chain or --trust-config")
    sig = signature or signing.default_signature(model)
    result = signing.verify_model(model, sig, trust, allow_unsigned_files=allow_unsigned_files)
    for waived in result.accepted:
        click.echo(f"WARNING: {waived}", err=True)
    if fmt == "json":
        text = json.dumps(result.as_facts(), indent=2) + "\n"
    else:
        text = result.render_text(model)
    _emit(text, output)
    return EXIT_PASS if result.status == "verified" else EXIT_FAIL


@cli.command()
@click.argument("sbom", type=click.Path(path_type=Path, dir_okay=False))
@_signer_options
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Attestation file [default: SBOM.intoto.json].")
@click.option("--subject", metavar="MODEL_REF",
              help="Bind the attestation to the model the SBOM describes: "
              "oci://host/repo@sha256:<hex> or hf://org/name@<commit> (a tag is refused).")
@click.option("--push", is_flag=True,
              help="Attach the attestation to the --subject model in its OCI registry "
              "(a referrer of its manifest).")
@_registry_options
def attest(sbom: Path, key: Path, password_env: str | None, certificate: Path | None,
           output: Path | None, subject: str | None, push: bool, plain_http: bool,
           registry_ca: Path | None) -> int:
    """Sign an SBOM as an in-toto attestation (predicate type https://cyclonedx.org/bom)."""
    from auditor.integrity import attest as attestation
    from auditor.integrity import signing

    _registry_flags(registry_ca, plain_http)
    bound = attestation.model_subject(subject) if subject else None
    if push and (bound is None or not bound.name.startswith("oci://")):
        raise UsageError("--push needs --subject oci://host/repo@sha256:<hex>")
    private = signing.load_private_key(key, _password(password_env))
    certs = signing.load_certificates((certificate,) if certificate else ())
    target = output or sbom.with_name(sbom.name + ".intoto.json")
    digest, bundle = attestation.attest_sbom(sbom, private, target, certs, bound)
    click.echo(f"attested {sbom} (sha256 {digest})" + (f" for {bound}" if bound else "")
               + f" -> {target}")
    if push and bound is not None:
        pushed = attestation.push_attestation(bound, bundle, _registry(registry_ca, plain_http))
        click.echo(f"pushed {pushed} as a referrer of {bound}")
    return EXIT_PASS


@cli.group()
def sbom() -> None:
    """Work with CycloneDX SBOMs."""


@sbom.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Change list format.")
@_OUTPUT
def sbom_diff(old: Path, new: Path, fmt: str, output: Path | None) -> int:
    """What changed between two SBOMs (exit 1 when anything did, 0 when identical)."""
    from auditor.sbom import diff
    from auditor.sbom.facts import read_sbom

    changes = diff.diff(read_sbom(old), read_sbom(new))
    show = diff.render_json if fmt == "json" else diff.render_text
    _emit(show(changes, str(old), str(new)), output)
    return EXIT_FAIL if changes else EXIT_PASS


@sbom.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def sbom_validate(files: tuple[Path, ...]) -> int:
    """Validate CycloneDX JSON or XML files against the official schema (offline) and
    auditor's properties against their table (exit 1 when any file is invalid)."""
    from auditor.sbom.validation import validate_file

    failed = 0
    for path in files:
        result = validate_file(path)
        note = f" ({result.note})" if result.note else ""
        shown = "valid" if result.valid else "INVALID: " + "; ".join(result.problems)
        click.echo(f"{path}: {shown}{note}")
        failed += not result.valid
    return EXIT_FAIL if failed else EXIT_PASS


# The verdict flags shared by `policy check` and `gate`.
_policy_options = _together(
    click.option("--policy", "policies", multiple=True, required=True, metavar="FILE|NAME",
                 help="Policy file, or the name of an installed policy (`auditor policy list`: "
                 "baseline, production, geopolitical-risk); repeatable, later files may add "
                 "waivers and lineage."),
    click.option("--format", "fmt", type=click.Choice(list(VERDICT_REPORTERS)), default="text",
                 show_default=True, help="Verdict format."),
    _OUTPUT,
    click.option("--fail-on", type=click.Choice(SEVERITIES), default="low",
                 show_default=True,
                 help="Exit 1 when an unwaived violation is at or above this severity."),
)


@cli.group()
def policy() -> None:
    """Judge SBOMs against policy files; lint and unit-test policies."""


@policy.command("check")
@click.argument("sboms", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@_policy_options
@click.option("--attestation", type=click.Path(path_type=Path, dir_okay=False),
              help="Trust the SBOM only if this attestation (auditor attest) verifies.")
@_verify_options
def policy_check(sboms: tuple[Path, ...], policies: tuple[str, ...], fmt: str,
                 output: Path | None, fail_on: str, attestation: Path | None, key: Path | None,
                 certificate_chain: tuple[Path, ...], trust_config: Path | None,
                 identity: str | None, issuer: str | None, accept_expired: bool) -> int:
    """Judge CycloneDX SBOMs (auditor's or another tool's) against policies."""
    from auditor import pipeline
    from auditor.report import Where, render_verdict

    loaded = pipeline.load_policies(policies)
    if attestation is not None:
        from auditor.integrity.attest import verify_attestation
        if len(sboms) != 1:
            raise UsageError("--attestation covers exactly one SBOM")
        trust = _trust(key, certificate_chain, trust_config, identity, issuer, accept_expired)
        if trust is None:
            raise UsageError("--attestation needs --key, --certificate-chain or --trust-config "
                             "to check it")
        verify_attestation(attestation, trust, sboms[0])
    verdict = pipeline.check_sboms(loaded, sboms)
    threshold = Severity.parse(fail_on)
    location = str(sboms[0]) if len(sboms) == 1 else ""
    _emit(render_verdict(verdict, fmt, threshold, Where(model_location=location)), output)
    return EXIT_FAIL if verdict.fails(threshold) else EXIT_PASS


@policy.command("list")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Output format.")
def policy_list(fmt: str) -> int:
    """The policies installed with auditor: name (for --policy NAME), purpose, rule count."""
    from auditor.policy.installed import available

    found = available()
    if fmt == "json":
        import json

        click.echo(json.dumps([{"name": p.name, "purpose": p.purpose, "rules": p.rules,
                                "path": str(p.path)} for p in found], indent=2))
        return EXIT_PASS
    width = max((len(p.name) for p in found), default=4)
    for p in found:
        click.echo(f"{p.name:{width}}  {p.rules:2} rules  {p.purpose}")
    return EXIT_PASS


@policy.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def policy_lint(files: tuple[Path, ...]) -> int:
    """Check policy files: schema, CEL syntax, fact names (errors as file:line:col)."""
    from auditor.policy.lint import lint_policy

    problems = [p for f in files for p in lint_policy(f)[1]]
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        return EXIT_USAGE
    click.echo(f"{len(files)} policy file(s) OK")
    return EXIT_PASS


@policy.command("test")
@click.argument("folder", type=click.Path(path_type=Path, exists=True))
def policy_test(folder: Path) -> int:
    """Run policy unit tests (*_test.yaml: SBOM fixtures and the rules they must trip)."""
    from auditor.policy import testing

    results = testing.run_tests(folder)
    click.echo(testing.to_text(results), nl=False)
    return EXIT_PASS if all(r.passed for r in results) else EXIT_FAIL


@cli.command()
@click.argument("target")
@_policy_options
@click.option("--sbom", "sbom_path", type=click.Path(path_type=Path),
              help="Also write the CycloneDX SBOM the verdict was computed from.")
@click.option("--reproducible", is_flag=True, help="Same input, same SBOM bytes.")
@_identity_options
@_FINGERPRINTS
@_scan_flags
@_hub_options
@_registry_options
@click.option("--signature", type=click.Path(path_type=Path, dir_okay=False),
              help="OMS signature to verify [default: model.sig in the model folder].")
@_verify_options
@click.option("--attestation", type=click.Path(path_type=Path, dir_okay=False),
              help="Judge this attested SBOM (auditor attest) instead of rescanning; TARGET's "
              "files must match its hashes.")
@_QUIET
def gate(
    target: str, policies: tuple[str, ...], fmt: str, output: Path | None, fail_on: str,
    sbom_path: Path | None, reproducible: bool, revision: str | None, name: str | None,
    fingerprints: Path | None, exclude: tuple[str, ...], jobs: int | None,
    config_path: Path | None, download: bool,
    cache_dir: Path | None, endpoint: str | None, token: str | None, offline: bool,
    signature: Path | None, key: Path | None, certificate_chain: tuple[Path, ...],
    trust_config: Path | None, identity: str | None, issuer: str | None, accept_expired: bool,
    attestation: Path | None, quiet: bool, registry_ca: Path | None, plain_http: bool,
) -> int:
    """Scan → SBOM → policy in one step: may this model be deployed?"""
    from auditor import pipeline
    from auditor.config import load_config
    from auditor.progress import for_stderr
    from auditor.report import Where, render_verdict
    from auditor.sources.hubclient import hub_settings
    from auditor.sources.resolve import is_local

    loaded = pipeline.load_policies(policies)  # a broken policy fails before any scanning
    trust = _trust(key, certificate_chain, trust_config, identity, issuer, accept_expired)
    threshold = Severity.parse(fail_on)
    if attestation is not None:
        if trust is None:
            raise UsageError("--attestation needs --key, --certificate-chain or --trust-config "
                             "to check it")
        judged = pipeline.gate_attested(Path(target), loaded, attestation, trust)
        where = Where(base=target, model_location=str(attestation))
        _emit(render_verdict(judged.verdict, fmt, threshold, where), output)
        return EXIT_FAIL if judged.fails(threshold) else EXIT_PASS
    config = load_config(config_path, scanned=target)
    options = config.scan_options(jobs, exclude, revision=revision, name=name,
                                  fingerprints=fingerprints, signature=signature, trust=trust)
    settings = hub_settings(
        endpoint=endpoint, config_endpoint=config.hub_endpoint, token=token,
        cache_dir=cache_dir, offline=offline, remote_only=not download,
    )
    judged = pipeline.gate(target, loaded, options, settings, sbom_path=sbom_path,
                           reproducible=reproducible, progress=for_stderr(fmt, quiet),
                           registry=_registry(registry_ca, plain_http))
    where = Where(base=target if is_local(target) else "", model_location=str(sbom_path or target))
    _emit(render_verdict(judged.verdict, fmt, threshold, where), output)
    return EXIT_FAIL if judged.fails(threshold) else EXIT_PASS


# What the deploy-time check decides against (verify-attestation, admission serve).
_admission_options = _together(
    click.option("--policy", "policies", multiple=True, required=True, metavar="FILE|NAME",
                 help="Policy judged over the attested SBOM (file or installed name); "
                 "repeatable."),
    click.option("--attestations", type=click.Path(path_type=Path, file_okay=False),
                 help="Local attestation store (a folder of auditor attest bundles), for "
                 "air-gapped clusters and hf:// models; OCI referrers are looked up too."),
    click.option("--no-registry", is_flag=True,
                 help="Never ask a registry for referrers: the --attestations store only."),
    click.option("--fail-on", type=click.Choice(SEVERITIES), default="low", show_default=True,
                 help="Deny when an unwaived violation is at or above this severity."),
    click.option("--warn-days", type=click.IntRange(min=0), default=14, show_default=True,
                 help="Warn about waivers that expire within this many days."),
    _verify_options,
    _registry_options,
)


def _decider(policies: tuple[str, ...], attestations: Path | None, no_registry: bool,
             fail_on: str, warn_days: int, key: Path | None,
             certificate_chain: tuple[Path, ...], trust_config: Path | None,
             identity: str | None, issuer: str | None, accept_expired: bool, plain_http: bool,
             registry_ca: Path | None, timeout: float = 30.0) -> Any:
    """The one Decider both deploy-time commands build from the same flags."""
    from auditor import pipeline
    from auditor.admission.decide import Decider, Settings
    from auditor.oci.access import RegistryAccess
    from auditor.oci.client import env_credentials

    _registry_flags(registry_ca, plain_http)
    if not no_registry:
        env_credentials()  # credentials without the host they are for: said before serving
    loaded = pipeline.load_policies(policies)
    trust = _trust(key, certificate_chain, trust_config, identity, issuer, accept_expired)
    if trust is None:
        raise UsageError("a deploy-time check needs --key, --certificate-chain or "
                         "--trust-config: who may attest")
    if no_registry and attestations is None:
        raise UsageError("--no-registry needs --attestations DIR: nowhere else to look")
    if attestations is not None and not attestations.is_dir():
        raise UsageError(f"--attestations {attestations}: no such folder")
    access = RegistryAccess(plain_http=plain_http, ca_file=registry_ca, timeout=timeout)
    return Decider(Settings(loaded, trust, store=attestations, registries=not no_registry,
                            registry=access, fail_on=Severity.parse(fail_on),
                            warn_days=warn_days))


@cli.command("verify-attestation")
@click.argument("model_ref")
@_admission_options
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Output format.")
def verify_attestation(model_ref: str, policies: tuple[str, ...], attestations: Path | None,
                       no_registry: bool, fail_on: str, warn_days: int, key: Path | None,
                       certificate_chain: tuple[Path, ...], trust_config: Path | None,
                       identity: str | None, issuer: str | None, accept_expired: bool,
                       plain_http: bool, registry_ca: Path | None, fmt: str) -> int:
    """May MODEL_REF be deployed? The admission webhook's check, from a shell or CD step."""
    from auditor.admission.refs import Named

    decider = _decider(policies, attestations, no_registry, fail_on, warn_days, key,
                       certificate_chain, trust_config, identity, issuer, accept_expired,
                       plain_http, registry_ca)
    decision = decider.decide(Named(model_ref, "command line"))
    if fmt == "json":
        import json

        click.echo(json.dumps(decision.as_dict(), indent=2))
    else:
        click.echo(f"{'allowed' if decision.allowed else 'denied'}: {decision.reason}")
    for warning in decision.warnings:  # on stderr, in either format
        click.echo(f"warning: {warning}", err=True)
    return EXIT_PASS if decision.allowed else EXIT_FAIL


@cli.group()
def admission() -> None:
    """Kubernetes admission webhook: admit only attested, policy-passing models."""


@admission.command("serve")
@_admission_options
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Serving certificate (PEM), with its chain.")
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The certificate's private key (PEM).")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=8.0, show_default=True,
              help="Seconds a review may take (keep it under the webhook's timeoutSeconds).")
@click.option("--failure-policy", type=click.Choice(["fail", "allow"]), default="fail",
              show_default=True,
              help="When no verdict can be reached (registry down, time budget spent): deny, or "
              "admit with a warning.")
@click.option("--audit-log", type=click.Path(path_type=Path, dir_okay=False),
              help="Append one JSON line per review here [stderr].")
def admission_serve(policies: tuple[str, ...], attestations: Path | None, no_registry: bool,
                    fail_on: str, warn_days: int, key: Path | None,
                    certificate_chain: tuple[Path, ...], trust_config: Path | None,
                    identity: str | None, issuer: str | None, accept_expired: bool,
                    plain_http: bool, registry_ca: Path | None, tls_cert: Path,
                    tls_key: Path, host: str, port: int, timeout: float, failure_policy: str,
                    audit_log: Path | None) -> int:
    """Answer AdmissionReview v1 over HTTPS: POST /validate, GET /healthz."""
    from auditor.admission.server import ServerConfig, serve

    decider = _decider(policies, attestations, no_registry, fail_on, warn_days, key,
                       certificate_chain, trust_config, identity, issuer, accept_expired,
                       plain_http, registry_ca, timeout=timeout)
    serve(ServerConfig(tls_cert, tls_key, host, port, timeout, failure_policy, audit_log),
          decider)
    return EXIT_PASS


@admission.command("manifest")
@click.option("--namespace", required=True, help="Namespace the webhook runs in.")
@click.option("--image", required=True, help="Container image of auditor to run.")
@click.option("--name", default="auditor-admission", show_default=True,
              help="Name of the Service, Deployment and webhook configuration.")
@click.option("--policy", "policies", multiple=True, metavar="NAME",
              help="Installed policy the webhook judges by; repeatable [baseline, production].")
@click.option("--timeout-seconds", type=click.IntRange(3, 30), default=10, show_default=True,
              help="How long the API server waits (the server's budget is 2 s less).")
@click.option("--ca-bundle", type=click.Path(path_type=Path, dir_okay=False),
              help="CA (PEM) that signed the serving certificate [cert-manager injects it].")
@_OUTPUT
def admission_manifest(namespace: str, image: str, name: str, policies: tuple[str, ...],
                       timeout_seconds: int, ca_bundle: Path | None,
                       output: Path | None) -> int:
    """Print the ValidatingWebhookConfiguration, Service and Deployment YAML."""
    from auditor.admission.manifest import Deployment, render

    try:
        ca = ca_bundle.read_bytes() if ca_bundle else None
    except OSError as exc:
        raise UsageError(f"--ca-bundle {ca_bundle}: {exc.strerror or exc}") from None
    chosen = policies or Deployment.policies
    _emit(render(Deployment(namespace, image, name, tuple(chosen), timeout_seconds, ca)),
          output)
    return EXIT_PASS


@cli.group()
def fingerprint() -> None:
    """Lineage measured from the bytes: tokenizer, architecture and weight fingerprints."""


@fingerprint.command("show")
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Output format.")
@_OUTPUT
@_FINGERPRINTS
@_identity_options
@_scan_flags
@_hub_options
def fingerprint_show(
    target: str, fmt: str, output: Path | None, fingerprints: Path | None,
    revision: str | None, name: str | None, exclude: tuple[str, ...], jobs: int | None,
    config_path: Path | None, download: bool, cache_dir: Path | None, endpoint: str | None,
    token: str | None, offline: bool,
) -> int:
    """What each model's bytes measure as: its fingerprint, nearest family and references."""
    from auditor import pipeline
    from auditor.config import load_config
    from auditor.report.fingerprints import render
    from auditor.sources.hubclient import hub_settings

    config = load_config(config_path, scanned=target)
    options = config.scan_options(jobs, exclude, revision=revision, name=name,
                                  fingerprints=fingerprints)
    settings = hub_settings(endpoint=endpoint, config_endpoint=config.hub_endpoint, token=token,
                            cache_dir=cache_dir, offline=offline, remote_only=not download)
    done = pipeline.fingerprint(target, options, settings)
    _emit(render([d.model for d in done], fmt), output)
    return EXIT_PASS


@fingerprint.command("add")
@click.argument("target")
@click.option("--store", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The reference store (a folder of fingerprint files; created if missing).")
@_identity_options
@_scan_flags
@_hub_options
def fingerprint_add(
    target: str, store: Path, revision: str | None, name: str | None,
    exclude: tuple[str, ...], jobs: int | None, config_path: Path | None, download: bool,
    cache_dir: Path | None, endpoint: str | None, token: str | None, offline: bool,
) -> int:
    """Add each base model of TARGET to a reference store, under its name and publisher."""
    from auditor import pipeline
    from auditor.config import load_config
    from auditor.sources.hubclient import hub_settings

    config = load_config(config_path, scanned=target)
    options = config.scan_options(jobs, exclude, revision=revision, name=name)
    settings = hub_settings(endpoint=endpoint, config_endpoint=config.hub_endpoint, token=token,
                            cache_dir=cache_dir, offline=offline, remote_only=not download)
    for path in pipeline.add_references(target, store, options, settings):
        click.echo(f"added {path}")
    return EXIT_PASS


@cli.group()
def mirror() -> None:
    """Scheduled, incremental scans of a model mirror (Hugging Face cache or org/name/ tree)."""


@mirror.command("scan")
@click.argument("root", type=click.Path(path_type=Path, file_okay=False))
@click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("auditor-mirror.db"), show_default=True,
              help="SQLite state of this mirror (what was scanned, verdicts, history).")
@click.option("--sboms", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for one SBOM per model [a 'sboms' folder beside the state file].")
@click.option("--policy", "policies", multiple=True, metavar="FILE|NAME",
              help="Policy file or installed policy name every model's SBOM is judged "
              "against (repeatable).")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Summary format.")
@_OUTPUT
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a NEW finding is at or above this severity [config or: high].")
@click.option("--executor", metavar="dask://HOST:PORT",
              help="Scan files on a Dask cluster whose workers see ROOT at the same path "
              "[local threads].")
@_FINGERPRINTS
@click.option("--add-fingerprints", is_flag=True,
              help="Also add every model scanned to the --fingerprints store (a mirror of base "
              "models builds the store its derivatives are measured against).")
@_scan_flags
def mirror_scan(root: Path, state_path: Path, sboms: Path | None, policies: tuple[str, ...],
                fmt: str, output: Path | None, fail_on: str | None, executor: str | None,
                fingerprints: Path | None, add_fingerprints: bool,
                jobs: int | None, exclude: tuple[str, ...], config_path: Path | None) -> int:
    """Rescan what changed in a mirror, detect drift, write SBOMs; exit 1 on new violations."""
    from auditor.config import load_config
    from auditor.mirror import scan as mirror_run
    from auditor.mirror import summary
    from auditor.policy.installed import resolve

    if add_fingerprints and fingerprints is None:
        raise UsageError("--add-fingerprints needs --fingerprints DIR (the store to add to)")
    config = load_config(config_path, scanned=str(root))
    options = config.scan_options(jobs, exclude, fingerprints=fingerprints)
    state_path = state_path.absolute()
    result = mirror_run.run(mirror_run.MirrorOptions(
        root=root.absolute(), state=state_path, sboms=(sboms or state_path.parent / "sboms"
                                                       ).absolute(),
        policies=tuple(resolve(p) for p in policies),
        fail_on=Severity.parse(fail_on) if fail_on else config.fail_on,
        executor=executor, scan=options, add_fingerprints=add_fingerprints,
    ))
    _emit(mirror_run.dumps(result) if fmt == "json" else summary.render_run(result), output)
    return EXIT_FAIL if result["verdict"] == "fail" else EXIT_PASS


@mirror.command("status")
@click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("auditor-mirror.db"), show_default=True,
              help="SQLite state written by 'auditor mirror scan'.")
@click.option("--format", "fmt", type=click.Choice(DATA_FORMATS), default="text",
              show_default=True, help="Status format.")
@_OUTPUT
def mirror_status(state_path: Path, fmt: str, output: Path | None) -> int:
    """Each mirrored model's latest verdict and history."""
    import json

    from auditor.mirror import state, summary

    result = state.status(state_path)
    _emit(json.dumps(result, indent=2) + "\n" if fmt == "json" else summary.render_status(result),
          output)
    return EXIT_PASS


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("auditor: aborted", err=True)
        code = EXIT_INTERNAL
    except click.ClickException as exc:  # one line, like every other error
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"auditor: error: {exc.format_message()}{hint}", err=True)
        code = EXIT_USAGE
    except AuditorError as exc:
        click.echo(f"auditor: error: {exc}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        click.echo("auditor: interrupted", err=True)
        code = EXIT_INTERNAL
    except Exception as exc:  # the one catch-all: a bug is exit 3, never a pass
        click.echo(f"auditor: internal error: {type(exc).__name__}: {exc}", err=True)
        code = EXIT_INTERNAL
    sys.exit(code or 0)
