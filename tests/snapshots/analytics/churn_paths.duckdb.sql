WITH scanned AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL
),
numbered AS (
  SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY "timestamp", message_id) AS rn FROM scanned
),
anchors AS (
  SELECT user_id AS cust_no, max(rn) AS rn0 FROM numbered
  WHERE user_id IN (
    SELECT user_id FROM (SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL) AS everything GROUP BY user_id HAVING max("timestamp") < TIMESTAMPTZ '2026-11-06 00:00:00+00:00'
  )
  GROUP BY user_id
),
facts AS (
  SELECT a.cust_no, e.rn - a.rn0 AS step, e."event" AS name
  FROM anchors AS a
  JOIN numbered AS e ON e.user_id = a.cust_no
  WHERE e.rn BETWEEN a.rn0 - 2 AND a.rn0
),
links AS (
  SELECT 'link' AS kind, f.step AS step, f.name AS source, t.name AS target, count(*) AS customers
  FROM facts AS f JOIN facts AS t ON t.cust_no = f.cust_no AND t.step = f.step + 1
  GROUP BY f.step, f.name, t.name
)
SELECT * FROM (
  SELECT 'node' AS kind, step, name AS source, CAST(NULL AS VARCHAR) AS target, count(*) AS customers FROM facts GROUP BY step, name
  UNION ALL SELECT kind, step, source, target, customers FROM links
) AS graph
ORDER BY kind, step, customers DESC, source, target
