"""The migration matches the models, and the public API is pinned."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coatcheck import vault
from coatcheck.vault import Base, make_engine, upgrade


def test_migration_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    vault_tables = {"keks", "conversations", "stored_values", "audit_log", "audit_head"}
    ours = [d for d in diff if not isinstance(d, tuple) or _table_of(d) in vault_tables]
    assert ours == []


def _table_of(item: tuple[object, ...]) -> str | None:
    for part in item:
        name = getattr(part, "name", None) if not hasattr(part, "table") else part.table.name  # type: ignore[attr-defined]
        if isinstance(name, str):
            return name
    return None


def test_upgrade_is_idempotent(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)


def test_public_api_pinned() -> None:
    assert sorted(vault.__all__) == [
        "AuditChainTampered",
        "AuditRecord",
        "AuditReport",
        "Base",
        "ConcurrencyError",
        "ConversationEnded",
        "ConversationShredded",
        "DecryptionError",
        "Digits",
        "EndSummary",
        "Equals",
        "ErasureSummary",
        "ExpirySummary",
        "Grant",
        "GrantRefused",
        "GrantSigner",
        "Holdings",
        "InvalidArgument",
        "InvalidGrant",
        "InvalidPredicate",
        "KeyConfigError",
        "KeyRing",
        "LegacyRows",
        "Length",
        "Luhn",
        "Outcome",
        "PSEUDONYM_RE",
        "Policies",
        "Predicate",
        "RefInfo",
        "Regex",
        "Retention",
        "RootRotation",
        "Statement",
        "SubjectValue",
        "Transaction",
        "UnknownReference",
        "UpkeepSummary",
        "ValueExpired",
        "ValueState",
        "Vault",
        "VaultError",
        "load_master_key",
        "make_engine",
        "open_vault",
        "predicate_from_dict",
        "transaction",
        "upgrade",
        "validate_master_key",
    ]
    assert all(hasattr(vault, name) for name in vault.__all__)
