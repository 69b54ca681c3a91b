"""The quality gates as asset checks, declared in dbt: a model's `meta.gates`.

Each gate names its Great Expectations suites and whether it blocks; the asset it checks
and its partitions (the folder's `meta.partition`) come from the model it is declared on,
so no model is named here.
"""

import json

import dagster as dg

from billing.alerts import alerts_from_report, raise_alerts
from billing.orchestration.partitions import window_of_run
from billing.orchestration.project import DBT_PROJECT, WAREHOUSE_POOL
from billing.orchestration.translator import TRANSLATOR
from billing.quality import run_quality
from billing.settings import load_settings


def quality_gate(
    name: str,
    asset: list[str],
    suites: tuple[str, ...],
    kind: str,
    blocking: bool = True,
    description: str | None = None,
):
    """A Great Expectations suite as an asset check; a failure raises its alert."""

    @dg.asset_check(
        asset=dg.AssetKey(asset),
        name=name,
        blocking=blocking,
        description=description
        or f"Great Expectations suite {', '.join(suites)} over the run's partition window.",
        pool=WAREHOUSE_POOL,
    )
    def _gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        settings = load_settings()
        window = window_of_run(context.run.tags, kind)
        report = run_quality(settings.warehouse, window, suites=suites)
        raised = raise_alerts(settings.warehouse, alerts_from_report(report))
        context.log.info(report.describe())
        passed = report.passed and not report.anomaly_count
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata={
                "scope": window.label,
                "report": dg.MetadataValue.md(f"```\n{report.describe()}\n```"),
                "alerts_new": len(raised.new),
                "alerts_repeated": len(raised.repeated),
            },
        )

    return _gate


def declared_gates(manifest: dict) -> list[dict]:
    """Every gate of the manifest: its name, suites, blocking, description, the asset key
    of the model it is declared on and that model's partition kind, sorted by name."""
    gates = []
    for node in manifest["nodes"].values():
        meta = node.get("config", {}).get("meta", {})
        for gate in meta.get("gates", []):
            gates.append(
                {
                    "name": gate["name"],
                    "suites": tuple(gate["suites"]),
                    "blocking": bool(gate.get("blocking", True)),
                    "description": gate.get("description"),
                    "asset": TRANSLATOR.get_asset_key(node).path,
                    "kind": meta["partition"],
                }
            )
    return sorted(gates, key=lambda gate: gate["name"])


GATES = [
    quality_gate(
        gate["name"],
        gate["asset"],
        gate["suites"],
        gate["kind"],
        blocking=gate["blocking"],
        description=gate["description"],
    )
    for gate in declared_gates(json.loads(DBT_PROJECT.manifest_path.read_text()))
]
