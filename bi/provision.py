"""Set up and serve Superset over the published marts, everything from files in the repo.

Runs in Superset's own virtualenv (`.venv-bi`, from bi/requirements.lock), so it imports
nothing of the project. `provision` creates Superset's metadata database under
`data/bi/`, the admin user (BILLING_BI_ADMIN / BILLING_BI_PASSWORD), and imports the bundle
built from bi/dashboards.yml; `serve` provisions, then serves on 127.0.0.1 only.
Provisioning again updates the dashboards in place (DECISIONLOG D81).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

BI_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BI_DIR.parent
NAMESPACE = uuid.UUID("6f1f4d3e-2b1c-4c51-9a55-7d3f0c2a9b10")
DATABASE_NAME = "Published marts"
TIMESTAMP = "2026-01-01T00:00:00+00:00"
DEFAULT_ADMIN = "admin"
DEFAULT_PASSWORD = "admin"  # local only: the server listens on 127.0.0.1


def stable_uuid(kind: str, name: str) -> str:
    """The same id for the same object on every import, so a re-import updates it."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def metric_names(chart: dict) -> list[str]:
    return list(chart.get("metrics", []))


def ordering(column: str) -> list:
    """`name` sorts ascending, `-name` descending: Superset's [column, ascending] pair."""
    return [column.removeprefix("-"), not column.startswith("-")]


def chart_params(chart: dict, money: set[str], money_format: str) -> dict:
    """A chart's form data, as Superset's explore view would save it."""
    where = chart.get("where")
    filters = (
        [
            {
                "expressionType": "SQL",
                "clause": "WHERE",
                "sqlExpression": where,
                "subject": None,
                "operator": None,
                "comparator": None,
            }
        ]
        if where
        else []
    )
    shown = [*chart.get("columns", []), *chart.get("metrics", [])]
    params: dict = {
        "viz_type": chart["viz"],
        "adhoc_filters": filters,
        "row_limit": chart.get("row_limit", 10000),
        "show_cell_bars": False,
        "column_config": {
            name: {"d3NumberFormat": money_format} for name in shown if name in money
        },
    }
    if chart["viz"] == "pie":
        params |= {
            "groupby": chart["groupby"],
            "metric": chart["metrics"][0],
            "show_legend": True,
            "show_labels": True,
            "label_type": "key_value",
            "sort_by_metric": True,
        }
    elif "columns" in chart:
        params |= {
            "query_mode": "raw",
            "all_columns": chart["columns"],
            "order_by_cols": [json.dumps(ordering(column)) for column in chart.get("order", [])],
            "include_search": True,
            "server_page_length": 25,
            # Issue and due dates are days: no midnight after them.
            "table_timestamp_format": "%Y-%m-%d",
        }
    else:
        params |= {
            "query_mode": "aggregate",
            "groupby": chart["groupby"],
            "metrics": metric_names(chart),
            "percent_metrics": [],
            "include_search": True,
            "order_desc": True,
            "server_page_length": 25,
            "table_timestamp_format": "smart_date",
        }
    return params


def chart_query(chart: dict) -> dict:
    """The query behind a chart (its saved query context): what the test asks for."""
    if "columns" in chart:
        columns, metrics = chart["columns"], []
        orderby = [ordering(column) for column in chart.get("order", [])]
    else:
        columns, metrics = chart["groupby"], metric_names(chart)
        if "order_by_metric" in chart:
            orderby = [[chart["order_by_metric"], False]]
        else:
            orderby = [ordering(column) for column in chart.get("order", [])]
    where = chart.get("where")
    return {
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "filters": [],
        "extras": {"where": f"({where})" if where else "", "having": ""},
        "row_limit": chart.get("row_limit", 10000),
        "series_limit": 0,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }


def dashboard_position(title: str, rows: list[list[str]], charts: dict) -> dict:
    """The dashboard's grid: one row per line of `rows`, its charts sharing the width."""
    position: dict = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": title}},
    }
    chart_ids = {name: number for number, name in enumerate(charts, start=1)}
    for number, row in enumerate(rows, start=1):
        row_id = f"ROW-{number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for name in row:
            chart_id = f"CHART-{name}"
            position[row_id]["children"].append(chart_id)
            position[chart_id] = {
                "type": "CHART",
                "id": chart_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "width": 12 // len(row),
                    "height": charts[name].get("height", 50),
                    "uuid": stable_uuid("chart", name),
                    # Any id: the import replaces it with the imported chart's.
                    "chartId": chart_ids[name],
                    "sliceName": charts[name]["title"],
                },
            }
    return position


def dataset_columns(marts: Path, sql: str) -> list[dict]:
    """The dataset's columns and types, read from the marts (Superset's import takes a
    virtual dataset's columns from the bundle; without them no chart can name one)."""
    import duckdb

    with duckdb.connect(str(marts), read_only=True) as con:
        described = con.execute(f"describe {sql}").fetchall()
    return [
        {
            "column_name": name,
            "type": data_type,
            "is_dttm": data_type in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
            "groupby": True,
            "filterable": True,
            "is_active": True,
        }
        for name, data_type, *_ in described
    ]


