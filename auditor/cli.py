"""The thin click layer: options -> Config -> pipeline -> exit code."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from auditor import __version__, pipeline
from auditor.config import FAIL_ON, Config, CrawlConfig, load_config_file, parse_duration
from auditor.crawl import check_settings
from auditor.errors import AuditorError, ConfigError
from auditor.links import InvalidURL, normalize_url
from auditor.model import FailOn, Severity
from auditor.network import AcceptCodes, Header, parse_header, proxy_setting
from auditor.progress import Progress, terminal_safe
from auditor.report import FORMATS, Report, build_report, github, write_reports
from auditor.rules import status_verdict
from auditor.runlock import LockHolder, WaitHook
from auditor.serve.schedule import parse_every
from auditor.store import Store

DEFAULTS = Config()
CRAWL_DEFAULTS = CrawlConfig()
DEFAULT_CONFIG_FILE = Path("auditor.yaml")


class UsageProblem(click.ClickException):
    """Misuse (bad path, config or database): one line on stderr, exit 2."""

    exit_code = 2


def _common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.argument("paths", nargs=-1, type=click.Path(path_type=Path)),
        click.option(
            "--db",
            type=click.Path(path_type=Path),
            default=DEFAULTS.db,
            show_default=True,
            help="SQLite database that keeps every run.",
        ),
        click.option(
            "--out",
            type=click.Path(path_type=Path),
            default=DEFAULTS.out,
            show_default=True,
            help="Directory the reports are written to.",
        ),
        _formats_option,
        click.option(
            "--fail-on",
            type=click.Choice(FAIL_ON),
            default=DEFAULTS.fail_on.value,
            show_default=True,
            help="Exit 1 when a finding reaches this severity.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            default=None,
            help=f"YAML config file (default: {DEFAULT_CONFIG_FILE} if present).",
        ),
        click.option(
            "--annotations",
            type=click.Choice(github.MODES),
            default=None,
            help="Print findings as CI annotations; 'github' also appends report.md to "
            "$GITHUB_STEP_SUMMARY. Default: github when GITHUB_ACTIONS=true, else none.",
        ),
        click.option(
            "--wait",
            is_flag=True,
            help="When another run is writing the database, wait for it to finish (default: exit 2 at once).",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary line; errors only."),
        click.option("--verbose", "-v", is_flag=True, help="Log every check on stderr."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _formats_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "formats",
        default=",".join(DEFAULTS.formats),
        show_default=True,
        help=f"Comma-separated report formats: {', '.join(FORMATS)}.",
    )(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="auditor")
def cli() -> None:
    """Audit links and metadata in a corpus of article front matter."""


@cli.command()
@_common_options
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=CRAWL_DEFAULTS.concurrency,
    show_default=True,
    help="Requests in flight at once, all hosts together.",
)
@click.option(
    "--per-host",
    type=click.IntRange(1, 64),
    default=CRAWL_DEFAULTS.per_host,
    show_default=True,
    help="Requests in flight at once to one host.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0.01, 1000),
    default=CRAWL_DEFAULTS.rate,
    show_default=True,
    help="Requests per second to one host.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=CRAWL_DEFAULTS.timeout,
    show_default=True,
    help="Seconds per URL attempt: connect, every redirect and the body read.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=CRAWL_DEFAULTS.retries,
    show_default=True,
    help="Retries for network errors and 408/429/5xx answers.",
)
@click.option(
    "--max-retry-wait",
    type=click.FloatRange(0, 3600),
    default=CRAWL_DEFAULTS.max_retry_wait,
    show_default=True,
    help="Longest Retry-After honoured, in seconds; a longer one ends the retries.",
)
@click.option(
    "--max-redirects",
    type=click.IntRange(0, 50),
    default=CRAWL_DEFAULTS.max_redirects,
    show_default=True,
    help="Redirect hops followed per URL.",
)
@click.option("--allow-private", is_flag=True, help="Allow fetching loopback, private and link-local addresses.")
@click.option(
    "--accept",
    metavar="CODES",
    default=None,
    callback=lambda _ctx, _param, value: _setting(lambda: AcceptCodes.parse(value or [], ("--accept",))),
    help="Statuses that count as OK besides 2xx, on every host: 403 or 200-299,403 "
    "(per host: `hosts:` in the config file). The real status is kept.",
)
@click.option(
    "--header",
    "headers",
    metavar="'NAME: VALUE'",
    multiple=True,
    callback=lambda _ctx, _param, value: _setting(lambda: _headers(value)),
    help="Extra request header for every host; repeatable. ${NAME} in VALUE is read from the environment. "
    "Values never reach the database, the logs or the reports.",
)
@click.option(
    "--user-agent",
    metavar="TEXT",
    default=CRAWL_DEFAULTS.user_agent,
    show_default=True,
    callback=lambda _ctx, _param, value: _setting(lambda: _user_agent(value)),
    help="User-Agent sent to every host.",
)
@click.option(
    "--proxy",
    metavar="URL",
    default=None,
    callback=lambda _ctx, _param, value: _setting(lambda: proxy_setting(value, ("--proxy",)) if value else None),
    help="Send every request through this HTTP(S) proxy (default: HTTP_PROXY, HTTPS_PROXY and NO_PROXY "
    "from the environment).",
)
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path),
    metavar="FILE",
    default=None,
    help="PEM file of CA certificates to trust as well as SSL_CERT_FILE / SSL_CERT_DIR (or the bundled ones).",
)
@click.option(
    "--max-age",
    metavar="DURATION",
    default=None,
    help="Reuse a URL's stored result if it was OK and is younger than this (30m, 6h, 2d); "
    "failures are always checked again.",
)
@click.option(
    "--dead-after",
    type=click.IntRange(1, 1000),
    default=DEFAULTS.dead_after,
    show_default=True,
    help="A dead link is an error only after this many failing runs in a row (a warning before).",
)
@click.option(
    "--flaky-window",
    type=click.IntRange(2, 100),
    default=DEFAULTS.flaky_window,
    show_default=True,
    help="Runs (this one included) within which two flips between ok and failing make a link flaky.",
)
@click.option("--resume", is_flag=True, help="Continue the last unfinished run, checking only what it had not.")
def audit(paths: tuple[Path, ...], **options: Any) -> None:
    """Check every link in the corpus (default: seeds/) and write reports."""
    progress = Progress.for_stream(quiet=options["quiet"], verbose=options["verbose"])

    def run(config: Config, wait: WaitHook | None) -> pipeline.Outcome:
        try:
            # A header variable that is not set, or a CA bundle that is no bundle: exit 2 before a run begins.
            check_settings(config.crawl)
            return pipeline.audit(config, progress=None if progress.silent else progress, wait=wait)
        finally:
            progress.close()

    _exit(run, paths, options)


@cli.command()
@_common_options
def lint(paths: tuple[Path, ...], **options: Any) -> None:
    """Run only the offline metadata rules: no network, fast enough for pre-commit."""
    _exit(lambda config, wait: pipeline.lint(config, wait=wait), paths, options)


T = TypeVar("T")


def _setting(parse: Callable[[], T]) -> T:
    """A flag's typed value; its ConfigError is a usage problem naming the flag (exit 2)."""
    try:
        return parse()
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from exc


