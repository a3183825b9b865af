//! Notifications: subscription choices per user, channel and event kind;
//! the in-app list; the fan-out cursor over the audit log (locked, and moved
//! in the same transaction as what it produced); e-mail templates (platform
//! and per-tenant overrides) and the daily digests sent. Does I/O
//! (PostgreSQL through sqlx).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::Store;
use crate::audit::AuditRecord;
use crate::error::StoreError;
use crate::ids::{TenantId, UserId};

/// A choice a user made: `event` on `channel` is on or off. Without a
/// row, the default of the event kind applies (decided by the web service).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionChoice {
    pub event: String,
    pub channel: String,
    pub enabled: bool,
}

/// A member of a tenant a notification may go to, with their choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: UserId,
    pub email: String,
    pub role: String,
    pub choices: Vec<SubscriptionChoice>,
}

/// An in-app notification as its list shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRecord {
    pub id: Uuid,
    pub event: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A notification to create for one user.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub tenant: TenantId,
    pub user: UserId,
    pub event: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
    pub audit_event_id: Option<i64>,
    pub now: DateTime<Utc>,
}

/// An e-mail to queue.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub tenant: Option<TenantId>,
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// `notification`, `digest` or `test`.
    pub kind: &'a str,
    pub audit_event_id: Option<i64>,
    pub now: DateTime<Utc>,
}

/// A stored override of an e-mail template.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MailTemplateRecord {
    pub event: String,
    pub subject: String,
    pub body: String,
    pub updated_at: DateTime<Utc>,
}

/// A run of the fan-out: holds the cursor row locked until [`FanOut::finish`]
/// commits what it produced together with the cursor's new position.
/// Dropping it without finishing rolls everything back.
#[derive(Debug)]
pub struct FanOut {
    tx: Transaction<'static, Postgres>,
    /// The last event already handled before this run.
    pub cursor: i64,
    handled: Vec<i64>,
}

/// How far back the fan-out looks for events that became visible after
/// the cursor passed their id (a transaction that wrote an event early and
/// committed late).
pub const FAN_OUT_LOOKBACK_MINUTES: i32 = 15;

pub(crate) async fn insert_notification<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    n: &NewNotification<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO notifications (id, tenant_id, user_id, event, title, body, link, audit_event_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (audit_event_id, user_id) WHERE audit_event_id IS NOT NULL DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(n.tenant)
    .bind(n.user)
    .bind(n.event)
    .bind(n.title)
    .bind(n.body)
    .bind(n.link)
    .bind(n.audit_event_id)
    .bind(n.now)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn insert_mail<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    m: &NewMail<'_>,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO mail_messages (id, tenant_id, to_address, subject, body, kind, audit_event_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (audit_event_id, to_address) WHERE audit_event_id IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(m.tenant)
    .bind(m.to)
    .bind(m.subject)
    .bind(m.body)
    .bind(m.kind)
    .bind(m.audit_event_id)
    .bind(m.now)
    .fetch_optional(executor)
    .await?)
}

impl FanOut {
    /// Creates an in-app notification; false when this event already
    /// notified this user.
    pub async fn notify(&mut self, n: &NewNotification<'_>) -> Result<bool, StoreError> {
        insert_notification(&mut *self.tx, n).await
    }

    /// Queues an e-mail; false when this event already queued one to this address.
    pub async fn queue_mail(&mut self, m: &NewMail<'_>) -> Result<bool, StoreError> {
        Ok(insert_mail(&mut *self.tx, m).await?.is_some())
    }

    /// Notes that an event of interest was handled (a later look back skips it).
    pub fn handled(&mut self, event_id: i64) {
        self.handled.push(event_id);
    }