def bundle(spec: dict, marts: Path) -> dict[str, dict]:
    """The Superset import bundle (YAML files by path) for bi/dashboards.yml."""
    database_uuid = stable_uuid("database", DATABASE_NAME)
    money = set(spec["money"])
    files: dict[str, dict] = {
        "databases/published_marts.yaml": {
            "database_name": DATABASE_NAME,
            "sqlalchemy_uri": f"duckdb:///{marts.as_posix()}?access_mode=read_only",
            "expose_in_sqllab": True,
            "allow_run_async": False,
            "allow_ctas": False,
            "allow_cvas": False,
            "allow_dml": False,
            "allow_file_upload": False,
            "extra": {"allows_virtual_table_explore": True},
            "uuid": database_uuid,
            "version": "1.0.0",
        },
    }
    for name, dataset in spec["datasets"].items():
        files[f"datasets/published_marts/{name}.yaml"] = {
            "table_name": name,
            "schema": "main",
            "sql": dataset["sql"],
            "metrics": [
                {
                    "metric_name": metric,
                    "expression": expression,
                    "metric_type": None,
                    "d3format": spec["money_format"] if metric in money else None,
                }
                for metric, expression in dataset["metrics"].items()
            ],
            "columns": dataset_columns(marts, dataset["sql"]),
            "uuid": stable_uuid("dataset", name),
            "version": "1.0.0",
            "database_uuid": database_uuid,
            "filter_select_enabled": True,
            "offset": 0,
        }
    for name, chart in spec["charts"].items():
        params = chart_params(chart, money, spec["money_format"])
        files[f"charts/{name}.yaml"] = {
            "slice_name": chart["title"],
            "viz_type": chart["viz"],
            "params": params,
            "query_context": json.dumps(
                {
                    "datasource": {"id": 0, "type": "table"},
                    "force": False,
                    "queries": [chart_query(chart)],
                    "form_data": params,
                    "result_format": "json",
                    "result_type": "full",
                }
            ),
            "cache_timeout": None,
            "uuid": stable_uuid("chart", name),
            "version": "1.0.0",
            "dataset_uuid": stable_uuid("dataset", chart["dataset"]),
        }
    for name, dashboard in spec["dashboards"].items():
        files[f"dashboards/{name}.yaml"] = {
            "dashboard_title": dashboard["title"],
            "slug": name,
            "uuid": stable_uuid("dashboard", name),
            "position": dashboard_position(dashboard["title"], dashboard["rows"], spec["charts"]),
            "metadata": {"refresh_frequency": 0, "color_scheme": "supersetColors"},
            "published": True,
            "version": "1.0.0",
        }
    return files


# What each import command's bundle declares itself to be (Superset checks it).
IMPORT_TYPES = (("datasets", "SqlaTable"), ("charts", "Slice"), ("dashboards", "Dashboard"))


def import_bundle(files: dict[str, dict], admin: str) -> None:
    """Import datasets, then charts, then dashboards, each overwriting what an earlier
    provisioning made. `superset import-dashboards` keeps an existing dataset or chart as
    it is, so an edit of bi/dashboards.yml would never show; the import commands are run
    here, in Superset's app context, as the admin."""
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.chart.importers.v1 import ImportChartsCommand
        from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
        from superset.commands.dataset.importers.v1 import ImportDatasetsCommand
        from superset.utils.core import override_user

        commands = {
            "datasets": ImportDatasetsCommand,
            "charts": ImportChartsCommand,
            "dashboards": ImportDashboardsCommand,
        }
        texts = {
            path: yaml.safe_dump(content, sort_keys=False)
            for path, content in files.items()
            if path != "metadata.yaml"
        }
        with override_user(security_manager.find_user(username=admin)):
            for kind, model in IMPORT_TYPES:
                metadata = {"version": "1.0.0", "type": model, "timestamp": TIMESTAMP}
                contents = {"metadata.yaml": yaml.safe_dump(metadata), **texts}
                commands[kind](contents, overwrite=True).run()


def superset(*args: str) -> None:
    """One `superset` command of this virtualenv; its failure stops provisioning."""
    command = [str(Path(sys.executable).with_name("superset")), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"make bi: `superset {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")


def provision(home: Path, marts: Path) -> None:
    """Superset's metadata, its admin and the dashboards, from the files in bi/."""
    if not marts.exists():
        sys.exit(
            f"make bi: no published marts at {marts}: run `make demo` (or `billing build`) first"
        )
    home.mkdir(parents=True, exist_ok=True)
    superset("db", "upgrade")
    admin = os.environ.get("BILLING_BI_ADMIN", DEFAULT_ADMIN)
    password = os.environ.get("BILLING_BI_PASSWORD", DEFAULT_PASSWORD)
    superset(
        "fab", "create-admin", "--username", admin, "--firstname", "Finance",
        "--lastname", "Admin", "--email", f"{admin}@localhost", "--password", password,
    )  # fmt: skip
    superset("init")
    spec = yaml.safe_load((BI_DIR / "dashboards.yml").read_text(encoding="utf-8"))
    import_bundle(bundle(spec, marts), admin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("provision", "serve"))
    parser.add_argument("--marts", type=Path, required=True, help="the published marts.duckdb")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args()
    home = Path(os.environ["BILLING_BI_HOME"])
    # The pointer itself, never what it points at now: each build publishes a new version
    # and moves `published`, and Superset opens the file anew for every query.
    marts = args.marts.absolute()
    provision(home, marts)
    if args.action == "serve":
        print(f"Superset: http://127.0.0.1:{args.port}/dashboard/finance/  (Ctrl-C stops it)")
        os.environ.setdefault("BILLING_BI_INVOICES", str(marts.parent / "invoices"))
        os.execv(
            str(Path(sys.executable).with_name("superset")),
            ["superset", "run", "-h", "127.0.0.1", "-p", str(args.port), "--with-threads"],
        )


if __name__ == "__main__":
    main()