def _headers(values: tuple[str, ...]) -> tuple[Header, ...]:
    # Named by position: a header without its name may be nothing but a secret.
    return tuple(parse_header(text, (f"--header #{n}",)) for n, text in enumerate(values, start=1))


def _user_agent(value: str) -> str:
    if not value.strip() or any(not ch.isprintable() for ch in value):
        raise ConfigError("--user-agent: must be printable text on one line")
    return value.strip()


def _every(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_every(value)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from exc


# The same audit options as `audit`, taken from it, so the two cannot drift apart.
@cli.command(params=list(audit.params))
@click.option(
    "--every",
    default="6h",
    show_default=True,
    callback=_every,
    help="Audit at start, then at this interval: a whole number and a unit, s, m, h or d (30m, 6h, 2d).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
def serve(paths: tuple[Path, ...], every: int, host: str, port: int, **options: Any) -> None:
    """Audit on a schedule and serve the reports, a JSON API, /healthz and /metrics over HTTP (read-only).

    SIGTERM or SIGINT stops the audit under way at its next safe point, then the service: exit 0.
    """
    from auditor.serve import service  # the ASGI stack is loaded for `serve` only

    quiet, verbose = options.pop("quiet"), options.pop("verbose")
    options.pop("annotations")  # a service prints no CI annotations
    options.pop("wait")  # a tick that finds the database in use is logged, and the next one tries again
    try:
        if quiet and verbose:
            raise ConfigError("--quiet and --verbose contradict each other; pick one")
        if options.get("resume"):
            raise ConfigError("--resume continues one audit; `auditor audit --resume` does that, not serve")
        config = build_config(paths, options)
        check_settings(config.crawl)
        code = service.serve(config, every=every, host=host, port=port, quiet=quiet, verbose=verbose)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    sys.exit(code)


def _exit(
    run: Callable[[Config, WaitHook | None], pipeline.Outcome], paths: tuple[Path, ...], options: dict[str, Any]
) -> None:
    quiet, verbose = options.pop("quiet"), options.pop("verbose")
    annotations_option, wait = options.pop("annotations"), options.pop("wait")
    try:
        if quiet and verbose:
            raise ConfigError("--quiet and --verbose contradict each other; pick one")
        annotate = github.resolve_mode(annotations_option)
        config = build_config(paths, options)
        outcome = run(config, _say_waiting(config.db, quiet) if wait else None)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    except KeyboardInterrupt:
        # Ctrl-C before the run began (while waiting for the database): nothing was written.
        click.echo("auditor: interrupted", err=True)
        sys.exit(130)
    if annotate == "github":
        _github(outcome.report)
    elif not quiet:
        _print_findings(outcome.report)
    if not quiet:
        summary = outcome.report.summary
        status = " (interrupted)" if outcome.interrupted else ""
        click.echo(
            f"auditor: run {outcome.run_id}{status}: {summary.documents} documents, {summary.urls} URLs, "
            f"{summary.errors} errors, {summary.warnings} warnings; reports in {config.out}/",
            err=True,
        )
    sys.exit(outcome.exit_code)


def _say_waiting(db: Path, quiet: bool) -> WaitHook:
    def say(holder: LockHolder | None) -> None:
        if not quiet:
            by = holder.describe() if holder else "another auditor run"
            click.echo(f"auditor: {db} is in use by {by}; waiting for it to finish", err=True)

    return say


def _print_findings(report: Report) -> None:
    """One line per finding on stdout, compiler-style, so editors and pre-commit can jump to it."""
    for finding in report.findings:
        url = finding.url
        tail = f" ({url})" if url and url not in finding.message else ""
        click.echo(
            terminal_safe(
                f"{finding.where}: {finding.severity} [{finding.code}] {finding.field or '-'}: {finding.message}{tail}"
            )
        )


def _github(report: Report) -> None:
    """Annotations on stdout, where the runner reads workflow commands; report.md to the step summary."""
    for line in github.github_annotations(report):
        click.echo(line)
    try:
        github.append_step_summary(report)
    except OSError as exc:
        # The audit's verdict matters more than its summary: warn, keep the exit code.
        click.echo(f"auditor: warning: cannot append to $GITHUB_STEP_SUMMARY: {exc.strerror or exc}", err=True)


@cli.command()
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=DEFAULTS.db,
    show_default=True,
    help="SQLite database the run is stored in.",
)
@click.option("--run", "run_id", type=click.IntRange(min=1), default=None, help="Run id (default: the latest run).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=DEFAULTS.out,
    show_default=True,
    help="Directory the reports are written to.",
)
@_formats_option
def report(db: Path, run_id: int | None, out: Path, formats: str) -> None:
    """Re-render the reports of a stored run, offline: nothing is fetched."""
    try:
        chosen = parse_formats(formats)
        store = Store.open_existing(db)
        try:
            run_id = run_id if run_id is not None else store.latest_run_id()
            model = build_report(store, run_id)
        finally:
            store.close()
        written = write_reports(model, out, chosen)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"auditor: run {run_id}: wrote {', '.join(str(path) for path in written.values())}", err=True)


