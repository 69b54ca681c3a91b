"""The dbt docs as one page a reader opens without dbt: the overview, every model and column,
the lineage and the exposures (`billing docs`, `make docs`).

dbt writes `static_index.html` with the manifest and catalog inside it; that file is copied
to `data/docs/index.html` (beside the warehouse, outside the published copy a publish swaps)
and, when asked, served on 127.0.0.1 with a content security policy that lets the page
reach nothing but itself.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from billing.settings import Settings, dbt_target_dir
from billing.warehouse.dbt import BuildError, run_dbt

# The page may run its own inline scripts (dbt's bundle) and nothing from elsewhere: dbt's
# page tracker loads a script from a CDN when the manifest allows usage stats, and this
# header blocks it even then.
CONTENT_SECURITY_POLICY = (
    "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; connect-src 'self'"
)


def docs_dir(settings: Settings) -> Path:
    return settings.warehouse.parent / "docs"


def generate_docs(settings: Settings) -> Path:
    """Write the docs page and return it. Column types come from the warehouse (the catalog);
    before the first build there is none, so the page is made from an empty catalog instead
    of creating an empty warehouse file as a side effect."""
    if settings.warehouse.exists():
        run_dbt(["docs", "generate", "--no-compile", "--static"], settings, verbose=False)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            empty = replace(settings, warehouse=Path(scratch) / "docs.duckdb")
            run_dbt(
                ["docs", "generate", "--no-compile", "--static", "--empty-catalog"],
                empty,
                verbose=False,
            )
    manifest = json.loads((dbt_target_dir() / "manifest.json").read_text())
    if manifest["metadata"].get("send_anonymous_usage_stats"):
        raise BuildError("dbt usage stats are on: set DBT_SEND_ANONYMOUS_USAGE_STATS=false")
    page = docs_dir(settings) / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dbt_target_dir() / "static_index.html", page)
    return page


class DocsHandler(SimpleHTTPRequestHandler):
    """Static files with the content security policy, and no log line per request."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        return


def docs_server(directory: Path, port: int) -> ThreadingHTTPServer:
    """A server for `directory` on 127.0.0.1 only (port 0: any free port)."""
    handler = functools.partial(DocsHandler, directory=str(directory))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
