"""The thin click layer: options -> Config -> pipeline -> exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from auditor import __version__, pipeline
from auditor.config import FAIL_ON, Config, CrawlConfig, load_config_file
from auditor.errors import AuditorError, ConfigError
from auditor.report import FORMATS

DEFAULTS = Config()
CRAWL_DEFAULTS = CrawlConfig()
DEFAULT_CONFIG_FILE = Path("auditor.yaml")


class UsageProblem(click.ClickException):
    """Misuse (bad path, config or database): one line on stderr, exit 2."""

    exit_code = 2


def _common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option("--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True,
                     help="SQLite database that keeps every run."),
        click.option("--out", type=click.Path(path_type=Path), default=DEFAULTS.out, show_default=True,
                     help="Directory the reports are written to."),
        click.option("--format", "formats", default=",".join(DEFAULTS.formats), show_default=True,
                     help=f"Comma-separated report formats: {', '.join(FORMATS)}."),
        click.option("--fail-on", type=click.Choice(FAIL_ON), default=DEFAULTS.fail_on, show_default=True,
                     help="Exit 1 when a finding reaches this severity."),
        click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                     help=f"YAML config file (default: {DEFAULT_CONFIG_FILE} if present)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit links and metadata in a corpus of article front matter."""


@cli.command()
@_common_options
@click.option("--concurrency", type=click.IntRange(1, 1024), default=CRAWL_DEFAULTS.concurrency, show_default=True,
              help="Requests in flight at once, all hosts together.")
@click.option("--per-host", type=click.IntRange(1, 64), default=CRAWL_DEFAULTS.per_host, show_default=True,
              help="Requests in flight at once to one host.")
@click.option("--rate", type=click.FloatRange(0.01, 1000), default=CRAWL_DEFAULTS.rate, show_default=True,
              help="Requests per second to one host.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=CRAWL_DEFAULTS.timeout, show_default=True,
              help="Seconds per URL attempt: connect, every redirect and the body read.")
@click.option("--retries", type=click.IntRange(0, 10), default=CRAWL_DEFAULTS.retries, show_default=True,
              help="Retries for network errors and 408/429/5xx answers.")
@click.option("--max-retry-wait", type=click.FloatRange(0, 3600), default=CRAWL_DEFAULTS.max_retry_wait,
              show_default=True, help="Longest Retry-After honoured, in seconds; a longer one ends the retries.")
@click.option("--max-redirects", type=click.IntRange(0, 50), default=CRAWL_DEFAULTS.max_redirects,
              show_default=True, help="Redirect hops followed per URL.")
@click.option("--allow-private", is_flag=True, help="Allow fetching loopback, private and link-local addresses.")
def audit(paths: tuple[Path, ...], **options: Any) -> None:
    """Check every link in the corpus (default: seeds/) and write reports."""
    _exit(lambda config: pipeline.audit(config), paths, options)


@cli.command()
@_common_options
def lint(paths: tuple[Path, ...], **options: Any) -> None:
    """Run only the offline metadata rules: no network, fast enough for pre-commit."""
    _exit(lambda config: pipeline.lint(config), paths, options)


def _exit(run: Callable[[Config], pipeline.Outcome], paths: tuple[Path, ...], options: dict[str, Any]) -> None:
    try:
        config = build_config(paths, options)
        outcome = run(config)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    summary = outcome.report["summary"]
    status = " (interrupted)" if outcome.interrupted else ""
    click.echo(
        f"auditor: run {outcome.run_id}{status}: {summary['documents']} documents, {summary['urls']} URLs, "
        f"{summary['errors']} errors, {summary['warnings']} warnings; reports in {config.out}/",
        err=True,
    )
    sys.exit(outcome.exit_code)


def build_config(paths: tuple[Path, ...], options: dict[str, Any]) -> Config:
    config_file = options.pop("config_file", None)
    overrides: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError(f"config file not found: {config_file}")
        overrides = load_config_file(config_file)
    elif DEFAULT_CONFIG_FILE.exists():
        overrides = load_config_file(DEFAULT_CONFIG_FILE)
    formats = tuple(f.strip() for f in options.pop("formats").split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format: unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    crawl_fields = {name: options.pop(name) for name in list(options) if hasattr(CRAWL_DEFAULTS, name)}
    return Config(
        paths=paths or DEFAULTS.paths,
        db=options.pop("db"),
        out=options.pop("out"),
        formats=formats,
        fail_on=options.pop("fail_on"),
        crawl=CrawlConfig(**crawl_fields),
        **overrides,
    )


def main() -> None:
    cli(prog_name="auditor")