@cli.command()
@click.option(
    "--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True, help="SQLite database to list."
)
def runs(db: Path) -> None:
    """List the runs stored in a database, with their counts."""
    try:
        store = Store.open_existing(db)
        try:
            stored = store.runs()
            counts = store.finding_counts()
        finally:
            store.close()
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    if not stored:
        click.echo(f"auditor: {db} holds no runs yet", err=True)
        return
    header = ("run", "mode", "status", "started", "took", "documents", "references", "URLs", "errors", "warnings")
    rows: list[tuple[str, ...]] = [header]
    for run in stored:
        by_severity = counts.get(run.id or 0, Counter())
        duration = _seconds(run.started_at, run.finished_at)
        rows.append(
            (
                str(run.id),
                run.mode.value,
                run.status.value,
                run.started_at,
                f"{duration:.1f}s" if duration is not None else "-",
                str(run.documents or 0),
                str(run.references or 0),
                str(run.urls or 0),
                str(by_severity[Severity.ERROR]),
                str(by_severity[Severity.WARNING]),
            )
        )
    _print_table(rows, text_columns={1, 2, 3})


def _print_table(rows: list[tuple[str, ...]], *, text_columns: set[int]) -> None:
    """Columns padded to their widest cell: text left-aligned, numbers right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(width) if i in text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        click.echo(terminal_safe("  ".join(cells).rstrip()))


@cli.command()
@click.argument("url")
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True,
              help="SQLite database to read.")  # fmt: skip
@click.option("--limit", type=click.IntRange(1), default=30, show_default=True, help="Most recent runs shown.")
def history(url: str, db: Path, limit: int) -> None:
    """A URL's verdicts over time, newest run first: what each run found and how it knew."""
    try:
        normalized = normalize_url(url)
    except InvalidURL as exc:
        raise UsageProblem(f"{url!r} is not a URL auditor checks: {exc}") from exc
    try:
        store = Store.open_existing(db)
        try:
            entries = store.url_history(normalized, limit=limit)
            started = {run.id: run.started_at for run in store.runs()}
        finally:
            store.close()
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    if not entries:
        click.echo(f"auditor: {db} holds no check of {normalized}", err=True)
        return
    rows: list[tuple[str, ...]] = [("run", "started", "verdict", "checked at", "how")]
    for run_id, fetched_by, check in entries:
        code, reason = status_verdict(check.status, check.reason, ok=check.ok)
        if code is not None:
            verdict = f"{code}: {reason}"
        else:
            verdict = "ok" if reason == "ok" else f"ok: {reason}"  # an accepted status says which
        how = "revalidated (304)" if check.revalidated else "fetched"
        if fetched_by != run_id:
            how = f"reused from run {fetched_by}"
        rows.append((str(run_id), started.get(run_id) or "", verdict, check.checked_at, how))
    _print_table(rows, text_columns={1, 2, 3, 4})


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True,
              help="SQLite database to prune.")  # fmt: skip
