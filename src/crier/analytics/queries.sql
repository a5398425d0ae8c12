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

-- name: rebuild_days
-- The workspace's snapshots for the days :first to :last (days in its timezone, so a DST
-- day has 23 or 25 hours; `starts` and `ends` are when the first begins and the day after
-- the last begins), made again from its observations, in one statement:
-- - a post's figure on a day is how much it grew that day: the growth each of the day's
--   observations recorded (`delta`: since the one before, or from 0 for the first), added
--   up over the account's posts; the same as its last count of the day less its last
--   before the day;
-- - an account's own figure on a day is the last observed that day, or, for a network's
--   figure of a whole day (`day`: Google's daily series), the one for that day, on the
--   network's own date whatever the timezone;
-- - `posts_published` counts the account's deliveries published that day.
-- Snapshots no longer made are deleted; the others are written only where their value
-- changed, keeping their ids, so running it again changes nothing. A new snapshot's id is
-- made from its account, metric and day, not drawn at random: the embedded PostgreSQL
-- reads /dev/urandom afresh for every gen_random_uuid().
-- `kinds` are the metrics the workspace has snapshots of, found one by one in the index
-- (a loose scan): the index leads with the metric, so the DELETE looks for the range's
-- days under each, instead of reading every snapshot of the workspace's history.
WITH RECURSIVE kinds (metric) AS (
    SELECT min(s.metric) FROM analytics_snapshots s
    WHERE s.workspace_id = crier_current_workspace()
    UNION ALL
    SELECT (SELECT min(s.metric) FROM analytics_snapshots s
            WHERE s.workspace_id = crier_current_workspace() AND s.metric > k.metric)
    FROM kinds k WHERE k.metric IS NOT NULL
), bounds AS (
    SELECT w.timezone AS tz,
           CAST(CAST(:first AS date) AS timestamp) AT TIME ZONE w.timezone AS starts,
           CAST(CAST(:last AS date) + 1 AS timestamp) AT TIME ZONE w.timezone AS ends
    FROM workspaces w WHERE w.id = crier_current_workspace()
), grown AS (
    SELECT o.social_account_id, o.metric,
           CAST(o.observed_at AT TIME ZONE b.tz AS date) AS day, sum(o.delta) AS value
    FROM metric_observations o, bounds b
    WHERE o.workspace_id = crier_current_workspace() AND o.delivery_id IS NOT NULL
      AND o.observed_at >= b.starts AND o.observed_at < b.ends
    GROUP BY 1, 2, 3
), levels AS (
    SELECT DISTINCT ON (o.social_account_id, o.metric, day)
           o.social_account_id, o.metric,
           CAST(o.observed_at AT TIME ZONE b.tz AS date) AS day, o.value
    FROM metric_observations o, bounds b
    WHERE o.workspace_id = crier_current_workspace() AND o.delivery_id IS NULL
      AND o.day IS NULL AND o.observed_at >= b.starts AND o.observed_at < b.ends
    ORDER BY o.social_account_id, o.metric, day, o.observed_at DESC
), daily AS (
    SELECT o.social_account_id, o.metric, o.day, o.value
    FROM metric_observations o
    WHERE o.workspace_id = crier_current_workspace() AND o.day IS NOT NULL
      AND o.day BETWEEN CAST(:first AS date) AND CAST(:last AS date)
), published AS (
    SELECT d.social_account_id, CAST(d.published_at AT TIME ZONE b.tz AS date) AS day,
           CAST(count(*) AS double precision) AS value
    FROM deliveries d, bounds b
    WHERE d.workspace_id = crier_current_workspace() AND d.status = 'published'
      AND d.published_at >= b.starts AND d.published_at < b.ends
    GROUP BY d.social_account_id, 2
), made AS (
    SELECT social_account_id, metric, day, value FROM grown
    UNION ALL
    SELECT social_account_id, metric, day, value FROM levels
    UNION ALL
    SELECT social_account_id, metric, day, value FROM daily
    UNION ALL
    SELECT social_account_id, 'posts_published', day, value FROM published
), removed AS (
    DELETE FROM analytics_snapshots s
    WHERE s.workspace_id = crier_current_workspace()
      AND s.metric IN (SELECT k.metric FROM kinds k WHERE k.metric IS NOT NULL)
      AND s.date BETWEEN CAST(:first AS date) AND CAST(:last AS date)
      AND NOT EXISTS (
          SELECT FROM made m
          WHERE m.social_account_id = s.social_account_id AND m.metric = s.metric
            AND m.day = s.date
      )
    RETURNING 1
), written AS (
    INSERT INTO analytics_snapshots AS s
        (workspace_id, id, social_account_id, metric, value, date, created_at, updated_at)
    SELECT crier_current_workspace(),
           CAST(md5(concat_ws('/', crier_current_workspace(), m.social_account_id, m.metric,
                               m.day)) AS uuid),
           m.social_account_id, m.metric, m.value, m.day, :now, :now
    FROM made m
    ON CONFLICT (workspace_id, social_account_id, metric, date)
    DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at
    WHERE s.value IS DISTINCT FROM EXCLUDED.value
    RETURNING 1
)
SELECT (SELECT count(*) FROM made) AS made,
       (SELECT count(*) FROM written) AS written,
       (SELECT count(*) FROM removed) AS removed

-- name: open_rollup
-- The workspace's days get a rollup, due at once, unless they have one.
INSERT INTO analytics_rollups (workspace_id, id, next_run_at)
VALUES (crier_current_workspace(), gen_random_uuid(), :now)
ON CONFLICT (workspace_id) DO NOTHING

-- name: touch_day
-- An observation made at :at arrived: if its day (in the workspace timezone) was already
-- aggregated, the rollup does it again, by :soon at the latest.
UPDATE analytics_rollups r
SET dirty_from = least(coalesce(r.dirty_from, t.day), t.day),
    next_run_at = least(r.next_run_at, :soon), updated_at = :now
FROM (
    SELECT CAST(:at AT TIME ZONE w.timezone AS date) AS day
    FROM workspaces w WHERE w.id = crier_current_workspace()
) AS t
WHERE r.workspace_id = crier_current_workspace() AND r.rebuilt_through >= t.day

-- name: touch_days
-- A network revised its figures of whole days from :first on: if that day was already
-- aggregated, the rollup does it again, by :soon at the latest.
UPDATE analytics_rollups r
SET dirty_from = least(coalesce(r.dirty_from, CAST(:first AS date)), CAST(:first AS date)),
    next_run_at = least(r.next_run_at, :soon), updated_at = :now
WHERE r.workspace_id = crier_current_workspace() AND r.rebuilt_through >= CAST(:first AS date)

-- name: observe_days
-- Keep the network's figures of whole days (:days, :metrics and :values side by side) for
-- the account :account_id, observed at :at: one per metric and day, replacing the one kept
-- before when the network revised it. The earliest day whose figure is new or changed
-- (NULL: none).
WITH kept AS (
    INSERT INTO metric_observations AS o
        (workspace_id, id, social_account_id, delivery_id, metric, value, observed_at, day)
    SELECT crier_current_workspace(), gen_random_uuid(), :account_id, NULL, n.metric,
           n.value, :at, n.day
    FROM unnest(CAST(:days AS date[]), CAST(:metrics AS text[]),
                CAST(:values AS double precision[])) AS n (day, metric, value)
    ON CONFLICT (workspace_id, day, social_account_id, metric) WHERE day IS NOT NULL
    DO UPDATE SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at
    WHERE o.value IS DISTINCT FROM EXCLUDED.value
    RETURNING o.day
)
SELECT min(day) FROM kept

-- name: due_rollups
-- Workspaces whose rollup is due and that no worker holds, the longest
-- due first. Runs as crier_scheduler.
SELECT workspace_id FROM analytics_rollups
WHERE next_run_at <= :now AND (leased_until IS NULL OR leased_until <= :now)
ORDER BY next_run_at
LIMIT :limit

-- name: first_observed_day
-- The day of the workspace's first observation in its timezone :tz, or the first day a
-- network's daily figure is for, whichever is earlier (NULL: none yet).
SELECT least(
    (SELECT CAST(min(observed_at) AT TIME ZONE CAST(:tz AS text) AS date)
     FROM metric_observations WHERE workspace_id = crier_current_workspace()),
    (SELECT min(day) FROM metric_observations
     WHERE workspace_id = crier_current_workspace() AND day IS NOT NULL)
)

-- name: redo_every_day
-- The workspace's timezone changed: its rollup does every day again, now, in the new
-- days (from the day before the earliest of its snapshots and its observations).
UPDATE analytics_rollups r
SET dirty_from = d.first, next_run_at = :now, updated_at = :now
FROM (
    SELECT least(
        (SELECT min(s.date) FROM analytics_snapshots s
         WHERE s.workspace_id = crier_current_workspace()),
        (SELECT CAST(min(o.observed_at) AT TIME ZONE w.timezone AS date)
         FROM metric_observations o JOIN workspaces w ON w.id = o.workspace_id
         WHERE o.workspace_id = crier_current_workspace()
         GROUP BY w.timezone),
        (SELECT min(o.day) FROM metric_observations o
         WHERE o.workspace_id = crier_current_workspace() AND o.day IS NOT NULL)
    ) - 1 AS first
) AS d
WHERE r.workspace_id = crier_current_workspace() AND d.first IS NOT NULL

-- name: snapshot_sums
-- The snapshots of the accounts :accounts (NULL: every account) and metrics :metrics
-- from :first to :last, added up per metric and period (:unit: day, week or month): a
-- post figure's growth; an account figure's level, when a period is a day (one level per
-- account and day).
SELECT s.metric, CAST(date_trunc(:unit, CAST(s.date AS timestamp)) AS date) AS period,
       sum(s.value) AS value
FROM analytics_snapshots s
WHERE s.workspace_id = crier_current_workspace()
  AND s.metric = ANY(CAST(:metrics AS text[]))
  AND s.date BETWEEN CAST(:first AS date) AND CAST(:last AS date)
  AND (CAST(:accounts AS uuid[]) IS NULL
       OR s.social_account_id = ANY(CAST(:accounts AS uuid[])))
GROUP BY 1, 2

-- name: snapshot_last_levels
-- For account figures :metrics over weeks or months (:unit): each account's last level
-- in the period, added up over the accounts :accounts (NULL: every account).
SELECT metric, period, sum(last) AS value
FROM (
    SELECT s.metric, CAST(date_trunc(:unit, CAST(s.date AS timestamp)) AS date) AS period,
           (array_agg(s.value ORDER BY s.date DESC))[1] AS last
    FROM analytics_snapshots s
    WHERE s.workspace_id = crier_current_workspace()
      AND s.metric = ANY(CAST(:metrics AS text[]))
      AND s.date BETWEEN CAST(:first AS date) AND CAST(:last AS date)
      AND (CAST(:accounts AS uuid[]) IS NULL
           OR s.social_account_id = ANY(CAST(:accounts AS uuid[])))
    GROUP BY 1, 2, s.social_account_id
) AS per_account
GROUP BY 1, 2

-- name: top_posts
-- The posts with a delivery to :accounts published from :starts to :ends, ranked by the
-- sum over their deliveries of each one's latest :metric (ties: the earlier post first);
-- at most :limit, each row one of their deliveries with its own latest value.
WITH latest AS (
    SELECT DISTINCT ON (o.delivery_id) o.delivery_id, o.value, o.observed_at
    FROM metric_observations o
    JOIN deliveries d ON d.workspace_id = o.workspace_id AND d.id = o.delivery_id
    WHERE o.workspace_id = crier_current_workspace() AND o.metric = :metric
      AND d.social_account_id = ANY(CAST(:accounts AS uuid[]))
      AND d.published_at >= :starts AND d.published_at < :ends
    ORDER BY o.delivery_id, o.observed_at DESC
), ranked AS (
    SELECT d.post_id, sum(l.value) AS value, min(d.published_at) AS published_at
    FROM latest l
    JOIN deliveries d ON d.workspace_id = crier_current_workspace() AND d.id = l.delivery_id
    GROUP BY d.post_id
    ORDER BY value DESC, published_at, d.post_id
    LIMIT :limit
)
SELECT r.post_id, r.value AS post_value, r.published_at AS post_published_at,
       p.payload ->> 'text' AS text, d.id AS delivery_id, d.social_account_id, d.platform,
       d.permalink, d.published_at, l.value, l.observed_at
FROM ranked r
JOIN posts p ON p.workspace_id = crier_current_workspace() AND p.id = r.post_id
JOIN deliveries d ON d.workspace_id = crier_current_workspace() AND d.post_id = r.post_id
JOIN latest l ON l.delivery_id = d.id
ORDER BY r.value DESC, r.published_at, r.post_id, d.id

-- name: view_in_context
-- The saved view :id, with its accounts now (`in_scope`, ids ascending), which of the
-- accounts it names are the workspace's (`known`), and the workspace's snapshot
-- generation, as `reading_context` gives them.
SELECT v.*,
       ARRAY(
           SELECT a.id FROM social_accounts a
           WHERE a.workspace_id = v.workspace_id
             AND (v.social_account_ids IS NULL OR a.id = ANY(v.social_account_ids))
             AND (v.platforms IS NULL OR a.platform = ANY(v.platforms))
           ORDER BY a.id
       ) AS in_scope,
       ARRAY(
           SELECT a.id FROM social_accounts a
           WHERE a.workspace_id = v.workspace_id AND a.id = ANY(v.social_account_ids)
       ) AS known,
       coalesce(
           (SELECT g.generation FROM analytics_generations g
            WHERE g.workspace_id = v.workspace_id),
           0
       ) AS generation
FROM analytics_views v
WHERE v.workspace_id = crier_current_workspace() AND v.id = :id

-- name: reading_context
-- What an answer read from the snapshots rests on besides them: the workspace's accounts
-- among :ids (all when NULL) on :platforms (all when NULL), ids ascending; which of :ids
-- are the workspace's (empty when NULL); and its snapshot generation (0: none written).
SELECT ARRAY(
           SELECT id FROM social_accounts
           WHERE workspace_id = crier_current_workspace()
             AND (CAST(:ids AS uuid[]) IS NULL OR id = ANY(CAST(:ids AS uuid[])))
             AND (CAST(:platforms AS text[]) IS NULL
                  OR platform = ANY(CAST(:platforms AS text[])))
           ORDER BY id
       ) AS in_scope,
       ARRAY(
           SELECT id FROM social_accounts
           WHERE workspace_id = crier_current_workspace() AND id = ANY(CAST(:ids AS uuid[]))
       ) AS known,
       coalesce(
           (SELECT generation FROM analytics_generations
            WHERE workspace_id = crier_current_workspace()),
           0
       ) AS generation

-- name: best_times
-- The account's deliveries published from :since to :young, each with its engagements at
-- a week old (the last observed within 7 days of its publishing), grouped by the weekday
-- (ISO: 1 is Monday) and hour of their publishing in the workspace timezone.
WITH zone AS (
    SELECT timezone AS tz FROM workspaces WHERE id = crier_current_workspace()
), measured AS (
    SELECT d.published_at,
           (SELECT o.value FROM metric_observations o
            WHERE o.workspace_id = crier_current_workspace() AND o.delivery_id = d.id
              AND o.metric = 'engagements'
              AND o.observed_at <= d.published_at + interval '7 days'
            ORDER BY o.observed_at DESC LIMIT 1) AS value
    FROM deliveries d
    WHERE d.workspace_id = crier_current_workspace() AND d.social_account_id = :account_id
      AND d.status = 'published' AND d.published_at >= :since AND d.published_at <= :young
)
SELECT CAST(extract(isodow FROM m.published_at AT TIME ZONE z.tz) AS int) AS weekday,
       CAST(extract(hour FROM m.published_at AT TIME ZONE z.tz) AS int) AS hour,
       count(*) AS posts, avg(m.value) AS mean,
       min(m.published_at) AS first_at, max(m.published_at) AS last_at
FROM measured m, zone z
WHERE m.value IS NOT NULL
GROUP BY 1, 2

-- name: observe_post
-- Keep what the network reported at :at for the delivery :delivery_id (:metrics and
-- :values side by side), each figure with how much it grew since the delivery's previous
-- observation of it (`delta`; from 0 for the first). An observation already kept for a
-- later time (one that arrived first) then counts its growth from this one.
WITH new AS (
    SELECT * FROM unnest(CAST(:metrics AS text[]), CAST(:values AS double precision[]))
        AS n (metric, value)
), later AS (
    UPDATE metric_observations o SET delta = o.value - n.value
    FROM new n
    WHERE o.workspace_id = crier_current_workspace() AND o.delivery_id = :delivery_id
      AND o.metric = n.metric
      AND o.observed_at = (
          SELECT min(x.observed_at) FROM metric_observations x
          WHERE x.workspace_id = crier_current_workspace() AND x.delivery_id = :delivery_id
            AND x.metric = n.metric AND x.observed_at > :at
      )
)
INSERT INTO metric_observations
    (workspace_id, id, social_account_id, delivery_id, metric, value, delta, observed_at)
SELECT crier_current_workspace(), gen_random_uuid(), :account_id, :delivery_id, n.metric,
       n.value,
       n.value - coalesce(
           (SELECT p.value FROM metric_observations p
            WHERE p.workspace_id = crier_current_workspace() AND p.delivery_id = :delivery_id
              AND p.metric = n.metric AND p.observed_at <= :at
            ORDER BY p.observed_at DESC LIMIT 1),
           0),
       :at
FROM new n

-- name: export_rows
-- The snapshots of the accounts :accounts (NULL: every account) and metrics :metrics
-- from :first to :last, one row per account, metric and period (:unit: day, week or
-- month): a post figure's growth added up over the period; an account figure's (:levels)
-- last level in it. Beside each, the figure of the period it is compared with, from
-- :before_first to :before_last (NULL: no comparison), a compared period's first day
-- :pairs_before standing beside the shown one's :pairs_shown. Account by account, then
-- metric, then period; periods with no figure on either side are left out.
WITH figures AS (
    SELECT true AS shown, s.social_account_id, s.metric, s.date, s.value
    FROM analytics_snapshots s
    WHERE s.workspace_id = crier_current_workspace()
      AND s.metric = ANY(CAST(:metrics AS text[]))
      AND s.date BETWEEN CAST(:first AS date) AND CAST(:last AS date)
      AND (CAST(:accounts AS uuid[]) IS NULL
           OR s.social_account_id = ANY(CAST(:accounts AS uuid[])))
    UNION ALL
    SELECT false, s.social_account_id, s.metric, s.date, s.value
    FROM analytics_snapshots s
    WHERE s.workspace_id = crier_current_workspace()
      AND s.metric = ANY(CAST(:metrics AS text[]))
      AND s.date BETWEEN CAST(:before_first AS date) AND CAST(:before_last AS date)
      AND (CAST(:accounts AS uuid[]) IS NULL
           OR s.social_account_id = ANY(CAST(:accounts AS uuid[])))
), periods AS (
    -- a day is its own period: one snapshot per account, metric and day
    SELECT shown, social_account_id, metric, date AS period, value
    FROM figures WHERE CAST(:unit AS text) = 'day'
    UNION ALL
    SELECT shown, social_account_id, metric,
           CAST(date_trunc(:unit, CAST(date AS timestamp)) AS date) AS period,
           CASE WHEN metric = ANY(CAST(:levels AS text[]))
                THEN (array_agg(value ORDER BY date DESC))[1]
                ELSE sum(value) END AS value
    FROM figures WHERE CAST(:unit AS text) <> 'day'
    GROUP BY 1, 2, 3, 4
), compared AS (
    SELECT b.social_account_id, b.metric, p.shown AS period, b.value
    FROM periods b
    JOIN unnest(CAST(:pairs_shown AS date[]), CAST(:pairs_before AS date[])) AS p (shown, before)
      ON p.before = b.period
    WHERE NOT b.shown
)
SELECT coalesce(c.social_account_id, b.social_account_id) AS social_account_id,
       coalesce(c.metric, b.metric) AS metric, coalesce(c.period, b.period) AS period,
       c.value, b.value AS previous_value
FROM (SELECT * FROM periods WHERE shown) AS c
FULL JOIN compared b
  ON b.social_account_id = c.social_account_id AND b.metric = c.metric AND b.period = c.period
ORDER BY 1, 2, 3

-- name: export_accounts
-- The workspace's accounts among :ids (all when NULL), as an export names them.
SELECT id, platform, handle, display_name FROM social_accounts
WHERE workspace_id = crier_current_workspace()
  AND (CAST(:ids AS uuid[]) IS NULL OR id = ANY(CAST(:ids AS uuid[])))
ORDER BY id

-- name: waiting_exports
-- Exports of any workspace that wait for a worker (new, held back after a failure until
-- `leased_until`, or held by a worker whose lease ran out), the oldest first. Runs as
-- crier_scheduler.
SELECT workspace_id, id FROM analytics_exports
WHERE status IN ('queued', 'running')
  AND (leased_until IS NULL OR leased_until <= :now)
ORDER BY created_at
LIMIT :limit

-- name: expired_exports
-- Exports of any workspace whose file was kept long enough. Runs as crier_scheduler.
SELECT workspace_id, id FROM analytics_exports
WHERE status = 'ready' AND expires_at <= :now
ORDER BY expires_at
LIMIT :limit

-- name: take_export
-- The export :id for the worker :worker until :until, if it waits for one (as
-- crier_app, in its workspace).
UPDATE analytics_exports
SET status = 'running', leased_by = :worker, leased_until = :until,
    attempts = attempts + 1, started_at = coalesce(started_at, :now), progress = 0,
    rows_written = 0, updated_at = :now
WHERE workspace_id = crier_current_workspace() AND id = :id
  AND status IN ('queued', 'running')
  AND (leased_until IS NULL OR leased_until <= :now)
RETURNING *

-- name: export_progress
-- How far the worker :worker got with the export :id, its lease renewed; no row when
-- the export is no longer its own (deleted, or taken over).
UPDATE analytics_exports
SET progress = :progress, rows_written = :rows, leased_until = :until, updated_at = :now
WHERE workspace_id = crier_current_workspace() AND id = :id
  AND leased_by = :worker AND status = 'running'
RETURNING id
