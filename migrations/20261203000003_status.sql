-- The public status page, the cron jobs and their clean-up work: indexes
-- for the queries they run, and one running row per cron job at a time.

-- The status page reads open incidents and the ones resolved lately.
CREATE INDEX status_incidents_open ON status_incidents (started_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX status_incidents_resolved ON status_incidents (resolved_at DESC) WHERE resolved_at IS NOT NULL;

-- A job runs once at a time (the web service also holds an advisory lock
-- per job for the run): a second 'running' row of the same job is refused.
CREATE UNIQUE INDEX cron_runs_one_running ON cron_runs (job) WHERE status = 'running';
CREATE INDEX cron_runs_time ON cron_runs (started_at DESC);

-- Clean-up deletes by time: old login failures, expired sessions (indexed
-- already), pending change requests past their expiry.
CREATE INDEX login_failures_time ON login_failures (failed_at);
CREATE INDEX dns_change_requests_pending_expiry ON dns_change_requests (expires_at) WHERE state = 'Pending';
-- Snapshot retention asks, per snapshot, whether anything refers to it.
CREATE INDEX dns_change_requests_rollback_to ON dns_change_requests (tenant_id, rollback_to) WHERE rollback_to IS NOT NULL;
CREATE INDEX dns_changes_pre_snapshot ON dns_changes (tenant_id, pre_snapshot_id) WHERE pre_snapshot_id IS NOT NULL;
CREATE INDEX dns_changes_post_snapshot ON dns_changes (tenant_id, post_snapshot_id) WHERE post_snapshot_id IS NOT NULL;
CREATE INDEX executions_pre_snapshot ON executions (tenant_id, pre_snapshot_id) WHERE pre_snapshot_id IS NOT NULL;
CREATE INDEX executions_post_snapshot ON executions (tenant_id, post_snapshot_id) WHERE post_snapshot_id IS NOT NULL;
