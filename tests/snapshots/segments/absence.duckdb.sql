SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
      SELECT cust_no FROM (
        SELECT user_id AS cust_no, "timestamp" AS ts FROM events WHERE "timestamp" > TIMESTAMPTZ '2026-11-23 08:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-24 07:50:00+00:00' AND "event" = 'view_wealth'
        EXCEPT
        SELECT a.cust_no, a.ts FROM (SELECT user_id AS cust_no, "timestamp" AS ts FROM events WHERE "timestamp" > TIMESTAMPTZ '2026-11-23 08:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-24 07:50:00+00:00' AND "event" = 'view_wealth') AS a JOIN (SELECT user_id AS cust_no, "timestamp" AS ts FROM events WHERE "timestamp" > TIMESTAMPTZ '2026-11-23 08:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-24 08:00:00+00:00' AND "event" = 'buy_wealth') AS x ON x.cust_no = a.cust_no WHERE x.ts > a.ts AND x.ts <= a.ts + INTERVAL 600 SECOND
      ) AS unanswered
    )
  AND NOT coalesce(c.fraud_flag = true, false)
