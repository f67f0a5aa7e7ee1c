WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= toDateTime64('2026-11-02 00:00:00.000000', 6, 'UTC')
    AND "timestamp" < toDateTime64('2026-11-09 00:00:00.000000', 6, 'UTC')
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
          WHERE "timestamp" > toDateTime64('2026-10-10 00:00:00.000000', 6, 'UTC') AND "timestamp" <= toDateTime64('2026-11-09 00:00:00.000000', 6, 'UTC') AND "event" = 'login'
        )
  )
    AND "event" = 'buy_wealth' AND toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) >= 1000
),
facts AS (
  SELECT e.user_id AS cust_no, formatDateTime(toStartOfDay(toTimeZone(e."timestamp", 'Asia/Shanghai')), '%Y-%m-%d') AS bucket, toString(g.value) AS grp, toFloat64OrNull(JSONExtract(e.properties, 'amount', 'Nullable(String)')) AS v, JSONExtract(e.properties, 'amount', 'Nullable(String)') AS raw
  FROM matching AS e
  LEFT JOIN (SELECT cust_no, city AS value FROM customers) AS g ON g.cust_no = e.user_id
)
SELECT bucket, grp, sum(toFloat64(v)) AS value, count(raw) AS held, count(v) AS numbers
FROM facts
GROUP BY bucket, grp
ORDER BY bucket, grp
SETTINGS join_use_nulls = 1
