"""How a dbt node becomes a Dagster asset: keys by schema, groups by area folder."""

import dagster as dg
from dagster_dbt import DagsterDbtTranslator


class BillingTranslator(DagsterDbtTranslator):
    """Asset keys from each dbt node's schema and groups from its folder, never from its
    name: the groups are the areas of the two pipelines (metering, billing, ledger,
    landing, usage, reconciliation, invoicing)."""

    def get_asset_key(self, dbt_resource_props) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([layer_of(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props) -> str:
        if dbt_resource_props["resource_type"] == "source":
            return dbt_resource_props["source_name"]
        return area_of(dbt_resource_props)


def layer_of(dbt_resource_props) -> str:
    """The node's schema (staging, intermediate, marts, ledger, reference, audit)."""
    return dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]


def area_of(dbt_resource_props) -> str:
    """The model's area folder (models/marts/invoicing -> invoicing), else its schema.

    The check views are one group whatever their cadence folder: what the gates read.
    """
    fqn = dbt_resource_props.get("fqn", [])
    if dbt_resource_props["resource_type"] == "model" and len(fqn) > 3 and fqn[1] != "checks":
        return fqn[2]
    return layer_of(dbt_resource_props)


TRANSLATOR = BillingTranslator()
