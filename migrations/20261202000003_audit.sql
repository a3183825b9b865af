-- The audit viewer pages a tenant's log by keyset, newest first, over
-- (created_at, id): these indexes serve that order, alone and with the
-- actor or target filter. The (tenant_id, created_at) index is a prefix of
-- the first one and goes.

DROP INDEX IF EXISTS audit_events_tenant_time;
CREATE INDEX audit_events_tenant_keyset ON audit_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_events_tenant_actor ON audit_events (tenant_id, actor_id, created_at DESC, id DESC);
CREATE INDEX audit_events_tenant_target ON audit_events (tenant_id, target_kind, target_id, created_at DESC, id DESC);
