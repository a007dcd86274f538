"""SQL text of the analyst views (``analytics.*``) and the point-in-time macro; run by views.py."""

from __future__ import annotations

VIEW_SQL: dict[str, str] = {
    "analytics.customer_360": """
        WITH contacts AS (
            SELECT customer_id, count(*) AS contact_count FROM golden.contacts GROUP BY 1),
        addresses AS (
            SELECT customer_id, count(*) AS address_count FROM golden.addresses GROUP BY 1),
        txns AS (
            SELECT customer_id, count(*) AS transaction_count,
                   sum(txn_amount) AS transaction_total,
                   min(txn_date) AS first_transaction_date,
                   max(txn_date) AS last_transaction_date
            FROM golden.transactions GROUP BY 1),
        touches AS (
            SELECT customer_id, count(*) AS interaction_count,
                   max(interaction_date) AS last_interaction_date,
                   avg(satisfaction) AS avg_satisfaction
            FROM golden.interactions GROUP BY 1),
        sources AS (
            SELECT customer_id,
                   string_agg(DISTINCT source_system, ',' ORDER BY source_system) AS source_systems
            FROM golden.crosswalk GROUP BY 1)
        SELECT c.*,
               s.source_systems,
               coalesce(ct.contact_count, 0) AS contact_count,
               coalesce(a.address_count, 0) AS address_count,
               coalesce(t.transaction_count, 0) AS transaction_count,
               coalesce(t.transaction_total, 0) AS transaction_total,
               t.first_transaction_date,
               t.last_transaction_date,
               coalesce(i.interaction_count, 0) AS interaction_count,
               i.last_interaction_date,
               i.avg_satisfaction
        FROM golden.customers c
        LEFT JOIN sources s USING (customer_id)
        LEFT JOIN contacts ct USING (customer_id)
        LEFT JOIN addresses a USING (customer_id)
        LEFT JOIN txns t USING (customer_id)
        LEFT JOIN touches i USING (customer_id)
    """,
    "analytics.customers_by_region": """
        SELECT coalesce(province, '(unknown)') AS province,
               coalesce(city, '(unknown)') AS city,
               count(*) AS customers,
               count(*) FILTER (WHERE customer_type = 'enterprise') AS enterprises,
               count(*) FILTER (WHERE customer_type = 'individual') AS individuals,
               count(*) FILTER (WHERE lifecycle IN ('new', 'active')) AS active_customers,
               count(*) FILTER (WHERE tier = 'A') AS tier_a_customers,
               sum(revenue_12m) AS revenue_12m
        FROM golden.customers
        GROUP BY ALL
    """,
    "analytics.tier_summary": """
        SELECT tier,
               count(*) AS customers,
               count(*) / sum(count(*)) OVER () AS share,
               sum(revenue_12m) AS revenue_12m,
               avg(revenue_12m) AS avg_revenue_12m,
               count(*) FILTER (WHERE lifecycle IN ('new', 'active')) AS active_customers
        FROM golden.customers
        GROUP BY tier
    """,
    "analytics.lifecycle_summary": """
        SELECT lifecycle,
               count(*) AS customers,
               count(*) / sum(count(*)) OVER () AS share,
               count(*) FILTER (WHERE is_returning) AS returning_customers,
               sum(revenue_12m) AS revenue_12m
        FROM golden.customers
        GROUP BY lifecycle
    """,
    "analytics.industry_summary": """
        SELECT coalesce(industry_code, '?') AS industry_code,
               coalesce(industry, '(unknown)') AS industry,
               count(*) AS customers,
               sum(revenue_12m) AS revenue_12m
        FROM golden.customers
        GROUP BY ALL
    """,
    "analytics.customer_timeline": """
        SELECT customer_id, txn_date AS event_date, 'transaction' AS event_kind,
               txn_id AS event_id, source_system, txn_type AS detail, txn_amount AS amount,
               NULL::VARCHAR AS outcome, NULL::DOUBLE AS satisfaction
        FROM golden.transactions
        UNION ALL
        SELECT customer_id, interaction_date, 'interaction', interaction_id, source_system,
               concat_ws(' / ', channel, subject), NULL::DOUBLE, outcome, satisfaction
        FROM golden.interactions
    """,
    "analytics.customer_changes": """
        SELECT customer_id, valid_from AS changed_on, change_type, change_reason,
               changed_attributes, run_id
        FROM golden.customers_history
        UNION ALL
        SELECT customer_id, valid_to, 'closed', closed_reason, NULL, closed_run_id
        FROM golden.customers_history
        WHERE valid_to IS NOT NULL AND closed_reason NOT LIKE 'changed:%'
    """,
    "analytics.attribute_sources": """
        SELECT l.customer_id, c.customer_name, l.attribute, l.value, l.source_system,
               l.source_record_id, l.record_date, l.rule, l.candidates
        FROM golden.attribute_lineage l
        JOIN golden.customers c USING (customer_id)
    """,
    "analytics.dormant_archive": """
        SELECT customer_id, customer_name, customer_type, tier, last_business_date,
               date_diff('day', last_business_date, current_date) AS days_since_business
        FROM golden.customers
        WHERE lifecycle = 'dormant'
    """,
}

# The documented point-in-time query: what did we know about a customer on a date?
AS_OF_SQL = """
    SELECT * FROM golden.customers_history
    WHERE customer_id = ? AND valid_from <= ? AND (valid_to IS NULL OR ? < valid_to)
    ORDER BY valid_from DESC
    LIMIT 1
"""

AS_OF_MACRO_SQL = """
    CREATE OR REPLACE MACRO analytics.customer_as_of(p_customer_id, p_as_of) AS TABLE
    SELECT * FROM golden.customers_history
    WHERE customer_id = p_customer_id
      AND valid_from <= CAST(p_as_of AS DATE)
      AND (valid_to IS NULL OR CAST(p_as_of AS DATE) < valid_to)
"""

AS_OF_ALL_MACRO_SQL = """
    CREATE OR REPLACE MACRO analytics.customers_as_of(p_as_of) AS TABLE
    SELECT * FROM golden.customers_history
    WHERE valid_from <= CAST(p_as_of AS DATE)
      AND (valid_to IS NULL OR CAST(p_as_of AS DATE) < valid_to)
"""