    /// Moves the cursor to `last_event_id` (never back), records the events
    /// handled, and commits.
    pub async fn finish(mut self, last_event_id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE notification_cursor SET last_event_id = $1, updated_at = now() WHERE id",
        )
        .bind(last_event_id.max(self.cursor))
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "INSERT INTO notification_fanned_events (audit_event_id)
             SELECT unnest($1::bigint[]) ON CONFLICT DO NOTHING",
        )
        .bind(&self.handled)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "DELETE FROM notification_fanned_events WHERE fanned_at < now() - interval '1 day'",
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Starts a fan-out run: locks the cursor (a concurrent run waits here
    /// and then starts after what this one handled) and reads up to `limit`
    /// audit events after it, oldest first. With `look_back`, first the
    /// events of the `actions` of interest written in the last
    /// [`FAN_OUT_LOOKBACK_MINUTES`] at or below the cursor that no run
    /// handled (they committed after the cursor passed them).
    pub async fn begin_fan_out(
        &self,
        limit: i64,
        look_back: bool,
        actions: &[&str],
    ) -> Result<(FanOut, Vec<AuditRecord>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let cursor: i64 =
            sqlx::query_scalar("SELECT last_event_id FROM notification_cursor WHERE id FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let mut events: Vec<AuditRecord> = Vec::new();
        if look_back {
            events = sqlx::query_as(
                "SELECT id, tenant_id, actor_kind, actor_id, action, target_kind, target_id, ip, user_agent, metadata, created_at
                   FROM audit_events e
                  WHERE e.id <= $1 AND e.action = ANY($2) AND e.tenant_id IS NOT NULL
                    AND e.created_at >= now() - make_interval(mins => $3)
                    AND NOT EXISTS (SELECT 1 FROM notification_fanned_events f WHERE f.audit_event_id = e.id)
                  ORDER BY e.id LIMIT $4",
            )
            .bind(cursor)
            .bind(actions)
            .bind(FAN_OUT_LOOKBACK_MINUTES)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        }
        let fresh: Vec<AuditRecord> = sqlx::query_as(
            "SELECT id, tenant_id, actor_kind, actor_id, action, target_kind, target_id, ip, user_agent, metadata, created_at
               FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(cursor)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        events.extend(fresh);
        Ok((
            FanOut {
                tx,
                cursor,
                handled: Vec::new(),
            },
            events,
        ))
    }

    /// The tenant's members with their e-mail, role and subscription choices.
    pub async fn notification_recipients(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<Recipient>, StoreError> {
        let members: Vec<(UserId, String, String)> = sqlx::query_as(
            "SELECT m.user_id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id
              WHERE m.tenant_id = $1 AND u.disabled_at IS NULL ORDER BY lower(u.email)",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        let choices: Vec<(UserId, String, String, bool)> = sqlx::query_as(
            "SELECT user_id, event, channel, enabled FROM notification_subscriptions WHERE tenant_id = $1",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        Ok(members
            .into_iter()
            .map(|(user_id, email, role)| Recipient {
                user_id,
                email,
                role,
                choices: choices
                    .iter()
                    .filter(|c| c.0 == user_id)
                    .map(|(_, event, channel, enabled)| SubscriptionChoice {
                        event: event.clone(),
                        channel: channel.clone(),
                        enabled: *enabled,
                    })
                    .collect(),
            })
            .collect())
    }

    /// The subscription choices a user made in a tenant.
    pub async fn subscription_choices(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<SubscriptionChoice>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT event, channel, enabled FROM notification_subscriptions
              WHERE tenant_id = $1 AND user_id = $2 ORDER BY event, channel",
        )
        .bind(tenant)
        .bind(user)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces a user's choices in a tenant with `choices`.
    pub async fn set_subscription_choices(
        &self,
        tenant: TenantId,
        user: UserId,
        choices: &[SubscriptionChoice],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM notification_subscriptions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        for c in choices {
            sqlx::query(
                "INSERT INTO notification_subscriptions (tenant_id, user_id, event, channel, enabled)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(user)
            .bind(&c.event)
            .bind(&c.channel)
            .bind(c.enabled)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates one in-app notification outside a fan-out run.
    pub async fn create_notification(&self, n: &NewNotification<'_>) -> Result<bool, StoreError> {
        insert_notification(&self.pool, n).await
    }

    /// A user's notifications in a tenant, newest first.
    pub async fn notifications(
        &self,
        tenant: TenantId,
        user: UserId,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, event, title, body, link, read_at, created_at FROM notifications
              WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC, id LIMIT $3",
        )
        .bind(tenant)
        .bind(user)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many of a user's notifications in a tenant are unread.
    pub async fn unread_notifications(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL",
        )
        .bind(tenant)
        .bind(user)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Marks one notification read; not found unless it is this user's in this tenant.
    pub async fn mark_notification_read(
        &self,
        tenant: TenantId,
        user: UserId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let found: Option<Uuid> = sqlx::query_scalar(
            "UPDATE notifications SET read_at = COALESCE(read_at, $4)
              WHERE tenant_id = $1 AND user_id = $2 AND id = $3 RETURNING id",
        )
        .bind(tenant)
        .bind(user)
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        found.map(|_| ()).ok_or(StoreError::NotFound)
    }

    /// Marks all of a user's notifications in a tenant read; how many were unread.
    pub async fn mark_all_notifications_read(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE notifications SET read_at = $3
              WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL",
        )
        .bind(tenant)
        .bind(user)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The overrides of e-mail templates: a tenant's, or the platform's with `None`.
    pub async fn mail_templates(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<MailTemplateRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT event, subject, body, updated_at FROM mail_templates
              WHERE tenant_id IS NOT DISTINCT FROM $1 ORDER BY event",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Stores an override of one event kind's template (replacing the previous one).
    pub async fn set_mail_template(
        &self,
        tenant: Option<TenantId>,
        event: &str,
        subject: &str,
        body: &str,
        by: UserId,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM mail_templates WHERE tenant_id IS NOT DISTINCT FROM $1 AND event = $2",
        )
        .bind(tenant)
        .bind(event)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO mail_templates (id, tenant_id, event, subject, body, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind(tenant)
        .bind(event)
        .bind(subject)
        .bind(body)
        .bind(by)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes an override (the next level applies again); whether there was one.
    pub async fn delete_mail_template(
        &self,
        tenant: Option<TenantId>,
        event: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM mail_templates WHERE tenant_id IS NOT DISTINCT FROM $1 AND event = $2",
        )
        .bind(tenant)
        .bind(event)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Who gets a digest on `day`: members whose `digest` choice on channel
    /// `email` is on, who have unread notifications, and got none that day
    /// (tenant, user, e-mail).
    pub async fn digest_candidates(
        &self,
        day: NaiveDate,
    ) -> Result<Vec<(TenantId, UserId, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.tenant_id, s.user_id, u.email
               FROM notification_subscriptions s
               JOIN memberships m ON m.tenant_id = s.tenant_id AND m.user_id = s.user_id
               JOIN users u ON u.id = s.user_id
              WHERE s.event = 'digest' AND s.channel = 'email' AND s.enabled
                AND u.disabled_at IS NULL
                AND EXISTS (SELECT 1 FROM notifications n
                             WHERE n.tenant_id = s.tenant_id AND n.user_id = s.user_id AND n.read_at IS NULL)
                AND NOT EXISTS (SELECT 1 FROM notification_digests d
                                 WHERE d.tenant_id = s.tenant_id AND d.user_id = s.user_id AND d.day = $1)
              ORDER BY s.tenant_id, s.user_id",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records the digest of `user` in `tenant` for `day` and queues its
    /// e-mail, in one transaction; false (nothing queued) when that day's
    /// digest exists already.
    pub async fn queue_digest(
        &self,
        tenant: TenantId,
        user: UserId,
        day: NaiveDate,
        mail: &NewMail<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO notification_digests (tenant_id, user_id, day) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(user)
        .bind(day)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        let id = insert_mail(&mut *tx, mail).await?;
        sqlx::query(
            "UPDATE notification_digests SET mail_id = $4 WHERE tenant_id = $1 AND user_id = $2 AND day = $3",
        )
        .bind(tenant)
        .bind(user)
        .bind(day)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The ticket's subject, by its number in the tenant.
    pub async fn ticket_subject(
        &self,
        tenant: TenantId,
        number: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT subject FROM tickets WHERE tenant_id = $1 AND number = $2")
                .bind(tenant)
                .bind(number)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
