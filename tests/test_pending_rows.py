"""Pure, no server: an action whose owed rows cannot be recorded does not run."""

from __future__ import annotations

from pathlib import Path

from reconciler.actions import AddTable
from reconciler.apply.executor import ApplyOptions, _record_owed
from reconciler.apply.rows import owed
from reconciler.load import load_desired_state
from reconciler.model import SetTable

REPO = Path(__file__).resolve().parent.parent


def test_an_action_whose_owed_rows_cannot_be_recorded_is_refused() -> None:
    state = load_desired_state(REPO / "desired-state")
    # A table added again where it is marked synced: region_east owes its rows.
    action = AddTable(
        node="district_a",
        set_name="approved",
        table="public.technology",
        spec=SetTable(),
        synced_at=("region_east",),
    )
    assert "region_east" in owed(state, action)
    # Nothing listens on the subscriber's port: the record cannot be written, so the action must not run.
    dsn = "host=127.0.0.1 port=1 dbname=region_east user=postgres"
    nodes = {**state.nodes, "region_east": state.nodes["region_east"].model_copy(update={"dsn": dsn})}
    state = state.model_copy(update={"nodes": nodes})
    reason = _record_owed(state, action, None, ApplyOptions(timeout=1.0))  # type: ignore[arg-type]
    assert reason is not None and reason.startswith(
        "not run: the rows it leaves region_east owing could not be recorded"
    )
