-- Signed approvals: each signed document is judged once per change request,
-- wherever it came from (a git revision, `zentralink approve --submit`, later
-- a Kubernetes object); the configuration in force per tenant (its Tenant,
-- TenantPolicy and ProviderConnections), changed only through approved
-- configuration change requests judged by the policy in force before them.

ALTER TABLE approvals
    ADD COLUMN fingerprint  text,            -- sha256 of the signed fields and the signature: one judgment per signed document
    ADD COLUMN source       text,            -- git, submitted, kubernetes
    ADD COLUMN signed_at    timestamptz,     -- the createdAt the signature binds
    ADD COLUMN refusal      text,            -- the refusal's code when not accepted
    ADD COLUMN key_fingerprint text;         -- SHA256:... of the signing key when it verified
CREATE UNIQUE INDEX approvals_judged_once ON approvals (tenant_id, change_request_id, fingerprint)
    WHERE fingerprint IS NOT NULL;

-- Approvals handed in with `zentralink approve --submit`, judged by the next pass.
CREATE TABLE approval_submissions (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    change_request_id  uuid NOT NULL,
    document           jsonb NOT NULL,      -- the Approval object as submitted
    fingerprint        text NOT NULL,
    submitted_at       timestamptz NOT NULL DEFAULT now(),
    judged_at          timestamptz,
    UNIQUE (tenant_id, change_request_id, fingerprint),
    FOREIGN KEY (tenant_id, change_request_id) REFERENCES dns_change_requests (tenant_id, id) ON DELETE CASCADE
);

-- Configuration change requests belong to a tenant, not to a zone.
ALTER TABLE dns_change_requests ALTER COLUMN zone_id DROP NOT NULL;
ALTER TABLE dns_change_requests DROP CONSTRAINT dns_change_requests_kind_check;
ALTER TABLE dns_change_requests ADD CONSTRAINT dns_change_requests_kind_check
    CHECK (kind IN ('declared','rollback','config'));
ALTER TABLE dns_change_requests ADD CONSTRAINT dns_change_requests_zone_unless_config
    CHECK (kind = 'config' OR zone_id IS NOT NULL);
-- A rollback asked from the command line carries its requester's signature.
ALTER TABLE dns_change_requests ADD COLUMN requester_signature text;

-- The configuration in force: what reconciles a tenant's zones until an
-- approved configuration change request replaces it.
CREATE TABLE tenant_configs (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('Tenant','TenantPolicy','ProviderConnection')),
    namespace    text NOT NULL DEFAULT '',
    name         text NOT NULL,
    spec         jsonb NOT NULL,
    spec_digest  text NOT NULL,
    revision     text,
    accepted_by  text NOT NULL,             -- 'bootstrap' or the change request that brought it
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, namespace, name)
);
