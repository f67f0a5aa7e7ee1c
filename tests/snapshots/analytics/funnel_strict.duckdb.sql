WITH scanned AS (
  SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY "timestamp", message_id) AS rn FROM (SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-10 00:00:00+00:00'
    AND user_id IS NOT NULL) AS scanned
),
s1 AS (
  SELECT user_id AS cust_no, "timestamp" AS ts, rn FROM scanned WHERE "event" = 'view_wealth' AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
),
s2 AS (
  SELECT user_id AS cust_no, "timestamp" AS ts, rn FROM scanned WHERE "event" = 'use_yield_calculator'
),
s3 AS (
  SELECT user_id AS cust_no, "timestamp" AS ts, rn FROM scanned WHERE "event" = 'buy_wealth'
),
c1 AS (
  SELECT cust_no, ts AS t0, ts AS t1, rn AS n1 FROM s1
),
c2 AS (
  SELECT c.cust_no, c.t0, e.ts AS t2, e.rn AS n2
  FROM c1 AS c
  JOIN s2 AS e ON e.cust_no = c.cust_no AND e.rn = c.n1 + 1
  WHERE e.ts <= c.t0 + INTERVAL 86400 SECOND
),
c3 AS (
  SELECT c.cust_no, c.t0, e.ts AS t3, e.rn AS n3
  FROM c2 AS c
  JOIN s3 AS e ON e.cust_no = c.cust_no AND e.rn = c.n2 + 1
  WHERE e.ts <= c.t0 + INTERVAL 86400 SECOND
),
reached AS (
  SELECT cust_no, 1 AS step, min(epoch(t1) - epoch(t0)) AS secs FROM c1 GROUP BY cust_no
  UNION ALL SELECT cust_no, 2 AS step, min(epoch(t2) - epoch(t0)) AS secs FROM c2 GROUP BY cust_no
  UNION ALL SELECT cust_no, 3 AS step, min(epoch(t3) - epoch(t0)) AS secs FROM c3 GROUP BY cust_no
),
firsts AS (
  SELECT s.cust_no, CAST(g.value AS VARCHAR) AS grp
  FROM (SELECT DISTINCT cust_no FROM s1) AS s
  LEFT JOIN (SELECT cust_no, city AS value FROM customers) AS g ON g.cust_no = s.cust_no
),
facts AS (
  SELECT r.cust_no, f.grp, r.step, r.secs FROM reached AS r JOIN firsts AS f ON f.cust_no = r.cust_no
)
SELECT grp, step, count(*) AS customers, quantile_cont(secs, 0.5) AS median_seconds
FROM facts
GROUP BY grp, step
ORDER BY grp, step
