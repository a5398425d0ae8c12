-- name: due_metric_fetches
-- Fetches of any workspace that are due and that no worker holds, the longest due first:
-- (workspace, account, delivery) with no delivery for an account's own figures. Runs as
-- crier_scheduler, which sees nothing of what was measured.
SELECT workspace_id, social_account_id, delivery_id FROM metric_fetches
WHERE next_fetch_at <= :now
  AND (leased_until IS NULL OR leased_until <= :now)
ORDER BY next_fetch_at
LIMIT :limit

-- name: accounts_never_measured
-- Active accounts of any workspace whose own figures have no fetch yet (just connected):
-- their first is due now. Runs as crier_scheduler.
SELECT a.workspace_id, a.id AS social_account_id, CAST(NULL AS uuid) AS delivery_id
FROM social_accounts a
WHERE a.status = 'active'
  AND NOT EXISTS (
      SELECT FROM metric_fetches f
      WHERE f.workspace_id = a.workspace_id AND f.social_account_id = a.id
        AND f.delivery_id IS NULL
  )
LIMIT :limit

-- name: start_histories
-- The receipts of the deliveries :delivery_ids, published at :published_ats (side by
-- side): each starts its metric history, its first fetch due :first_step later (as
-- crier_app, in their workspace; once per delivery).
INSERT INTO metric_fetches (workspace_id, id, social_account_id, delivery_id, since, next_fetch_at)
SELECT d.workspace_id, gen_random_uuid(), d.social_account_id, d.id, r.published_at,
       r.published_at + :first_step
FROM unnest(CAST(:delivery_ids AS uuid[]), CAST(:published_ats AS timestamptz[]))
     AS r (delivery_id, published_at)
JOIN deliveries d ON d.workspace_id = crier_current_workspace() AND d.id = r.delivery_id
ON CONFLICT (workspace_id, delivery_id) DO NOTHING

-- name: hold_back_account
-- The network asked for a pause with the account's token: none of its fetches is due
-- before :until.
UPDATE metric_fetches SET next_fetch_at = :until, updated_at = :now
WHERE workspace_id = crier_current_workspace() AND social_account_id = :account_id
  AND next_fetch_at < :until
