"""What `reconcile skip` is about to do, and what it did, as text; never prints."""

from __future__ import annotations

from reconciler.render.verify import render_verify_text
from reconciler.skip import SkipResult, SkipTarget


def render_skip_target(target: SkipTarget) -> str:
    """The transaction to be skipped and the price of skipping it: the question before confirmation."""
    edge = target.edge
    lines = [
        f"Skip on {edge.subscriber} (subscription {edge.subscription} from {edge.provider},"
        f" {target.engine.value}):",
        f"  cause:       {target.cause}",
        f"  last error:  {target.last_error or 'not in the server log'}",
        f"  transaction: {target.failed_transaction or 'not in the server log'}",
        f"  finish LSN:  {target.lsn} (from {target.lsn_from})",
    ]
    if target.apply_errors:
        lines.append(f"  apply errors counted: {target.apply_errors}")
    lines += [
        "",
        f"The whole transaction is thrown away at {edge.subscriber}: its changes are missing there,"
        " and above it, until the repair.",
        f"Then every table this edge carries is verified and repaired at {edge.subscriber}"
        f" against its providers: {', '.join(target.tables) or 'none'}.",
    ]
    return "\n".join(lines) + "\n"


def render_skip_result(result: SkipResult) -> str:
    lines = [f"Skipped: {result.detail}"]
    if result.record is not None:
        lines.append(
            f"Recorded in reconcile.apply_log on {result.target.edge.subscriber} (id {result.record})."
        )
    lines.extend(f"note: {note}" for note in result.notes or [])
    text = "\n".join(lines) + "\n"
    if result.verify is not None:
        text += "\n" + render_verify_text(result.verify)
    return text
