-- Notifications and e-mail, part 2: the fan-out cursor over the audit log,
-- subscription choices that can say "off" (a missing row means the
-- documented default), the audit event a notification or e-mail came from
-- (unique per recipient, so a repeated fan-out cannot duplicate), the
-- retry schedule of the mail queue, e-mail templates (platform and per
-- tenant overrides of the defaults built into the code) and the daily
-- digests sent (one per user, tenant and day).

-- One row: the id of the last audit event turned into notifications. It is
-- locked (FOR UPDATE) by the fan-out and moved in the same transaction as
-- the notifications it produced. It starts at the newest event, so an
-- existing installation is not flooded with notifications of its history.
CREATE TABLE notification_cursor (
    id             boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_event_id  bigint NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO notification_cursor (id, last_event_id)
    SELECT true, COALESCE(max(id), 0) FROM audit_events;

-- The events the fan-out handled lately. Audit ids are handed out when a
-- transaction writes, not when it commits, so an event can become visible
-- after the cursor passed its id; the fan-out looks back a little for such
-- events and handles those not listed here. Kept for a day.
CREATE TABLE notification_fanned_events (
    audit_event_id  bigint PRIMARY KEY,
    fanned_at       timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE notification_subscriptions
    ADD COLUMN enabled boolean NOT NULL DEFAULT true;

ALTER TABLE notifications
    ADD COLUMN audit_event_id bigint;
CREATE UNIQUE INDEX notifications_event_user ON notifications (audit_event_id, user_id)
    WHERE audit_event_id IS NOT NULL;
CREATE INDEX notifications_unread ON notifications (tenant_id, user_id) WHERE read_at IS NULL;

ALTER TABLE mail_messages
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN audit_event_id bigint,
    ADD COLUMN kind text NOT NULL DEFAULT 'notification'
        CHECK (kind IN ('notification', 'digest', 'test'));
CREATE UNIQUE INDEX mail_messages_event_address ON mail_messages (audit_event_id, to_address)
    WHERE audit_event_id IS NOT NULL;
CREATE INDEX mail_messages_due ON mail_messages (next_attempt_at, created_at)
    WHERE status = 'QUEUED';
CREATE INDEX mail_messages_tenant ON mail_messages (tenant_id, created_at DESC);

-- An override of the built-in template of one event kind: the platform's
-- (tenant_id NULL, staff) or a tenant's (TENANT_MANAGE).
CREATE TABLE mail_templates (
    id          uuid PRIMARY KEY,
    tenant_id   uuid REFERENCES tenants(id) ON DELETE CASCADE,
    event       text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    updated_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mail_templates_tenant ON mail_templates (tenant_id, event) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX mail_templates_platform ON mail_templates (event) WHERE tenant_id IS NULL;

CREATE TABLE notification_digests (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day         date NOT NULL,
    mail_id     uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, day)
);
