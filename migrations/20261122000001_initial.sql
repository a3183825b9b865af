-- ZentraLink schema, version 1. Every tenant-owned table carries tenant_id;
-- every timestamp is timestamptz (UTC). Secrets are stored only as enc:v1:
-- envelopes (AES-256-GCM under PLATFORM_ENCRYPTION_KEY) or argon2id hashes.

CREATE TABLE tenants (
    id            uuid PRIMARY KEY,
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'),
    display_name  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,          -- argon2id PHC string
    platform_admin boolean NOT NULL DEFAULT false,
    disabled_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('OWNER','ADMIN','MANAGER','MEMBER','VIEWER')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    token_sha256   bytea NOT NULL UNIQUE,   -- the opaque token itself is never stored
    user_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id      uuid REFERENCES tenants(id) ON DELETE SET NULL,  -- active tenant
    second_factor  boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE login_fingerprints (
    id              bigserial PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    fingerprint     bytea NOT NULL,          -- SHA-256 of (IP, user agent); never the raw pair
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, fingerprint)
);

CREATE TABLE login_failures (
    id            bigserial PRIMARY KEY,
    subject       bytea NOT NULL,            -- SHA-256 of the e-mail or IP being throttled
    failed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_subject ON login_failures (subject, failed_at);

CREATE TABLE totp_secrets (
    user_id          uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_enc       text NOT NULL CHECK (secret_enc LIKE 'enc:v1:%'),
    confirmed_at     timestamptz,
    last_used_step   bigint,                 -- a code is never accepted twice
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backup_codes (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   text NOT NULL,               -- argon2id PHC string
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backup_codes_user ON backup_codes (user_id);

CREATE TABLE audit_events (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid REFERENCES tenants(id) ON DELETE CASCADE,   -- NULL: platform-wide event
    actor_kind   text NOT NULL CHECK (actor_kind IN ('user','operator','system','anonymous')),
    actor_id     text NOT NULL,
    action       text NOT NULL,
    target_kind  text,
    target_id    text,
    ip           text,
    user_agent   text,
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, created_at DESC);
CREATE INDEX audit_events_action ON audit_events (tenant_id, action);

CREATE TABLE provider_connections (
    id                       uuid PRIMARY KEY,
    tenant_id                uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    namespace                text NOT NULL,
    name                     text NOT NULL,
    provider_type            text NOT NULL CHECK (provider_type IN ('powerdns','rfc2136','hetzner','cloudflare','zonefile')),
    settings                 jsonb NOT NULL DEFAULT '{}'::jsonb,   -- never holds a secret
    credentials_enc          text CHECK (credentials_enc IS NULL OR credentials_enc LIKE 'enc:v1:%'),
    mode                     text NOT NULL DEFAULT 'ReadOnly' CHECK (mode IN ('ReadOnly','Live')),
    acknowledge_live_writes  boolean NOT NULL DEFAULT false,
    last_test_at             timestamptz,
    last_test_ok             boolean,
    last_test_message        text,
    last_probe_at            timestamptz,
    last_probe_ok            boolean,
    last_probe_message       text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, namespace, name),
    UNIQUE (tenant_id, id)
);

CREATE TABLE zones (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    namespace      text NOT NULL,
    name           text NOT NULL,
    zone_name      text NOT NULL UNIQUE,     -- two tenants can never manage the same zone
    connection_id  uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, namespace, name),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES provider_connections (tenant_id, id)
);

CREATE TABLE snapshots (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    zone_id      uuid NOT NULL,
    zone_name    text NOT NULL,
    provider     text NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('pre-change','post-change','on-demand')),
    digest       text NOT NULL,
    record_sets  integer NOT NULL,
    records      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX snapshots_zone_time ON snapshots (tenant_id, zone_id, created_at DESC);

CREATE TABLE dns_change_requests (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    zone_id         uuid NOT NULL,
    name            text NOT NULL,           -- deterministic: <zone object>-<digest prefix>
    plan            jsonb NOT NULL,
    plan_digest     text NOT NULL,
    state           text NOT NULL CHECK (state IN ('Pending','Approved','Rejected','Superseded','Expired','Applied','Failed')),
    requester       text NOT NULL,
    reason          text,
    rollback_to     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    decided_at      timestamptz,
    applied_at      timestamptz,
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, rollback_to) REFERENCES snapshots (tenant_id, id)
);
CREATE INDEX dns_change_requests_zone ON dns_change_requests (tenant_id, zone_id, state);

