SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
      SELECT cust_no FROM customer_profile
      WHERE (age >= 30 AND aum BETWEEN 50000 AND 5000000 AND NOT coalesce(vip_tier IS NULL, false))
    )
  AND c.city IN ('上海', '杭州')
  AND c.open_date >= DATE '2025-11-24'
  AND c.risk_tolerance <> 'C1'
