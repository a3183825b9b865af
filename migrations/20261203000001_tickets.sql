-- Tickets, part 2: an assignee among the platform's staff, the zone and
-- the change request a ticket concerns (both of the ticket's tenant:
-- composite foreign keys), numbers per tenant from a counter row (one
-- UPDATE per new ticket, so concurrent openings never get the same
-- number), and the ticket's events: the thread as the live stream and its
-- replay see it. An event's id is the Server-Sent Events id; events of one
-- ticket are written while its row is locked, so their ids grow in commit
-- order and "every event after id N" loses nothing.

ALTER TABLE tickets
    ADD COLUMN assignee_id        uuid REFERENCES users(id) ON DELETE SET NULL,
    ADD COLUMN zone_id            uuid,
    ADD COLUMN change_request_id  uuid,
    ADD FOREIGN KEY (tenant_id, zone_id) REFERENCES zones (tenant_id, id) ON DELETE SET NULL (zone_id),
    ADD FOREIGN KEY (tenant_id, change_request_id) REFERENCES dns_change_requests (tenant_id, id) ON DELETE SET NULL (change_request_id);
CREATE INDEX tickets_tenant_status ON tickets (tenant_id, status, updated_at DESC);
CREATE INDEX tickets_desk ON tickets (status, updated_at DESC);

CREATE TABLE ticket_counters (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    last_number  bigint NOT NULL
);

CREATE TABLE ticket_events (
    id           bigserial PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('OPENED','COMMENT','STATUS','ASSIGNED')),
    -- staff-only (an internal note): never shown to, nor sent to, the tenant's members
    internal     boolean NOT NULL DEFAULT false,
    actor_id     uuid REFERENCES users(id) ON DELETE SET NULL,
    actor_staff  boolean NOT NULL DEFAULT false,
    comment_id   uuid REFERENCES ticket_comments(id) ON DELETE CASCADE,
    from_status  text,
    to_status    text,
    assignee_id  uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id) ON DELETE CASCADE,
    CHECK (kind <> 'COMMENT' OR comment_id IS NOT NULL)
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);