@click.option("--keep", type=click.IntRange(1), default=None, help="Keep the N most recent runs.")
@click.option("--older-than", metavar="DURATION", default=None, help="Drop runs started longer ago than this (90d).")
def prune(db: Path, keep: int | None, older_than: str | None) -> None:
    """Drop old runs and whatever no kept run references, then VACUUM."""
    try:
        if (keep is None) == (older_than is None):
            raise ConfigError("prune: give exactly one of --keep N or --older-than DURATION")
        store = Store.open_existing(db)
        try:
            runs = store.runs()
            if keep is not None:
                kept = [run.id for run in runs[-keep:]]
            else:
                cutoff = datetime.now(UTC).timestamp() - parse_duration(older_than or "", what="--older-than")
                kept = [run.id for run in runs if datetime.fromisoformat(run.started_at).timestamp() >= cutoff]
            before = db.stat().st_size
            dropped = store.prune(run_id for run_id in kept if run_id is not None)
        finally:
            store.close()
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(
        f"auditor: dropped {dropped} run(s), kept {len(kept)}; {db} is {before:,} -> {db.stat().st_size:,} bytes",
        err=True,
    )


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def parse_formats(value: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in value.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"--format: unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}"
        )
    return formats


def build_config(paths: tuple[Path, ...], options: dict[str, Any]) -> Config:
    config_file = options.pop("config_file", None)
    overrides: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError(f"config file not found: {config_file}")
        overrides = load_config_file(config_file)
    elif DEFAULT_CONFIG_FILE.exists():
        overrides = load_config_file(DEFAULT_CONFIG_FILE)
    formats = parse_formats(options.pop("formats"))
    crawl_fields = {name: options.pop(name) for name in list(options) if hasattr(CRAWL_DEFAULTS, name)}
    if "hosts" in overrides:
        crawl_fields["hosts"] = overrides.pop("hosts")
    max_age = options.pop("max_age", None)
    return Config(
        paths=paths or DEFAULTS.paths,
        db=options.pop("db"),
        out=options.pop("out"),
        formats=formats,
        fail_on=FailOn(options.pop("fail_on")),
        crawl=CrawlConfig(**crawl_fields),
        max_age=None if max_age is None else parse_duration(max_age, what="--max-age"),
        dead_after=options.pop("dead_after", DEFAULTS.dead_after),
        flaky_window=options.pop("flaky_window", DEFAULTS.flaky_window),
        resume=options.pop("resume", False),
        **overrides,
    )


def main() -> None:
    cli(prog_name="auditor")
