"""Incident response: incidents, reports, observables, timeline, playbooks and their step runs,
SLA clocks, escalations, response teams and the on-call rota, reports up the chain, regulator
reports, post-mortems, corrective actions, accountability; and the default playbook of every type.

Revision ID: 0003
Revises: 0002
"""

import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("correlation_key", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("reporter_kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("staff_id", sa.Uuid(), nullable=True),
        sa.Column("scope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("discovered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("playbook_id", sa.Uuid(), nullable=True),
        sa.Column("playbook_version", sa.Integer(), nullable=True),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eradicated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident")),
        schema="incidents",
    )
    op.create_index("ix_incident_created_at", "incident", ["created_at"], unique=False, schema="incidents")
    op.create_index(op.f("ix_incident_customer_id"), "incident", ["customer_id"], unique=False, schema="incidents")
    op.create_index(
        "uq_incident_open_correlation",
        "incident",
        ["type", "correlation_key"],
        unique=True,
        schema="incidents",
        postgresql_where=sa.text("state NOT IN ('closed', 'rejected')"),
    )
    op.create_table(
        "oncall_shift",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handover_note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_shift")),
        schema="incidents",
    )
    op.create_index(
        "ix_oncall_shift_window", "oncall_shift", ["tier", "starts_at", "ends_at"], unique=False, schema="incidents"
    )
    op.create_table(
        "playbook",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_playbook")),
        sa.UniqueConstraint("type", "version", name=op.f("uq_playbook_type_version")),
        schema="incidents",
    )
    op.create_index(
        "uq_playbook_active", "playbook", ["type"], unique=True, schema="incidents", postgresql_where=sa.text("active")
    )
    op.create_table(
        "accountability",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("responsible", sa.String(length=200), nullable=False),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_accountability_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accountability")),
        schema="incidents",
    )
    op.create_index(
        op.f("ix_accountability_incident_id"), "accountability", ["incident_id"], unique=False, schema="incidents"
    )
    op.create_table(
        "assignment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handover_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_assignment_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignment")),
        schema="incidents",
    )
    op.create_index(
        "uq_assignment_active_role",
        "assignment",
        ["incident_id", "role"],
        unique=True,
        schema="incidents",
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_table(
        "chain_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_by", sa.String(length=64), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_chain_report_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_report")),
        sa.UniqueConstraint("incident_id", "audience", name=op.f("uq_chain_report_incident_id_audience")),
        schema="incidents",
    )
    op.create_table(
        "corrective_action",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_corrective_action_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrective_action")),
        schema="incidents",
    )
    op.create_index(
        op.f("ix_corrective_action_incident_id"), "corrective_action", ["incident_id"], unique=False, schema="incidents"
    )
    op.create_index(
        "ix_corrective_action_open_due",
        "corrective_action",
        ["due_at"],
        unique=False,
        schema="incidents",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "escalation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=True),
        sa.Column("recipient_role", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_escalation_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation")),
        schema="incidents",
    )
    op.create_index(op.f("ix_escalation_incident_id"), "escalation", ["incident_id"], unique=False, schema="incidents")
    op.create_index(
        "ix_escalation_recipient_open",
        "escalation",
        ["recipient"],
        unique=False,
        schema="incidents",
        postgresql_where=sa.text("acknowledged_at IS NULL"),
    )
    op.create_table(
        "incident_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_incident_event_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_event")),
        sa.UniqueConstraint("seq", name=op.f("uq_incident_event_seq")),
        schema="incidents",
    )
    op.create_index(
        "ix_incident_event_incident_at", "incident_event", ["incident_id", "at"], unique=False, schema="incidents"
    )
    op.create_table(
        "incident_report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("reporter_kind", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=True),
        sa.Column("reference_kind", sa.String(length=64), nullable=True),
        sa.Column("reference_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_incident_report_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_report")),
        schema="incidents",
    )
    op.create_index(
        op.f("ix_incident_report_incident_id"), "incident_report", ["incident_id"], unique=False, schema="incidents"
    )
    op.create_table(
        "observable",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_observable_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observable")),
        sa.UniqueConstraint("incident_id", "kind", "value", name=op.f("uq_observable_incident_id_kind_value")),
        schema="incidents",
    )
    op.create_index(op.f("ix_observable_incident_id"), "observable", ["incident_id"], unique=False, schema="incidents")
    op.create_table(
        "postmortem",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("root_cause", sa.Text(), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("went_well", sa.Text(), nullable=False),
        sa.Column("went_badly", sa.Text(), nullable=False),
        sa.Column("lessons", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_postmortem_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_postmortem")),
        schema="incidents",
    )
    op.create_table(
        "regulator_report",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_regulator_report_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_regulator_report")),
        schema="incidents",
    )
    op.create_table(
        "sla_clock",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pause_reason", sa.String(length=32), nullable=True),
        sa.Column("paused_seconds", sa.Integer(), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_sla_clock_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clock")),
        sa.UniqueConstraint("incident_id", "kind", name=op.f("uq_sla_clock_incident_id_kind")),
        schema="incidents",
    )
    op.create_index(
        "ix_sla_clock_running",
        "sla_clock",
        ["due_at"],
        unique=False,
        schema="incidents",
        postgresql_where=sa.text("met_at IS NULL"),
    )
    op.create_table(
        "step_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("checklist", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outbox_keys", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.incident.id"],
            name=op.f("fk_step_run_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_run")),
        sa.UniqueConstraint("incident_id", "position", name=op.f("uq_step_run_incident_id_position")),
        schema="incidents",
    )
    op.create_index("ix_step_run_status", "step_run", ["status"], unique=False, schema="incidents")
    _seed_playbooks()


def downgrade() -> None:
    op.drop_index("ix_step_run_status", table_name="step_run", schema="incidents")
    op.drop_table("step_run", schema="incidents")
    op.drop_index(
        "ix_sla_clock_running", table_name="sla_clock", schema="incidents", postgresql_where=sa.text("met_at IS NULL")
    )
    op.drop_table("sla_clock", schema="incidents")
    op.drop_table("regulator_report", schema="incidents")
    op.drop_table("postmortem", schema="incidents")
    op.drop_index(op.f("ix_observable_incident_id"), table_name="observable", schema="incidents")
    op.drop_table("observable", schema="incidents")
    op.drop_index(op.f("ix_incident_report_incident_id"), table_name="incident_report", schema="incidents")
    op.drop_table("incident_report", schema="incidents")
    op.drop_index("ix_incident_event_incident_at", table_name="incident_event", schema="incidents")
    op.drop_table("incident_event", schema="incidents")
    op.drop_index(
        "ix_escalation_recipient_open",
        table_name="escalation",
        schema="incidents",
        postgresql_where=sa.text("acknowledged_at IS NULL"),
    )
    op.drop_index(op.f("ix_escalation_incident_id"), table_name="escalation", schema="incidents")
    op.drop_table("escalation", schema="incidents")
    op.drop_index(
        "ix_corrective_action_open_due",
        table_name="corrective_action",
        schema="incidents",
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.drop_index(op.f("ix_corrective_action_incident_id"), table_name="corrective_action", schema="incidents")
    op.drop_table("corrective_action", schema="incidents")
    op.drop_table("chain_report", schema="incidents")
    op.drop_index(
        "uq_assignment_active_role",
        table_name="assignment",
        schema="incidents",
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.drop_table("assignment", schema="incidents")
    op.drop_index(op.f("ix_accountability_incident_id"), table_name="accountability", schema="incidents")
    op.drop_table("accountability", schema="incidents")
    op.drop_index("uq_playbook_active", table_name="playbook", schema="incidents", postgresql_where=sa.text("active"))
    op.drop_table("playbook", schema="incidents")
    op.drop_index("ix_oncall_shift_window", table_name="oncall_shift", schema="incidents")
    op.drop_table("oncall_shift", schema="incidents")
    op.drop_index(
        "uq_incident_open_correlation",
        table_name="incident",
        schema="incidents",
        postgresql_where=sa.text("state NOT IN ('closed', 'rejected')"),
    )
    op.drop_index(op.f("ix_incident_customer_id"), table_name="incident", schema="incidents")
    op.drop_index("ix_incident_created_at", table_name="incident", schema="incidents")
    op.drop_table("incident", schema="incidents")


def _step(
    action: str,
    title: str,
    *,
    mode: str = "automatic",
    phase: str = "containment",
    blocking: bool = False,
    checklist: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "action": action,
        "mode": mode,
        "title": title,
        "phase": phase,
        "blocking": blocking,
        "checklist": checklist or [],
    }


ASSIGN = _step("assign_responder", "Assign the on-call responder as incident commander", phase="triage")
REGULATOR = _step(
    "notify_regulator", "Draft the regulator report (levels 1-2) with its deadline", phase="communication"
)
RESTORE = _step(
    "restore_backup",
    "Restore affected data from backup (the vault's drill)",
    mode="manual",
    phase="recovery",
    checklist=[
        "Identify the last backup taken before the incident",
        "Run the restore drill into an isolated environment and verify integrity",
        "Restore to production with a second person present",
        "Verify the audit chains after the restore",
    ],
)

#: Version 1 of every type's playbook (later versions only through an approved incidents.playbook_change).
DEFAULT_PLAYBOOKS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "account_takeover": (
        "Account takeover",
        [
            _step("freeze_account", "Freeze the account", blocking=True),
            _step("revoke_sessions", "Revoke every session", blocking=True),
            _step("notify_customer", "Tell the customer", phase="communication"),
            ASSIGN,
            _step("block_ip", "Block the attacker's IP addresses"),
            REGULATOR,
            _step(
                "task",
                "Verify the customer's identity by a call-back",
                mode="manual",
                phase="triage",
                checklist=[
                    "Call the customer on the number on file",
                    "Confirm the takeover and the last genuine login",
                ],
            ),
        ],
    ),
    "login_anomaly": (
        "Login anomaly",
        [
            _step("revoke_sessions", "Revoke every session", blocking=True),
            _step("notify_customer", "Tell the customer", phase="communication"),
            ASSIGN,
            _step("block_ip", "Block the offending IP addresses"),
        ],
    ),
    "fraudulent_transaction": (
        "Fraudulent transaction",
        [
            _step("freeze_account", "Freeze the account", blocking=True),
            _step("block_payee", "Block the payee"),
            _step("notify_customer", "Tell the customer", phase="communication"),
            ASSIGN,
            REGULATOR,
        ],
    ),
    "intrusion": (
        "Intrusion",
        [
            ASSIGN,
            _step("block_ip", "Block the intruder's IP addresses"),
            REGULATOR,
            _step(
                "task",
                "Eradicate: remove the foothold",
                mode="manual",
                phase="eradication",
                checklist=["Isolate affected hosts", "Rotate exposed credentials and keys", "Patch the entry point"],
            ),
            RESTORE,
        ],
    ),
    "data_leak": (
        "Data leak",
        [
            ASSIGN,
            REGULATOR,
            _step("notify_customer", "Tell the affected customer", phase="communication"),
            _step(
                "task",
                "Stop the leak and scope it",
                mode="manual",
                checklist=["Close the leaking channel", "List the records and customers affected"],
            ),
        ],
    ),
    "tampering": ("Tampering", [ASSIGN, REGULATOR, RESTORE]),
    "insider_misuse": (
        "Insider misuse",
        [
            _step("suspend_staff", "Suspend the staff member's high-risk permissions", blocking=True),
            ASSIGN,
            REGULATOR,
        ],
    ),
    "denial_of_service": (
        "Denial of service",
        [ASSIGN, _step("block_ip", "Block the attacking IP addresses"), REGULATOR],
    ),
    "other": ("Other", [ASSIGN]),
}


def _seed_playbooks() -> None:
    playbook = sa.table(
        "playbook",
        sa.column("id", sa.Uuid()),
        sa.column("type", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("name", sa.String()),
        sa.column("steps", postgresql.JSONB()),
        sa.column("active", sa.Boolean()),
        sa.column("created_by", sa.String()),
        schema="incidents",
    )
    op.bulk_insert(
        playbook,
        [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"bank-suite:incidents:playbook:{kind}:1"),
                "type": kind,
                "version": 1,
                "name": name,
                "steps": steps,
                "active": True,
                "created_by": "migration",
            }
            for kind, (name, steps) in DEFAULT_PLAYBOOKS.items()
        ],
    )
