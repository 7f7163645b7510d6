"""The thin click layer: options -> Config -> pipeline -> exit code."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from auditor import __version__, pipeline, settings
from auditor.config import FAIL_ON, MAX_SHARDS, SERVE_EVERY, SERVE_HOST, SERVE_PORT, Config, CrawlConfig, parse_duration
from auditor.crawl import check_settings
from auditor.errors import AuditorError, ConfigError
from auditor.links import InvalidURL, normalize_url
from auditor.model import Severity
from auditor.progress import Progress, terminal_safe
from auditor.report import FORMATS, Report, build_report, github, write_reports
from auditor.report.model import describe_lookups
from auditor.rules import status_verdict
from auditor.runlock import LockHolder, WaitHook
from auditor.serve.schedule import parse_every
from auditor.store import Store

DEFAULTS = Config()
CRAWL_DEFAULTS = CrawlConfig()


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
        _out_option,
        _formats_option,
        click.option(
            "--fail-on",
            type=click.Choice(FAIL_ON),
            default=DEFAULTS.fail_on.value,
            show_default=True,
            help="Exit 1 when a finding reaches this severity.",
        ),
        _config_option,
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


def _config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Config file: YAML, or a TOML file's [tool.auditor] table (default: ./{settings.DEFAULT_FILE}, "
        f"else [tool.auditor] in ./{settings.PYPROJECT}).",
    )(command)


def _out_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=DEFAULTS.out,
        show_default=True,
        help="Directory the reports are written to.",
    )(command)


def _formats_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format",
        "format",
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
    "--processes",
    metavar="N|auto",
    default="auto",
    show_default=True,
    help="Processes the crawl runs in, the hosts split between them; --concurrency holds across them all. "
    "'auto': one per usable core (the CPU quota of a container counts), at most 4, from 2,000 URLs to fetch.",
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
    help="Statuses that count as OK besides 2xx, on every host: 403 or 200-299,403 "
    "(per host: `hosts:` in the config file). The real status is kept.",
)
@click.option(
    "--header",
    "headers",
    metavar="'NAME: VALUE'",
    multiple=True,
    help="Extra request header for every host; repeatable. ${NAME} in VALUE is read from the environment. "
    "Values never reach the database, the logs or the reports (in a config file: a mapping of name to value).",
)
@click.option(
    "--user-agent",
    metavar="TEXT",
    default=CRAWL_DEFAULTS.user_agent,
    show_default=True,
    help="User-Agent sent to every host.",
)
@click.option(
    "--proxy",
    metavar="URL",
    default=None,
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
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the last unfinished run, checking only what it had not (command line only).",
)
@click.option(
    "--include",
    metavar="REGEX",
    multiple=True,
    help="Check URLs matching this regex even if an --exclude matches; with no --exclude, check only these. "
    "Repeatable.",
)
@click.option(
    "--exclude",
    metavar="REGEX",
    multiple=True,
    help="Do not fetch URLs matching this regex (unless an --include matches): they are reported as excluded. "
    "Repeatable.",
)
@click.option(
    "--exclude-path",
    "exclude_paths",
    metavar="GLOB",
    multiple=True,
    help="Skip corpus files matching this .gitignore-style glob (drafts/, *.old.md). Repeatable.",
)
@click.option(
    "--remap",
    metavar="'REGEX REPLACEMENT'",
    multiple=True,
    help="Fetch a URL matching REGEX at the address re.sub makes of it (\\1 for a group); the first "
    "matching rule wins. Repeatable.",
)
@click.option(
    "--dump",
    is_flag=True,
    help="Print each unique URL after the filters and remaps, with its references, as JSON lines; "
    "fetch nothing, write nothing (command line only).",
)
@click.option(
    "--suggest/--no-suggest",
    default=DEFAULTS.suggest,
    show_default=True,
    help="Ask the Wayback Machine (archive.org) for an archived copy of each dead link and show it in the reports; "
    "answers are cached in the database (`archive:` in the config file tunes how).",
)
@click.option(
    "--soft-404/--no-soft-404",
    "soft_404",
    default=DEFAULTS.soft_404.probe,
    show_default=True,
    help="Probe each host with pages once for soft 404s (a path that cannot exist); with --no-soft-404, "
    "redirects and titles still count. `severity: {soft-404: off}` in the config file drops the finding.",
)
@click.option(
    "--shard",
    metavar="K/N|auto",
    default=None,
    help="Check only the URLs of the K-th of N host partitions (1/3, 2/3, 3/3), for `auditor merge` to join; "
    "'auto' takes K from the scheduler (JOB_COMPLETION_INDEX, CI_NODE_INDEX, SLURM_ARRAY_TASK_ID, ...).",
)
@click.option(
    "--shard-count",
    type=click.IntRange(1, MAX_SHARDS),
    default=None,
    help="N for --shard auto, when the scheduler does not say it (a Kubernetes Indexed Job's completions).",
)
def audit(**options: Any) -> None:
    """Check every link in the corpus (default: seeds/) and write reports."""
    resolved = _resolve()
    if options["dump"]:
        _dump(resolved, resume=options["resume"])
    quiet, verbose = _quiet_verbose(resolved)
    progress = Progress.for_stream(quiet=quiet, verbose=verbose)

    def run(config: Config, wait: WaitHook | None) -> pipeline.Outcome:
        try:
            # A header variable that is not set, or a CA bundle that is no bundle: exit 2 before a run begins.
            check_settings(config.crawl)
            return pipeline.audit(config, progress=None if progress.silent else progress, wait=wait)
        finally:
            progress.close()

    _exit(run, resolved, resume=options["resume"])


@cli.command()
@_common_options
def lint(**_options: Any) -> None:
    """Run only the offline metadata rules: no network, fast enough for pre-commit."""
    _exit(lambda config, wait: pipeline.lint(config, wait=wait), _resolve())


def _dump(resolved: settings.Resolved, *, resume: bool) -> None:
    """Print the URLs and stop: nothing is run, printed or waited for but the lines."""
    try:
        if resume:
            raise ConfigError("--dump lists what an audit would fetch; it cannot --resume one")
        pipeline.dump(resolved.config(), click.echo)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("auditor: interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


# The same audit options as `audit`, taken from it, so the two cannot drift apart; --resume and --dump act on
# one audit, which is `auditor audit`'s job, not a service's; so are shards, which `auditor merge` joins.
SERVE_SKIPS = ("resume", "dump", "shard", "shard_count")


@cli.command(params=[param for param in audit.params if param.name not in SERVE_SKIPS])
@click.option(
    "--every",
    default=SERVE_EVERY,
    show_default=True,
    help="Audit at start, then at this interval: a whole number and a unit, s, m, h or d (30m, 6h, 2d).",
)
@click.option("--host", default=SERVE_HOST, show_default=True, help="Address to listen on (loopback by default).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=SERVE_PORT,
    show_default=True,
    help="Port to listen on (0: any free one).",
)
def serve(**_options: Any) -> None:
    """Audit on a schedule and serve the reports, a JSON API, /healthz and /metrics over HTTP (read-only).

    SIGTERM or SIGINT stops the audit under way at its next safe point, then the service: exit 0.
    """
    from auditor.serve import service  # the ASGI stack is loaded for `serve` only

    # annotations: a service prints none; wait: a tick that finds the database in use is logged, the next tries again.
    resolved = _resolve()
    quiet, verbose = _quiet_verbose(resolved)
    try:
        config = resolved.config()
        check_settings(config.crawl)
        every = parse_every(resolved.settings.every)
        code = service.serve(
            config, every=every, host=resolved.settings.host, port=resolved.settings.port, quiet=quiet, verbose=verbose
        )
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    sys.exit(code)


def _resolve() -> settings.Resolved:
    """This command's options as set: command line > AUDITOR_<OPTION> > config file > default."""
    ctx = click.get_current_context()
    given: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for param in ctx.command.params:
        key = option_key(param)
        if key not in settings.Settings.model_fields or param.name is None:
            continue
        flags[key] = _flag(param)
        if ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            given[key] = ctx.params[param.name]
    try:
        return settings.resolve(
            command_line=given, flags=flags, environ=os.environ, config_file=ctx.params.get("config_file")
        )
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc


