"""`billing`: the one command-line entry point (architecture §10).

Every subcommand exits non-zero with a one-line reason on bad input and never shows a
traceback for a user error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from datetime import date
from pathlib import Path

from billing.settings import PROJECT_DIR, load_settings, quiet_environment

quiet_environment()


class UserError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def parse_month(text: str) -> date:
    """`YYYY-MM` to the first day of that month."""
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text!r}") from error


def positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from error
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def command_generate(args: argparse.Namespace) -> None:
    from billing.sample.generate import GenerateOptions, generate
    from billing.seeds import SeedsError

    settings = load_settings()
    options = GenerateOptions(
        events=args.events,
        customers=args.customers,
        months=args.months,
        first_month=args.first_month,
        seed=args.seed,
        spikes=args.spikes,
        control_totals=not args.no_control_totals,
        replace_accounts=args.replace_accounts,
    )
    started = time.perf_counter()
    try:
        record = generate(options, settings.landing_dir, settings.seeds_dir, args.record)
    except SeedsError as error:
        raise UserError(str(error)) from error
    elapsed = time.perf_counter() - started
    print(
        f"generated {record['raw_rows']:,} lines in {len(record['files'])} files "
        f"({record['accepted']:,} valid, {record['duplicate']:,} duplicate deliveries, "
        f"{record['quarantined']:,} bad) in {elapsed:.1f}s\n"
        f"  landing files: {settings.landing_dir}\n"
        f"  accounts:      {settings.seeds_dir / 'accounts'} (rate cards read, not written)\n"
        f"  record:        {args.record}"
    )


def command_ingest(args: argparse.Namespace) -> int:
    from billing.landing import IngestError, ingest_files

    settings = load_settings()
    paths = [Path(p) for p in args.paths] or [settings.landing_dir]
    started = time.perf_counter()
    try:
        result = ingest_files(
            settings.warehouse, paths, landing_dir=settings.landing_dir, show_progress=True
        )
    except IngestError as error:
        raise UserError(str(error)) from error
    elapsed = time.perf_counter() - started
    print(
        f"ingested {len(result.loaded_files)} new files ({result.loaded_rows:,} event rows, "
        f"{result.control_rows:,} control-total rows), "
        f"skipped {len(result.skipped_files)} already landed, "
        f"rejected {len(result.rejected_files)}, in {elapsed:.1f}s\n"
        f"  warehouse: {settings.warehouse}"
    )
    if not result.rejected_files:
        return 0
    from billing.alerts import raise_rejected_file_alerts

    raise_rejected_file_alerts(settings.warehouse, result)
    for name, reason in result.rejected_files:
        print(f"  rejected {name}: {reason}", file=sys.stderr)
    names = ", ".join(name for name, _ in result.rejected_files)
    print(
        f"billing ingest: {len(result.rejected_files)} file(s) not landed (fix and resend "
        f"them; see raw.rejected_files): {names}",
        file=sys.stderr,
    )
    return 1


def command_withdraw(args: argparse.Namespace) -> None:
    from billing.landing import IngestError, withdraw_file

    settings = load_settings()
    try:
        withdrawal = withdraw_file(
            settings.warehouse, args.file_name, args.reason, file_id=args.file_id
        )
    except IngestError as error:
        raise UserError(str(error)) from error
    print(
        f"withdrew {withdrawal.file_name} (file_id {withdrawal.file_id}, "
        f"{withdrawal.raw_row_count:,} rows): {withdrawal.reason}\n"
        "  its rows stay in raw and route to `withdrawn` from the next `billing build`\n"
        f"  warehouse: {settings.warehouse}"
    )


def command_void(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    import duckdb

    from billing.warehouse import lock
    from billing.warehouse.ledger import LedgerError, ensure_ledger_schema, void_invoices

    settings = load_settings()
    if not settings.warehouse.exists():
        raise UserError(f"no warehouse at {settings.warehouse}: nothing has been finalized")
    # A void writes the ledger: it waits for a running build as a build waits for it (D70).
    try:
        with lock.exclusive_run(settings.warehouse, "billing void"):
            try:
                con = lock.connect(settings.warehouse)
            except duckdb.Error as error:
                raise UserError(f"cannot open warehouse {settings.warehouse}: {error}") from error
            try:
                ensure_ledger_schema(con)
                voided = void_invoices(
                    con, args.invoices, args.reason, datetime.now(UTC).replace(tzinfo=None)
                )
            finally:
                con.close()
    except lock.WarehouseBusy as error:
        raise UserError(f"nothing was voided: {error}") from error
    except LedgerError as error:
        raise UserError(str(error)) from error
    for invoice in voided:
        print(invoice.describe())
    print(
        f"  reason: {' '.join(args.reason.split())}\n"
        "  the ledger keeps every voided row; the next `billing build` reissues each period "
        "with a new number, through every test and gate, and publishes it\n"
        f"  warehouse: {settings.warehouse}"
    )


def command_build(args: argparse.Namespace) -> None:
    from billing.warehouse.build import build, parse_as_of, phase_times
    from billing.warehouse.dbt import BuildError
    from billing.warehouse.publish import connect_published
    from billing.warehouse.summary import routing_summary

    settings = load_settings()
    try:
        as_of = parse_as_of(args.as_of)
        started = time.perf_counter()
        outcome = build(
            settings,
            as_of,
            select=args.select,
            verbose=args.verbose,
            full_refresh=args.full_refresh,
        )
        elapsed = time.perf_counter() - started
        if not outcome.published:
            print(
                f"\npartial build passed in {elapsed:.1f}s (as_of {as_of}): "
                f"{len(outcome.results)} nodes built and tested for --select {args.select}; "
                "nothing finalized, the published copy is unchanged\n"
                f"  warehouse: {settings.warehouse}"
            )
            return
        with connect_published(settings) as con:
            summary = routing_summary(con)
    except BuildError as error:
        raise UserError(str(error)) from error
    print(
        f"\nbuild passed in {elapsed:.1f}s (as_of {as_of}; {phase_times(outcome.seconds)})\n"
        f"{summary}\n"
        f"  {outcome.gates}\n"
        f"  {outcome.finalized.describe()}\n"
        f"  warehouse: {settings.warehouse}\n"
        f"  published: {settings.published_warehouse} (read-only copy; Parquet beside it)"
    )


def command_invoices(args: argparse.Namespace) -> None:
    from billing.warehouse.dbt import BuildError
    from billing.warehouse.publish import connect_published
    from billing.warehouse.summary import invoice_lines, invoice_tables

    settings = load_settings()
    period = args.period.strftime("%Y-%m") if args.period else None
    try:
        with connect_published(settings) as con:
            if args.invoice:
                text = invoice_lines(con, args.invoice.strip())
                if text is None:
                    raise UserError(
                        f"no invoice {args.invoice!r} in the published marts "
                        "(give an invoice_id or an invoice number such as INV-2026-09-000001)"
                    )
                print(text)
                return
            print(invoice_tables(con, period))
    except BuildError as error:
        raise UserError(str(error)) from error
    print(
        f"\nQuery the published marts (read-only) with DuckDB, e.g.:\n"
        f'  .venv/bin/python -c "import duckdb; print(duckdb.connect('
        f"'{settings.published_warehouse}', read_only=True).sql("
        f"'select * from fct_invoice_line_items limit 20'))\"\n"
        f"  Parquet copies for BI tools: {settings.published_dir / 'parquet'}"
    )


def parse_day(text: str) -> date:
    """`YYYY-MM-DD` to a date."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


