//! Approvals as judged (each signed document once per change request, with
//! its verdict and reason), approvals submitted for the next pass to judge,
//! and each tenant's configuration in force (its Tenant, TenantPolicy and
//! ProviderConnections), which only approved configuration change requests replace.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use zentralink_model::config::{ConfigKind, ConfigObject};

use crate::Store;
use crate::audit::AuditEvent;
use crate::error::StoreError;
use crate::ids::{ApprovalId, ChangeRequestId, TenantId};

/// One judged approval.
#[derive(Debug, Clone)]
pub struct Judgment<'a> {
    pub change_request: ChangeRequestId,
    pub approver: &'a str,
    pub decision: &'a str,
    pub plan_digest: &'a str,
    pub signature: &'a str,
    /// sha256 of the signature: the document's identity.
    pub fingerprint: &'a str,
    /// git, submitted, kubernetes.
    pub source: &'a str,
    pub signed_at: Option<DateTime<Utc>>,
    pub accepted: bool,
    /// The refusal's code when not accepted.
    pub refusal: Option<&'a str>,
    /// Why it was accepted or refused, for people.
    pub verification: &'a str,
    pub key_fingerprint: Option<&'a str>,
}

/// An approval that counts: accepted for the request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CountedApproval {
    pub approver: String,
    pub decision: String,
    pub plan_digest: String,
    pub key_fingerprint: Option<String>,
}

/// A judged approval: its verdict and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JudgmentRecord {
    pub approver: String,
    pub decision: String,
    pub accepted: bool,
    /// The refusal's code when refused.
    pub refusal: Option<String>,
    /// Why it was accepted or refused.
    pub verification: String,
    pub created_at: DateTime<Utc>,
}

/// A submitted approval waiting for its judgment.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Submission {
    pub id: Uuid,
    pub change_request_id: ChangeRequestId,
    pub document: serde_json::Value,
    pub fingerprint: String,
    pub submitted_at: DateTime<Utc>,
}

/// One object of a tenant's configuration in force.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfigRecord {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
    pub spec_digest: String,
    pub revision: Option<String>,
    pub accepted_by: String,
    pub accepted_at: DateTime<Utc>,
}

impl ConfigRecord {
    /// The configuration objects in force of stored rows (a row of an
    /// unknown kind is none).
    pub fn objects(records: &[ConfigRecord]) -> Vec<ConfigObject> {
        records
            .iter()
            .filter_map(|c| {
                Some(ConfigObject {
                    kind: ConfigKind::parse(&c.kind)?,
                    namespace: c.namespace.clone(),
                    name: c.name.clone(),
                    spec: c.spec.clone(),
                })
            })
            .collect()
    }
}

/// An object to put in force.
#[derive(Debug, Clone)]
pub struct NewConfig {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
    pub spec_digest: String,
}

impl Store {
    /// The fingerprints of the documents judged for a request already.
    pub async fn judged_fingerprints(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
    ) -> Result<BTreeSet<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM approvals WHERE tenant_id = $1 AND change_request_id = $2 AND fingerprint IS NOT NULL",
        )
        .bind(tenant)
        .bind(request)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records a judgment and its audit event in one transaction. A document
    /// judged before is not recorded twice: returns `None` then.
    pub async fn record_judgment(
        &self,
        tenant: TenantId,
        j: &Judgment<'_>,
        audit: &AuditEvent,
    ) -> Result<Option<ApprovalId>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<ApprovalId> = sqlx::query_scalar(
            "INSERT INTO approvals (id, tenant_id, change_request_id, approver, decision, plan_digest, signature, accepted, verification, fingerprint, source, signed_at, refusal, key_fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (tenant_id, change_request_id, fingerprint) WHERE fingerprint IS NOT NULL DO NOTHING
             RETURNING id",
        )
        .bind(ApprovalId::new())
        .bind(tenant)
        .bind(j.change_request)
        .bind(j.approver)
        .bind(j.decision)
        .bind(j.plan_digest)
        .bind(j.signature)
        .bind(j.accepted)
        .bind(j.verification)
        .bind(j.fingerprint)
        .bind(j.source)
        .bind(j.signed_at)
        .bind(j.refusal)
        .bind(j.key_fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        if id.is_some() {
            crate::audit::insert(&mut *tx, audit).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The accepted approvals of a request.
    pub async fn counted_approvals(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
    ) -> Result<Vec<CountedApproval>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT approver, decision, plan_digest, key_fingerprint FROM approvals
             WHERE tenant_id = $1 AND change_request_id = $2 AND accepted ORDER BY created_at, id",
        )
        .bind(tenant)
        .bind(request)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How one signed document was judged for a request, if it was.
    pub async fn judgment(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
        fingerprint: &str,
    ) -> Result<Option<JudgmentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT approver, decision, accepted, refusal, verification, created_at FROM approvals
             WHERE tenant_id = $1 AND change_request_id = $2 AND fingerprint = $3",
        )
        .bind(tenant)
        .bind(request)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Hands in an approval for the next pass to judge. The same signed
    /// document twice is a conflict.
    pub async fn submit_approval(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
        document: &serde_json::Value,
        fingerprint: &str,
    ) -> Result<Uuid, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO approval_submissions (id, tenant_id, change_request_id, document, fingerprint)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, change_request_id, fingerprint) DO NOTHING RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(request)
        .bind(document)
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        id.ok_or_else(|| StoreError::Conflict("this signed approval was submitted already".into()))
    }

    /// Submissions for a request not judged yet.
    pub async fn pending_submissions(
        &self,
        tenant: TenantId,
        request: ChangeRequestId,
    ) -> Result<Vec<Submission>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, change_request_id, document, fingerprint, submitted_at FROM approval_submissions
             WHERE tenant_id = $1 AND change_request_id = $2 AND judged_at IS NULL ORDER BY submitted_at, id",
        )
        .bind(tenant)
        .bind(request)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn mark_submission_judged(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE approval_submissions SET judged_at = now() WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------ configuration in force

    /// A tenant's configuration in force (empty before its first pass).
    pub async fn tenant_configs(&self, tenant: TenantId) -> Result<Vec<ConfigRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, namespace, name, spec, spec_digest, revision, accepted_by, accepted_at
             FROM tenant_configs WHERE tenant_id = $1 ORDER BY kind, namespace, name",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Puts a whole configuration in force, replacing the previous one, with
    /// its audit event, in one transaction.
    pub async fn accept_configs(
        &self,
        tenant: TenantId,
        configs: &[NewConfig],
        accepted_by: &str,
        revision: Option<&str>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tenant_configs WHERE tenant_id = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        for c in configs {
            sqlx::query(
                "INSERT INTO tenant_configs (tenant_id, kind, namespace, name, spec, spec_digest, revision, accepted_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant)
            .bind(&c.kind)
            .bind(&c.namespace)
            .bind(&c.name)
            .bind(&c.spec)
            .bind(&c.spec_digest)
            .bind(revision)
            .bind(accepted_by)
            .execute(&mut *tx)
            .await?;
        }
        crate::audit::insert(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