CREATE TABLE approvals (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    change_request_id  uuid NOT NULL,
    approver           text NOT NULL,
    decision           text NOT NULL CHECK (decision IN ('Approve','Reject')),
    plan_digest        text NOT NULL,
    signature          text NOT NULL,
    accepted           boolean NOT NULL,
    verification       text NOT NULL,        -- why it was accepted or refused
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, change_request_id) REFERENCES dns_change_requests (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX approvals_request ON approvals (tenant_id, change_request_id);
-- An approver counts once per change request.
CREATE UNIQUE INDEX approvals_once ON approvals (tenant_id, change_request_id, approver) WHERE accepted;

CREATE TABLE dns_changes (
    id                 bigserial PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    zone_id            uuid NOT NULL,
    change_request_id  uuid,
    plan_digest        text NOT NULL,
    op                 text NOT NULL CHECK (op IN ('create','update','delete')),
    name               text NOT NULL,
    record_type        text NOT NULL,
    before             jsonb,
    after              jsonb,
    outcome            text NOT NULL CHECK (outcome IN ('applied','failed')),
    error              text,
    pre_snapshot_id    uuid,
    post_snapshot_id   uuid,
    created_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, change_request_id) REFERENCES dns_change_requests (tenant_id, id),
    FOREIGN KEY (tenant_id, pre_snapshot_id) REFERENCES snapshots (tenant_id, id),
    FOREIGN KEY (tenant_id, post_snapshot_id) REFERENCES snapshots (tenant_id, id)
);
CREATE INDEX dns_changes_zone_time ON dns_changes (tenant_id, zone_id, created_at DESC);
CREATE INDEX dns_changes_record ON dns_changes (tenant_id, zone_id, name, record_type);

CREATE TABLE tickets (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    number            bigint NOT NULL,
    subject           text NOT NULL,
    status            text NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN','IN_PROGRESS','WAITING_ON_CUSTOMER','RESOLVED','CLOSED')),
    priority          text NOT NULL DEFAULT 'NORMAL' CHECK (priority IN ('LOW','NORMAL','HIGH','URGENT')),
    domain            text,                  -- domain-bound ticket
    customer_user_id  uuid REFERENCES users(id) ON DELETE SET NULL,  -- customer-bound ticket
    created_by        uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, id)
);

CREATE TABLE ticket_comments (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    ticket_id   uuid NOT NULL,
    author_id   uuid REFERENCES users(id) ON DELETE SET NULL,
    body        text NOT NULL,
    internal    boolean NOT NULL DEFAULT false,   -- internal notes are hidden from customers
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX ticket_comments_ticket ON ticket_comments (tenant_id, ticket_id, created_at);

CREATE TABLE notification_subscriptions (
    id          bigserial PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event       text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('in_app','email')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, user_id, event, channel)
);

CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event       text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    link        text,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user ON notifications (tenant_id, user_id, created_at DESC);

CREATE TABLE smtp_settings (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants(id) ON DELETE CASCADE,   -- NULL: the platform's settings
    host          text NOT NULL,
    port          integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    username      text,
    password_enc  text CHECK (password_enc IS NULL OR password_enc LIKE 'enc:v1:%'),
    from_address  text NOT NULL,
    tls           text NOT NULL DEFAULT 'starttls' CHECK (tls IN ('none','starttls','tls')),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX smtp_settings_tenant ON smtp_settings (tenant_id) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX smtp_settings_platform ON smtp_settings ((true)) WHERE tenant_id IS NULL;

CREATE TABLE mail_messages (
    id            uuid PRIMARY KEY,
    tenant_id     uuid REFERENCES tenants(id) ON DELETE CASCADE,
    to_address    text NOT NULL,
    subject       text NOT NULL,
    body          text NOT NULL,
    status        text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED','SENT','FAILED')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz
);
CREATE INDEX mail_messages_status ON mail_messages (status, created_at);

CREATE TABLE cron_runs (
    id           bigserial PRIMARY KEY,
    job          text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL CHECK (status IN ('running','ok','failed','skipped')),
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX cron_runs_job ON cron_runs (job, started_at DESC);

CREATE TABLE status_incidents (
    id           uuid PRIMARY KEY,
    title        text NOT NULL,
    impact       text NOT NULL CHECK (impact IN ('none','minor','major','critical')),
    status       text NOT NULL CHECK (status IN ('investigating','identified','monitoring','resolved')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE status_incident_updates (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES status_incidents(id) ON DELETE CASCADE,
    status       text NOT NULL CHECK (status IN ('investigating','identified','monitoring','resolved')),
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_incident_updates_incident ON status_incident_updates (incident_id, created_at);
