-- The reconciler: change requests being executed, executions marked before
-- the provider call (crash safety), each zone's last applied state, and the
-- last good revision of each source.

-- A request whose plan is being applied is Executing; a rollback is a kind of request.
ALTER TABLE dns_change_requests DROP CONSTRAINT dns_change_requests_state_check;
ALTER TABLE dns_change_requests ADD CONSTRAINT dns_change_requests_state_check
    CHECK (state IN ('Pending','Approved','Executing','Rejected','Superseded','Expired','Applied','Failed'));
ALTER TABLE dns_change_requests
    ADD COLUMN kind      text NOT NULL DEFAULT 'declared' CHECK (kind IN ('declared','rollback')),
    ADD COLUMN revision  text,           -- the source revision the plan was made from
    ADD COLUMN message   text;           -- why it is in its state (superseded by, failed because, ...)
-- A zone has at most one request of one digest open at a time.
CREATE UNIQUE INDEX dns_change_requests_open_digest ON dns_change_requests (tenant_id, zone_id, plan_digest)
    WHERE state IN ('Pending','Approved','Executing');

-- Baseline: the zone as first seen; recovery: as found after an interrupted execution.
ALTER TABLE snapshots DROP CONSTRAINT snapshots_reason_check;
ALTER TABLE snapshots ADD CONSTRAINT snapshots_reason_check
    CHECK (reason IN ('pre-change','post-change','on-demand','baseline','recovery'));
-- An on-demand snapshot asked for by a DnsSnapshot object (namespace/name) is taken once.
ALTER TABLE snapshots ADD COLUMN requested_by text, ADD COLUMN note text;
CREATE UNIQUE INDEX snapshots_requested_once ON snapshots (tenant_id, requested_by) WHERE requested_by IS NOT NULL;

-- One row per provider batch, written (Executing) before the provider is
-- called and closed after: a row still Executing after a crash is recovered
-- by re-reading the provider, never by applying again.
CREATE TABLE executions (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    zone_id            uuid NOT NULL,
    change_request_id  uuid,
    plan               jsonb NOT NULL,
    plan_digest        text NOT NULL,
    rollback           boolean NOT NULL DEFAULT false,
    revision           text,
    requester          text,
    state              text NOT NULL CHECK (state IN ('Executing','Done','Failed','Recovered')),
    error              text,
    pre_snapshot_id    uuid,
    post_snapshot_id   uuid,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, change_request_id) REFERENCES dns_change_requests (tenant_id, id),
    FOREIGN KEY (tenant_id, pre_snapshot_id) REFERENCES snapshots (tenant_id, id),
    FOREIGN KEY (tenant_id, post_snapshot_id) REFERENCES snapshots (tenant_id, id)
);
-- At most one execution of a zone in flight.
CREATE UNIQUE INDEX executions_in_flight ON executions (tenant_id, zone_id) WHERE state = 'Executing';
CREATE INDEX executions_zone_time ON executions (tenant_id, zone_id, started_at DESC);

ALTER TABLE dns_changes
    ADD COLUMN execution_id uuid,
    ADD COLUMN revision     text,
    ADD COLUMN requester    text,
    ADD FOREIGN KEY (tenant_id, execution_id) REFERENCES executions (tenant_id, id);
-- An execution records each operation once.
CREATE UNIQUE INDEX dns_changes_once ON dns_changes (execution_id, name, record_type) WHERE execution_id IS NOT NULL;

-- A zone's last applied state and the summary of its last pass. Written when
-- something changes, never by a pass that finds the zone as it left it.
CREATE TABLE zone_states (
    tenant_id                 uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    zone_id                   uuid NOT NULL,
    last_applied_snapshot_id  uuid,
    owned                     jsonb NOT NULL DEFAULT '[]'::jsonb,   -- ["name TYPE", ...]
    held_for                  text,          -- after a rollback: the declared content's digest
    revision                  text,          -- the source revision last applied
    applied_at                timestamptz,
    outcome                   text,          -- the last decision (Converged, AwaitingApproval, ...)
    plan_changes              integer NOT NULL DEFAULT 0,
    drift                     jsonb NOT NULL DEFAULT '[]'::jsonb,   -- ["name TYPE", ...]
    message                   text,          -- why nothing executes, or the last error
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, zone_id),
    FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, last_applied_snapshot_id) REFERENCES snapshots (tenant_id, id)
);

-- Each source (a git repository and branch, a directory): the revision last
-- read, the last one that validated (in force), and the last error.
CREATE TABLE source_states (
    source          text PRIMARY KEY,
    good_revision   text,
    good_at         timestamptz,
    last_revision   text,
    last_error      text,
    last_pass_at    timestamptz,
    last_pass_ok    boolean,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