def option_key(param: click.Parameter) -> str:
    """The config key of an option or argument: its parameter name, which is the long option name with
    underscores (--per-host: per_host) unless the option names it (--header: headers)."""
    return param.name or ""


def _flag(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.human_readable_name


def _quiet_verbose(resolved: settings.Resolved) -> tuple[bool, bool]:
    """Both set: the one from the stronger source wins (`-v` over a file's `quiet: true`); from one source, an error."""
    quiet, verbose = resolved.settings.quiet, resolved.settings.verbose
    if quiet and verbose:
        quiet_rank, verbose_rank = resolved.source("quiet").rank, resolved.source("verbose").rank
        if quiet_rank == verbose_rank:
            where = resolved.source("quiet").where
            raise UsageProblem(f"--quiet and --verbose contradict each other ({where}); pick one")
        return quiet_rank > verbose_rank, verbose_rank > quiet_rank
    return quiet, verbose


def _exit(
    run: Callable[[Config, WaitHook | None], pipeline.Outcome], resolved: settings.Resolved, *, resume: bool = False
) -> None:
    quiet, _verbose = _quiet_verbose(resolved)
    try:
        annotate = github.resolve_mode(resolved.settings.annotations)
        config = resolved.config(resume=resume)
        outcome = run(config, _say_waiting(config.db, quiet) if resolved.settings.wait else None)
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
        if summary.archive is not None:
            click.echo(terminal_safe(f"auditor: {describe_lookups(summary.archive)}"), err=True)
        status = " (interrupted)" if outcome.interrupted else ""
        excluded = f" ({summary.excluded} excluded)" if summary.excluded else ""
        click.echo(
            f"auditor: run {outcome.run_id}{status}: {summary.documents} documents, {summary.urls} URLs{excluded}, "
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
        if finding.archived_copy is not None:
            tail += f"; archived copy: {finding.archived_copy}"
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
@click.argument("shard_dbs", metavar="SHARD.sqlite...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=DEFAULTS.db,
    show_default=True,
    help="SQLite database the merged run is added to (it may hold earlier runs; later runs compare against it).",
)
@_out_option
@_formats_option
@_config_option
@click.option(
    "--annotations",
    type=click.Choice(github.MODES),
    default=None,
    help="Print findings as CI annotations, as `audit` does.",
)
@click.option("--wait", is_flag=True, help="When another run is writing --db, wait for it to finish.")
@click.option("--quiet", "-q", is_flag=True, help="No summary line; errors only.")
def merge(shard_dbs: tuple[Path, ...], **_options: Any) -> None:
    """Join the shard databases of one `audit --shard K/N` into one run: judge it whole, write its reports.

    The shards' own config decides severities and --fail-on; the exit code is as for `audit`.
    """
    from auditor import merge as merging

    _exit(lambda config, wait: merging.merge(shard_dbs, config, wait=wait), _resolve())


@cli.command()
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=DEFAULTS.db,
    show_default=True,
    help="SQLite database the run is stored in.",
)
@click.option("--run", "run_id", type=click.IntRange(min=1), default=None, help="Run id (default: the latest run).")
@_out_option
@_formats_option
@_config_option
def report(run_id: int | None, **_options: Any) -> None:
    """Re-render the reports of a stored run, offline: nothing is fetched."""
    resolved = _resolve().settings
    db = resolved.db
    try:
        store = Store.open_existing(db)
        try:
            run_id = run_id if run_id is not None else store.latest_run_id()
            model = build_report(store, run_id)
        finally:
            store.close()
        written = write_reports(model, resolved.out, resolved.format)
    except AuditorError as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"auditor: run {run_id}: wrote {', '.join(str(path) for path in written.values())}", err=True)