def command_quality(args: argparse.Namespace) -> int:
    from billing.alerts import alerts_from_report, configured_sinks, raise_alerts
    from billing.quality import QualityError, data_range, run_quality
    from billing.rules.calendar import Window

    settings = load_settings()
    try:
        if args.day:
            scope = Window.day(args.day)
        elif args.period:
            scope = Window.period(args.period)
        else:
            scope = data_range(settings.warehouse)
        report = run_quality(settings.warehouse, scope)
    except QualityError as error:
        raise UserError(str(error)) from error
    print(report.describe())
    if not report.found_data:
        # Every suite passes over no rows; saying PASS would hide a wrong scope or a missed
        # build from a cron job.
        missing = ", ".join(f"no {result.looked_for}" for result in report.results)
        raise UserError(
            f"nothing to check for {scope.label}: {missing} (is the scope right, and built?)"
        )
    raised = raise_alerts(settings.warehouse, alerts_from_report(report))
    if raised.new or raised.repeated:
        sinks = ", ".join(configured_sinks(dict(os.environ))) or "no sinks configured"
        print(
            f"alerts: {len(raised.new)} new (sent to: {sinks}), "
            f"{len(raised.repeated)} raised before (not sent again); see `billing alerts`"
        )
    if not report.passed:
        failed = sorted({result.suite for result in report.results if not result.passed})
        print(f"quality gates failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"quality gates passed for {scope.label}")
    return 0


def command_backfill(args: argparse.Namespace) -> int:
    from billing.orchestration.backfill import BackfillError, backfill
    from billing.warehouse.build import parse_as_of
    from billing.warehouse.dbt import BuildError

    try:
        as_of = parse_as_of(args.as_of) if args.as_of else None
        failed = backfill(args.kind, args.first, args.last, as_of=as_of)
    except (BackfillError, BuildError) as error:
        raise UserError(str(error)) from error
    if failed:
        print(
            f"backfill stopped: {failed}; a run_failure alert was raised (see `billing alerts`)",
            file=sys.stderr,
        )
        return 1
    return 0


def command_alerts(args: argparse.Namespace) -> None:
    from billing.alerts import AlertStoreError, recent_alerts

    settings = load_settings()
    try:
        print(recent_alerts(settings.warehouse, args.limit))
    except AlertStoreError as error:
        raise UserError(str(error)) from error


def command_docs(args: argparse.Namespace) -> None:
    from billing.warehouse.dbt import BuildError
    from billing.warehouse.docs import docs_server, generate_docs

    settings = load_settings()
    try:
        page = generate_docs(settings)
    except BuildError as error:
        raise UserError(str(error)) from error
    print(f"dbt docs: {page} (one file: open it in a browser, no server needed)")
    if not args.serve:
        return
    try:
        server = docs_server(page.parent, args.port)
    except (OSError, OverflowError) as error:
        raise UserError(f"cannot serve the docs on 127.0.0.1:{args.port}: {error}") from error
    with server:
        print(f"serving on http://127.0.0.1:{server.server_address[1]}/  (Ctrl-C stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def command_invoice_pdf(args: argparse.Namespace) -> None:
    from billing.documents.invoice import DocumentError, load_document, load_seller
    from billing.documents.render import render_finalized, seller_file, write_document
    from billing.rules.calendar import Window
    from billing.warehouse.dbt import BuildError
    from billing.warehouse.publish import connect_published

    if sum((args.invoice is not None, args.period is not None, args.all)) != 1:
        raise UserError("give one INVOICE (an id or a number), --period YYYY-MM or --all")
    settings = load_settings()
    try:
        if args.invoice is not None:
            with connect_published(settings) as con:
                document = load_document(con, args.invoice.strip())
            rendered = [
                write_document(settings.invoice_documents_dir, document, load_seller(seller_file()))
            ]
        else:
            window = Window.period(args.period) if args.period else None
            rendered = render_finalized(settings, window)
            if not rendered:
                scope = f"for {args.period:%Y-%m} " if args.period else ""
                raise UserError(
                    f"no finalized invoices {scope}in the published marts (a draft is "
                    "rendered one at a time: billing invoice-pdf ID)"
                )
    except (BuildError, DocumentError) as error:
        raise UserError(str(error)) from error
    for each in rendered:
        print(each.describe())
    written = sum(each.outcome == "written" for each in rendered)
    kept = sum(each.outcome == "kept" for each in rendered)
    print(
        f"{len(rendered)} document(s): {written} written, {kept} kept as issued (a finalized "
        f"invoice's document is never rewritten), {len(rendered) - written - kept} draft "
        f"preview(s); the same files are under {settings.published_dir / 'invoices'}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="billing",
        description="Usage-based billing warehouse: events in, invoices out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        help="write realistic sample landing files and the demo's accounts",
        description="Write sample landing files (with injected mess), the demo's customers "
        "and subscriptions (seeds/accounts/) and a record of what was injected. The rate "
        "cards (seeds/rate_cards/) are read, never written. Deterministic for a given --seed.",
    )
    generate.add_argument(
        "--events",
        type=positive_int,
        default=1_000_000,
        help="about how many lines (default 1,000,000)",
    )
    generate.add_argument(
        "--customers", type=positive_int, default=50, help="number of customers (default 50)"
    )
    generate.add_argument(
        "--months", type=positive_int, default=2, help="calendar months of usage (default 2)"
    )
    generate.add_argument(
        "--first-month",
        type=parse_month,
        default=date(2026, 9, 1),
        help="first month, YYYY-MM (default 2026-09)",
    )
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument(
        "--spikes",
        type=int,
        default=0,
        help="customers who get one day of 10x their usual API calls (default 0)",
    )
    generate.add_argument(
        "--no-control-totals",
        action="store_true",
        help="do not write the producer's control-totals files",
    )
    generate.add_argument(
        "--replace-accounts",
        action="store_true",
        help="overwrite account seeds someone edited (refused without it)",
    )
    generate.add_argument(
        "--record",
        type=Path,
        default=PROJECT_DIR / "data" / "generator_record.json",
        help="where to write the record of injected events",
    )
    generate.set_defaults(handler=command_generate)

    ingest = commands.add_parser(
        "ingest",
        help="land event files verbatim in the warehouse (idempotent)",
        description="Copy *.jsonl, *.jsonl.gz and *.parquet files into the raw tables. "
        "Files already landed (same content) are skipped. Each file lands whole or not at "
        "all; a file that cannot be read is recorded in raw.rejected_files, the others "
        "land, and the exit status is 1.",
    )
    ingest.add_argument("paths", nargs="*", help="files or folders (default: $BILLING_LANDING_DIR)")
    ingest.set_defaults(handler=command_ingest)

    withdraw = commands.add_parser(
        "withdraw",
        help="retire a landed event file: its rows stop counting (never deleted)",
        description="Record a landed event file as withdrawn, with a reason. From the next "
        "build its rows route to `withdrawn`: they are kept in raw, not billed, and a later "
        "resend of the same events in another file is accepted. Refused when a finalized "
        "invoice may have billed the file's events (correct those with reversals).",
    )
    withdraw.add_argument("file_name", help="the file's name as landed (see fct_landed_files)")
    withdraw.add_argument("--reason", required=True, help="why it is withdrawn (kept with it)")
    withdraw.add_argument(
        "--file-id", type=positive_int, help="which one, when several landed files share the name"
    )
    withdraw.set_defaults(handler=command_withdraw)

    void = commands.add_parser(
        "void",
        help="void finalized invoices found wrong; the next build reissues them",
        description="Record finalized invoices as void, with a reason, in one transaction. "
        "Their ledger rows never change: they move from fct_invoices to fct_voided_invoices, "
        "the credit they spent is available again, and the next `billing build` reissues "
        "each period with a new invoice number (fix the rate card or seed first). A "
        "customer's invoices are voided newest first: refused while a later invoice of the "
        "same customer is still in force.",
    )
    void.add_argument(
        "invoices", nargs="+", help="invoice numbers (INV-YYYY-MM-NNNNNN) or invoice ids"
    )
    void.add_argument("--reason", required=True, help="why they are voided (kept in the ledger)")
    void.set_defaults(handler=command_void)

    build = commands.add_parser(
        "build",
        help="run the dbt build (seeds, models, tests) and publish the marts",
        description="Run `dbt build` with the run's as_of, then publish the marts as a "
        "read-only DuckDB copy and Parquet.",
    )
    build.add_argument("--as-of", help="the run's 'now', ISO 8601 (default: the current time)")
    build.add_argument("--select", help="a dbt selector, to build part of the project")
    build.add_argument(
        "--full-refresh",
        action="store_true",
        help="parse every landed file again (needed only after the parsing SQL changed)",
    )
    build.add_argument(
        "--verbose", action="store_true", help="show dbt's full log instead of a progress bar"
    )
    build.set_defaults(handler=command_build)

    invoices = commands.add_parser(
        "invoices",
        help="print invoices from the published marts",
        description="Print one table of invoices per billing period (customer, status, "
        "subtotal, discount, tax, credits, total, currency), or one invoice's lines, read "
        "from the last published build.",
    )
    which = invoices.add_mutually_exclusive_group()
    which.add_argument("--period", type=parse_month, help="only this period, YYYY-MM")
    which.add_argument(
        "--invoice",
        metavar="ID",
        help="print this invoice's lines (an invoice_id or an invoice number)",
    )
    invoices.set_defaults(handler=command_invoices)

    quality = commands.add_parser(
        "quality",
        help="run the Great Expectations gates and raise alerts",
        description="Run the quality gates (staged events, daily usage, reconciliation, "
        "invoices, usage tie-out) for a day, a period, or every day with data, list usage "
        "anomalies, and raise an alert for each failure. Exit status 1 when a gate fails, "
        "2 when the scope holds nothing to check.",
    )
    scope = quality.add_mutually_exclusive_group()
    scope.add_argument("--day", type=parse_day, help="one UTC day, YYYY-MM-DD")
    scope.add_argument("--period", type=parse_month, help="one billing period, YYYY-MM")
    quality.set_defaults(handler=command_quality)

    backfill = commands.add_parser(
        "backfill",
        help="run the Dagster daily or monthly job over a range of partitions",
        description="Run the orchestrated pipeline in this process, recorded in the Dagster "
        "instance ($DAGSTER_HOME, default .dagster/) so the UI shows it. daily: one run "
        "for the whole range of days; monthly: one run per month, in order, stopping at "
        "the first failure. Exit status 1 when a run fails (a gate included).",
    )
    backfill.add_argument("kind", choices=["daily", "monthly"])
    backfill.add_argument("first", help="first day (YYYY-MM-DD) or month (YYYY-MM)")
    backfill.add_argument("last", help="last day or month, inclusive")
    backfill.add_argument("--as-of", help="the runs' 'now', ISO 8601 (default: the current time)")
    backfill.set_defaults(handler=command_backfill)

    alerts = commands.add_parser(
        "alerts",
        help="list the alerts raised so far",
        description="Print the most recent alerts stored in the warehouse (ops.alerts): "
        "each with its whole summary, its details and where it was sent.",
    )
    alerts.add_argument("--limit", type=positive_int, default=20, help="how many (default 20)")
    alerts.set_defaults(handler=command_alerts)

    docs = commands.add_parser(
        "docs",
        help="write the dbt docs as one page (and serve it on 127.0.0.1)",
        description="Write the dbt docs (the overview, every model and column, the lineage, "
        "the exposures) as one self-contained page, data/docs/index.html, with the column "
        "types of the warehouse when it has been built; --serve serves it on 127.0.0.1.",
    )
    docs.add_argument("--serve", action="store_true", help="serve the page until Ctrl-C")
    docs.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    docs.set_defaults(handler=command_docs)

    invoice_pdf = commands.add_parser(
        "invoice-pdf",
        help="render invoices as PDF and HTML documents a customer can read",
        description="Render one invoice (an invoice_id or number), or every finalized "
        "invoice of --period (of every period: --all), as HTML and PDF under "
        "data/invoices/YYYY-MM/ (drafts under data/invoices/drafts/), also reachable as "
        "data/published/invoices/. A finalized invoice's document is written once and "
        "never replaced; a draft's is a preview, rewritten each time. "
        "The seller block is seller.toml (or BILLING_SELLER_FILE).",
    )
    invoice_pdf.add_argument("invoice", nargs="?", metavar="INVOICE", help="invoice id or number")
    invoice_pdf.add_argument(
        "--period", type=parse_month, help="every finalized invoice of this period, YYYY-MM"
    )
    invoice_pdf.add_argument(
        "--all", action="store_true", help="every finalized invoice of every period"
    )
    invoice_pdf.set_defaults(handler=command_invoice_pdf)
    return parser


def silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (`billing invoices | head`).

    Python's documented recipe: otherwise the interpreter's final flush of stdout raises
    BrokenPipeError again, as a traceback, after the command has finished.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.handler(args)
        sys.stdout.flush()
    except UserError as error:
        print(f"billing {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"billing {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped reading; nothing is wrong with the data, so no message.
        silence_stdout()
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
