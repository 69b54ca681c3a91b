"""The one-screen summaries the CLI prints, read from the published marts."""

from __future__ import annotations

import duckdb


def routing_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Accepted / duplicate / quarantined counts, with the quarantine broken down by reason."""
    files, raw, accepted, duplicate, quarantined = con.execute(
        """
        select
            count(*),
            coalesce(sum(raw_row_count), 0),
            coalesce(sum(accepted_count), 0),
            coalesce(sum(duplicate_count), 0),
            coalesce(sum(quarantined_count), 0)
        from fct_landed_files
        """
    ).fetchone()
    reasons = con.execute(
        "select reason, count(*) from fct_quarantined_events group by reason order by 2 desc, 1"
    ).fetchall()
    width = max(len(f"{raw:,}"), 9)
    lines = [
        f"Events from {files:,} landed files",
        f"  received     {raw:>{width},}",
        f"  accepted     {accepted:>{width},}",
        f"  duplicate    {duplicate:>{width},}",
        f"  quarantined  {quarantined:>{width},}",
    ]
    lines += [f"    {reason:<24} {count:>{width - 12},}" for reason, count in reasons]
    balanced = "yes" if raw == accepted + duplicate + quarantined else "NO"
    lines.append(f"  every event accounted for: {balanced}")
    return "\n".join(lines)