@cli.command()
@click.option(
    "--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True, help="SQLite database to list."
)
@_config_option
def runs(**_options: Any) -> None:
    """List the runs stored in a database, with their counts."""
    db = _resolve().settings.db
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
@_config_option
def history(url: str, limit: int, **_options: Any) -> None:
    """A URL's verdicts over time, newest run first: what each run found and how it knew."""
    db = _resolve().settings.db
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
        # `prune` keeps the checks a kept run uses, also when the run that fetched them is gone.
        earlier = f"run {fetched_by}" + ("" if fetched_by in started else " (pruned)")
        if check.excluded:
            verdict = f"excluded: {check.message or 'by --exclude'}"
            how = "not fetched" if fetched_by == run_id else f"not fetched (excluded as in {earlier})"
        else:
            how = "revalidated (304)" if check.revalidated else "fetched"
            if check.fetched_url:
                how += f" as {check.fetched_url}"
            if fetched_by != run_id:
                how = f"reused from {earlier}"
        rows.append((str(run_id), started.get(run_id) or "", verdict, check.checked_at, how))
    _print_table(rows, text_columns={1, 2, 3, 4})


@cli.command()
@click.option("--db", type=click.Path(path_type=Path), default=DEFAULTS.db, show_default=True,
              help="SQLite database to prune.")  # fmt: skip
