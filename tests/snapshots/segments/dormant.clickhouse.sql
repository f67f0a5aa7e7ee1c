SELECT c.cust_no
FROM customers AS c
WHERE NOT coalesce(c.cust_no IN (
      SELECT user_id FROM events
      WHERE "timestamp" > toDateTime64('2026-08-26 08:00:00.000000', 6, 'UTC') AND "timestamp" <= toDateTime64('2026-11-24 08:00:00.000000', 6, 'UTC') AND "event" = 'login'
    ), false)
  AND c.status = 'active'
  AND c.cust_no IN (
      SELECT cust_no FROM customer_profile
      WHERE NOT coalesce((age IS NULL OR last_seen_at >= toDateTime64('2026-10-25 08:00:00.000000', 6, 'UTC')), false)
    )
