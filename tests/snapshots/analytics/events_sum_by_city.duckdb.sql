WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL
    AND user_id IN (
    SELECT c.cust_no
    FROM customers AS c
    WHERE c.cust_no IN (
          SELECT cust_no FROM customer_profile
          WHERE age >= 30
        )
      AND c.cust_no IN (
          SELECT user_id FROM events
          WHERE "timestamp" > TIMESTAMPTZ '2026-10-10 00:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-09 00:00:00+00:00' AND "event" = 'login'
        )
  )
    AND "event" = 'buy_wealth' AND TRY_CAST(json_extract_string(properties, '$."amount"') AS DOUBLE) >= 1000
),
facts AS (
  SELECT e.user_id AS cust_no, strftime(date_trunc('day', timezone('Asia/Shanghai', e."timestamp")), '%Y-%m-%d') AS bucket, CAST(g.value AS VARCHAR) AS grp, TRY_CAST(json_extract_string(e.properties, '$."amount"') AS DOUBLE) AS v, json_extract_string(e.properties, '$."amount"') AS raw
  FROM matching AS e
  LEFT JOIN (SELECT cust_no, city AS value FROM customers) AS g ON g.cust_no = e.user_id
)
SELECT bucket, grp, sum(CAST(v AS DOUBLE)) AS value, count(raw) AS held, count(v) AS numbers
FROM facts
GROUP BY bucket, grp
ORDER BY bucket, grp