@click.option("--keep", type=click.IntRange(1), default=None, help="Keep the N most recent runs.")
@click.option("--older-than", metavar="DURATION", default=None, help="Drop runs started longer ago than this (90d).")
@_config_option
def prune(keep: int | None, older_than: str | None, **_options: Any) -> None:
    """Drop old runs and whatever no kept run references, then VACUUM."""
    db = _resolve().settings.db
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


# Every option of audit and serve, so that the whole configuration shows.
@cli.command("config", params=list(serve.params))
@click.option(
    "--reference",
    is_flag=True,
    help="Print the Markdown reference of every option (the README's table) instead.",
)
def config_(reference: bool, **_options: Any) -> None:
    """Print the effective configuration and where each value came from: default, file:line, variable, command line.

    The output is itself a valid auditor.yaml. Command-line options given here count as for `audit`.
    """
    if reference:
        click.echo(options_reference())
        return
    resolved = _resolve()
    if resolved.file is not None:
        found = f"{resolved.file}"
    else:
        found = f"none (no ./{settings.DEFAULT_FILE}, no [tool.auditor] in ./{settings.PYPROJECT})"
    click.echo(f"# Effective configuration: command line > {settings.ENV_PREFIX}* variables > config file > default.")
    click.echo(terminal_safe(f"# Config file: {found}"))
    if resolved.ignored:
        click.echo(terminal_safe(f"# Ignored, naming no setting: {', '.join(resolved.ignored)}"))
    for line in resolved.describe().splitlines():
        click.echo(terminal_safe(line))


# The commands whose options the reference lists, in this order; `config` (which takes serve's options to
# show what they would be) adds only its own.
REFERENCE_COMMANDS = ("audit", "lint", "serve", "merge", "report", "runs", "history", "prune")


def options_reference() -> str:
    """One Markdown row per option of every command, from the commands' own params and the settings model.

    The README carries this table between its `options` markers, and a test compares the two.
    """
    rows: dict[str, list[str]] = {}
    used_by: dict[str, list[str]] = {}
    defaults = settings.defaults()
    for name in (*REFERENCE_COMMANDS, "config"):
        command = cli.commands[name]
        for param in command.params:
            key = option_key(param)
            if not isinstance(param, click.Option) and key not in defaults:
                continue  # an argument that is no setting (history's URL): in the command's usage
            if key in rows and name == "config":
                continue
            used_by.setdefault(key, []).append(name)
            if key in rows:
                continue
            if isinstance(param, click.Option):
                spellings = [*sorted(param.opts, key=len, reverse=True), *param.secondary_opts]
                option = ", ".join(f"`{opt}`" for opt in spellings)
            else:
                option = f"`{param.human_readable_name} ...`"
            if key in defaults:
                setting, variable, default = f"`{key}`", f"`{settings.env_name(key)}`", _cell_default(defaults[key])
            elif param.name == "config_file":
                setting, variable, default = "—", f"`{settings.CONFIG_ENV}`", "—"
            else:
                setting, variable, default = "—", "—", _cell_default(_click_default(param))
            help_text = getattr(param, "help", None) or "The files and directories to audit."
            rows[key] = [option, setting, variable, default, "", help_text]
    for key in settings.FILE_ONLY:
        description = settings.Settings.model_fields[key].description or ""
        default = "each entry's own" if defaults[key] else "—"
        rows[key] = ["—", f"`{key}`", "—", default, "(file only)", f"A mapping: {description}."]
    lines = [
        "| option | config key | variable | default | commands | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for key, cells in rows.items():
        if key in used_by:
            cells[4] = ", ".join(used_by[key]) if len(used_by[key]) < len(REFERENCE_COMMANDS) else "all"
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _click_default(param: click.Parameter) -> object:
    default = param.default
    return None if default is None or callable(default) or not isinstance(default, str | int | float) else default


def _cell_default(value: object) -> str:
    if value is None or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, list):
        return "`" + ",".join(str(item) for item in value) + "`"
    return f"`{value}`"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def main() -> None:
    cli(prog_name="auditor")
