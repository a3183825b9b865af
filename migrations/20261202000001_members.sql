-- User management: invitations by link (the token itself is never stored,
-- only its SHA-256; single use, expiring, revocable) and a per-tenant
-- requirement that every member signs in with a second factor.

ALTER TABLE tenants ADD COLUMN require_2fa boolean NOT NULL DEFAULT false;

CREATE TABLE invitations (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_sha256  bytea NOT NULL UNIQUE,     -- the link's token is shown once and never stored
    email         text NOT NULL,             -- who may accept it
    role          text NOT NULL CHECK (role IN ('OWNER','ADMIN','MANAGER','MEMBER','VIEWER')),
    invited_by    uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    accepted_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    revoked_at    timestamptz,
    revoked_by    uuid REFERENCES users(id) ON DELETE SET NULL,
    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at DESC);
CREATE INDEX sessions_tenant_user ON sessions (tenant_id, user_id);
