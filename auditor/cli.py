"""Command line: parse, call, print, exit code. The one place errors become messages.

Exit codes (every command): 0 pass, 1 verdict failed, 2 usage or
configuration error, 3 internal or I/O error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from auditor import __version__
from auditor.errors import EXIT_FAIL, EXIT_INTERNAL, EXIT_PASS, EXIT_USAGE, AuditorError
from auditor.model import Severity

SEVERITIES = [s.label for s in Severity]


def _emit(text: str, output: Path | None) -> None:
    """Print to stdout, or write the file atomically with `-o`."""
    if output is None:
        click.echo(text, nl=False)
    else:
        from auditor.atomicio import write_atomic

        write_atomic(output, text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="auditor")
def cli() -> None:
    """auditor — may these weights run here? Static model supply-chain audit."""


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Report format.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report to this file (atomically) instead of stdout.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when a finding is at or above this severity [config or: high].")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Skip files whose path or name matches GLOB (repeatable).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Files scanned in parallel [config or: number of CPUs].")
@click.option("--revision", default=None,
              help="The revision (commit) this local folder holds, when not inferable.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Config file [default: ./auditor.toml or [tool.auditor] in ./pyproject.toml].")
@click.option("--sbom", "sbom_path", type=click.Path(path_type=Path),
              help="Also write a CycloneDX ML-BOM to this file (into this folder: one per model).")
@click.option("--spec", type=click.Choice(["1.5", "1.6"]), default="1.6", show_default=True,
              help="CycloneDX version of the --sbom document.")
@click.option("--output-format", type=click.Choice(["json", "xml"]), default="json",
              show_default=True, help="Encoding of the --sbom document.")
@click.option("--hash", "extra_hashes", multiple=True, type=click.Choice(["sha512"]),
              help="Digest computed besides SHA-256, in the same pass (repeatable).")
@click.option("--reproducible", is_flag=True,
              help="Same input, same SBOM bytes: fixed timestamp (SOURCE_DATE_EPOCH or 0) and "
              "a serial number derived from the content (also on when SOURCE_DATE_EPOCH is set).")
def scan(
    target: Path, fmt: str, output: Path | None, fail_on: str | None, exclude: tuple[str, ...],
    jobs: int | None, revision: str | None, config_path: Path | None,
    sbom_path: Path | None, spec: str, output_format: str, extra_hashes: tuple[str, ...],
    reproducible: bool,
) -> int:
    """Scan a model file or folder and report what loading it could do."""
    import os

    from auditor.config import load_config
    from auditor.scan.context import ScanOptions
    from auditor.scan.engine import scan_local

    config = load_config(config_path)
    threshold = Severity.parse(fail_on) if fail_on else config.fail_on
    options = ScanOptions(
        jobs=jobs or config.jobs or os.cpu_count() or 2,
        exclude=config.exclude + exclude,
        safe_imports=config.safe_imports,
        known_ml_imports=config.known_ml_imports,
        revision=revision,
        hash_algorithms=("sha256", *sorted(set(extra_hashes))),
    )
    progress = None
    if fmt == "text" and sys.stderr.isatty():
        from auditor.progress import TerminalProgress

        progress = TerminalProgress()
    result = scan_local(target, options, progress)
    if fmt == "json":
        from auditor.report import json as report
    else:
        from auditor.report import text as report  # type: ignore[no-redef]
    _emit(report.render(result, threshold), output)
    if sbom_path is not None:
        from auditor.sbom.cyclonedx import write_sboms

        write_sboms(result, sbom_path, spec=spec, output_format=output_format,
                    reproducible=reproducible)
    return EXIT_FAIL if result.fails(threshold) else EXIT_PASS


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
def rules(fmt: str, output: Path | None) -> int:
    """List every rule id with its severity, why it matters and how to fix it."""
    from auditor import rules as catalogue

    if fmt == "markdown":
        text = catalogue.markdown()
    else:
        text = "".join(
            f"{r.id:14} {r.severity.label:8} {r.title}\n" for r in catalogue.catalogue().values()
        )
    _emit(text, output)
    return EXIT_PASS


@cli.group()
def sbom() -> None:
    """Work with CycloneDX SBOMs."""


@sbom.command("diff")
@click.argument("old", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
def sbom_diff(old: Path, new: Path, fmt: str, output: Path | None) -> int:
    """What changed between two SBOMs (exit 1 when anything did, 0 when identical)."""
    from auditor.sbom import diff

    changes = diff.diff(diff.load(old), diff.load(new))
    render = diff.render_json if fmt == "json" else diff.render_text
    _emit(render(changes, str(old), str(new)), output)
    return EXIT_FAIL if changes else EXIT_PASS


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="auditor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("auditor: aborted", err=True)
        code = EXIT_INTERNAL
    except click.ClickException as exc:
        exc.show()
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
