WITH scanned AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= toDateTime64('2026-11-02 00:00:00.000000', 6, 'UTC')
    AND "timestamp" < toDateTime64('2026-11-24 00:00:00.000000', 6, 'UTC')
    AND user_id IS NOT NULL
    AND "event" IN ('login', 'view_wealth')
),
firsts AS (
  SELECT user_id AS cust_no, min("timestamp") AS t0 FROM scanned
  WHERE "event" = 'view_wealth' AND "timestamp" < toDateTime64('2026-11-09 00:00:00.000000', 6, 'UTC')
  GROUP BY user_id
),
cohorts AS (
  SELECT cust_no, t0, '上海' AS cohort FROM firsts WHERE cust_no IN (
    SELECT c.cust_no
    FROM customers AS c
    WHERE c.city = '上海'
  )
  UNION ALL SELECT cust_no, t0, 'VIP' AS cohort FROM firsts WHERE cust_no IN (
    SELECT c.cust_no
    FROM customers AS c
    WHERE c.vip_level = 'gold'
  )
),
returns AS (
  SELECT DISTINCT c.cust_no, c.cohort, intDiv(dateDiff('day', toDate32(c.t0, 'UTC'), toDate32(b.ts, 'UTC')), 7) AS period
  FROM cohorts AS c
  JOIN (SELECT user_id AS cust_no, "timestamp" AS ts FROM scanned WHERE "event" = 'login') AS b ON b.cust_no = c.cust_no
  WHERE b.ts >= c.t0 AND intDiv(dateDiff('day', toDate32(c.t0, 'UTC'), toDate32(b.ts, 'UTC')), 7) <= 2
),
facts AS (
  SELECT cust_no, cohort, -1 AS period FROM cohorts
  UNION ALL SELECT cust_no, cohort, period FROM returns
)
SELECT cohort, period, count(*) AS customers
FROM facts
GROUP BY cohort, period
ORDER BY cohort, period
SETTINGS join_use_nulls = 1
