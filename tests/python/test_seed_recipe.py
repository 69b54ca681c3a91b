"""The README's recipe "Adding a meter and a plan with seeds alone", run exactly as written.

The rows, the test events and the commands are read from the README itself, so the recipe
cannot drift from what works: a new meter, plan, charges, tiers, a customer and a
subscription are appended to a copy of seeds/, the events land, and September bills
122.00 (99.00 base fee + 5 paid A100 hours x 4.00 + 2 other GPU hours x 1.50).
"""

from __future__ import annotations

import re
import shlex
import shutil
from decimal import Decimal as D

import pytest
from conftest import query

from billing import cli
from billing.settings import DEFAULT_SEEDS_DIR, PROJECT_DIR

RECIPE_TITLE = "### Adding a meter and a plan with seeds alone"


def recipe() -> str:
    readme = (PROJECT_DIR / "README.md").read_text()
    start = readme.index(RECIPE_TITLE)
    return readme[start : readme.index("\n## ", start)]


def code_block(text: str, language: str) -> str:
    [block] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    return block


def seed_rows(block: str) -> dict[str, list[str]]:
    """`# seeds/<path>  (comment)` lines name the file the rows under them go to."""
    rows: dict[str, list[str]] = {}
    current = None
    for line in block.splitlines():
        if line.startswith("# seeds/"):
            current = line.removeprefix("# seeds/").split()[0]
            rows[current] = []
        elif line.strip():
            rows[current].append(line)
    return rows


def shell_steps(block: str) -> tuple[dict[str, str], list[list[str]]]:
    """The files the shell block writes (`cat > FILE <<'EOF'`) and its `billing` commands."""
    files = {
        path: body
        for path, body in re.findall(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF\n", block, re.DOTALL)
    }
    commands = [
        shlex.split(line)[1:]
        for line in block.splitlines()
        if line.startswith(".venv/bin/billing ")
    ]
    return files, commands


@pytest.fixture(scope="module")
def recipe_run(workspace):
    text = recipe()
    shutil.copytree(DEFAULT_SEEDS_DIR, workspace.seeds_dir, dirs_exist_ok=True)
    for relative, rows in seed_rows(code_block(text, "csv")).items():
        path = workspace.seeds_dir / relative
        assert path.exists(), f"the recipe names {relative}, which seeds/ does not have"
        path.write_text(path.read_text() + "\n".join(rows) + "\n")
    files, commands = shell_steps(code_block(text, "sh"))
    # The recipe's data/landing/ is this scenario's landing folder.
    for path, body in files.items():
        target = workspace.landing_dir / path.removeprefix("data/landing/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body + "\n")
    statuses = []
    for command in commands:
        arguments = [
            str(workspace.landing_dir / a.removeprefix("data/landing/"))
            if a.startswith("data/landing/")
            else a
            for a in command
        ]
        statuses.append((command[0], cli.main(arguments)))
    return {"commands": [c[0] for c in commands], "statuses": statuses}


def test_the_recipe_runs_every_command_and_each_passes(recipe_run):
    assert recipe_run["commands"] == ["ingest", "build", "invoices"]
    assert recipe_run["statuses"] == [("ingest", 0), ("build", 0), ("invoices", 0)]


def test_the_new_plan_bills_what_the_recipe_says(recipe_run, workspace):
    [invoice] = query(
        workspace.published_warehouse,
        "select status, subtotal_amount, tax_amount, total_amount from fct_invoices "
        "where customer_id = 'gpu_cust' and billing_period_start = '2026-09-01'",
    )
    assert invoice == ("finalized", D("122.00"), D("0.00"), D("122.00"))
    lines = query(
        workspace.published_warehouse,
        "select line_type, charge_id, tier, quantity, amount from fct_invoice_line_items "
        "where customer_id = 'gpu_cust' and billing_period_start = '2026-09-01' "
        "order by line_order, charge_id, tier",
    )
    assert lines == [
        ("base_fee", None, None, D("1"), D("99.00")),
        ("usage", "gpu_a100", 1, D("10"), D("0.00")),
        ("usage", "gpu_a100", 2, D("5"), D("20.00")),
        ("usage", "gpu_other", None, D("2"), D("3.00")),
    ]
    assert query(
        workspace.published_warehouse,
        "select event_id, reason from fct_quarantined_events where customer_id = 'gpu_cust'",
    ) == [("gpu-5", "missing_value")]
