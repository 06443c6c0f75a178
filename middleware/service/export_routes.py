"""Export controls over HTTP: the redaction config (admin) and exporting a conversation.

Thin: validation here (`ExportConfig`, 422 naming the bad path), everything else in
`coatcheck.middleware.gateway.exports.Exporter` (docs/export.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from coatcheck.middleware.export import ExportConfig
from coatcheck.middleware.gateway.text import clean_field
from coatcheck.middleware.service.deps import AdminKey, ExporterDep, OutboxDep

__all__ = ["CONFIG_PATH", "router"]

router = APIRouter()

CONFIG_PATH = "/v1/config/export-redaction"


@router.get(CONFIG_PATH)
def get_export_redaction(exporter: ExporterDep, _: AdminKey) -> dict[str, Any]:
    return exporter.stored_config().describe()


@router.put(CONFIG_PATH)
def put_export_redaction(body: ExportConfig, exporter: ExporterDep, _: AdminKey) -> dict[str, Any]:
    """Applies to the next export on every worker."""
    return exporter.set_config(body).describe()


@router.delete(CONFIG_PATH)
def delete_export_redaction(exporter: ExporterDep, _: AdminKey) -> dict[str, Any]:
    """Back to the privacy-first default (mandatory fields only); the version still grows."""
    return exporter.set_config(None).describe()


@router.post("/v1/conversations/{conversation_id}/export")
async def export_route(
    exporter: ExporterDep, _: AdminKey, conversation_id: str = Path(min_length=1, max_length=255)
) -> dict[str, Any]:
    return await exporter.export(clean_field(conversation_id, "conversation_id"))


@router.get("/v1/exports/outbox")
def outbox_counts(outbox: OutboxDep, _: AdminKey) -> dict[str, int]:
    """Records waiting for a sink and dead letters (docs/export.md, "The outbox")."""
    return outbox.counts()


@router.post("/v1/exports/outbox/requeue")
def outbox_requeue(outbox: OutboxDep, _: AdminKey) -> dict[str, int]:
    """Every dead letter due again with a fresh attempt budget (after fixing a sink)."""
    return {"requeued": outbox.requeue_dead()}
