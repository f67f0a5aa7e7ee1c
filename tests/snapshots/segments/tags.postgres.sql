SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
      SELECT cust_no FROM customer_tags
      WHERE "tag" = 'rfm' AND "value" IN ('champion', 'loyal')
    )
  AND NOT coalesce(c.cust_no IN (
      SELECT cust_no FROM customer_tags
      WHERE "tag" = 'churn_risk'
    ), false)
  AND c.cust_no IN (
      SELECT cust_no FROM customer_profile
      WHERE payroll_customer = true
    )
