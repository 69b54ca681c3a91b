{#
    Every event tied from arrival to the invoice, per UTC day x customer x event type
    (architecture §5), from the counts int_events_counted_to_days keeps per key. A row's day
    is the event's own UTC day; a row whose timestamp cannot be read is counted on the day
    it was loaded (`undated_count`), and a missing customer or event type is reported as
    '(missing)'. Producer control totals are compared with the distinct
    events we received that carry the key (received - duplicate - undated). Thresholds are
    dbt vars (dbt_project.yml); status reasons list every rule that fired.
#}
with

events_counted as (

    select * from {{ ref('int_events_counted_to_days') }}

),

control_totals as (

    select * from {{ ref('stg_events__control_totals') }}
    where control_status = 'accepted'

),

producer_reported as (

    select
        report_date as reconciliation_date,
        customer_id,
        event_type,
        cast(sum(reported_count) as bigint) as producer_reported_count
    from control_totals
    group by 1, 2, 3

),

counts_joined as (

    select
        coalesce(events_counted.reconciliation_date, producer_reported.reconciliation_date)
            as reconciliation_date,
        coalesce(events_counted.customer_id, producer_reported.customer_id) as customer_id,
        coalesce(events_counted.event_type, producer_reported.event_type) as event_type,
        coalesce(events_counted.received_count, 0) as received_count,
        coalesce(events_counted.accepted_count, 0) as accepted_count,
        coalesce(events_counted.duplicate_count, 0) as duplicate_count,
        coalesce(events_counted.quarantined_count, 0) as quarantined_count,
        coalesce(events_counted.undated_count, 0) as undated_count,
        coalesce(events_counted.reversal_count, 0) as reversal_count,
        coalesce(events_counted.billed_count, 0) as billed_count,
        coalesce(events_counted.reversed_count, 0) as reversed_count,
        coalesce(events_counted.no_subscription_count, 0) as no_subscription_count,
        coalesce(events_counted.not_invoiced_count, 0) as not_invoiced_count,
        producer_reported.producer_reported_count
    from events_counted
    full outer join producer_reported
        on
            events_counted.reconciliation_date = producer_reported.reconciliation_date
            and events_counted.customer_id = producer_reported.customer_id
            and events_counted.event_type = producer_reported.event_type

),

deltas as (

    select
        *,
        received_count - accepted_count - duplicate_count - quarantined_count as routing_delta,
        received_count - duplicate_count - undated_count - producer_reported_count
            as producer_delta,
        accepted_count - reversal_count - billed_count - reversed_count
        - no_subscription_count - not_invoiced_count as billing_delta
    from counts_joined

),

rules_checked as (

    select
        *,
        routing_delta != 0 as fails_routing,
        billing_delta != 0 as fails_billing,
        abs(producer_delta) > producer_reported_count
        * cast('{{ var("reconciliation_fail_delta_ratio") }}' as decimal(9, 6))
            as fails_producer,
        producer_delta != 0 as warns_producer,
        no_subscription_count > 0 as warns_no_subscription,
        received_count >= {{ var('reconciliation_min_events_for_share') }}
        and quarantined_count > received_count
        * cast('{{ var("reconciliation_warn_quarantine_share") }}' as decimal(9, 6))
            as warns_quarantine
    from deltas

),

reconciliation as (

    select
        ---------- ids
        strftime(reconciliation_date, '%Y-%m-%d') || ':' || customer_id || ':' || event_type
            as reconciliation_id,
        customer_id,
        event_type,
        ---------- status
        case
            when fails_routing or fails_billing or coalesce(fails_producer, false) then 'fail'
            when
                coalesce(warns_producer, false) or warns_no_subscription or warns_quarantine
                then 'warn'
            else 'ok'
        end as status,
        nullif(concat_ws(
            '; ',
            case when fails_routing then 'rows not routed exactly once' end,
            case when fails_billing then 'accepted events not accounted for' end,
            case
                when fails_producer then 'producer count differs beyond tolerance'
                when warns_producer then 'producer count differs within tolerance'
            end,
            case when warns_no_subscription then 'usage without an active subscription' end,
            case when warns_quarantine then 'quarantine share above threshold' end
        ), '') as status_reason,
        ---------- counts
        received_count,
        accepted_count,
        duplicate_count,
        quarantined_count,
        undated_count,
        producer_reported_count,
        billed_count,
        reversal_count,
        reversed_count,
        no_subscription_count,
        not_invoiced_count,
        ---------- deltas
        routing_delta,
        producer_delta,
        billing_delta,
        ---------- dates
        reconciliation_date
    from rules_checked

)

select * from reconciliation
