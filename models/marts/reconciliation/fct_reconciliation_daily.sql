{#
    Every event tied from arrival to the invoice, per UTC day x customer x event type
    (architecture §5). A row's day is the event's own UTC day; a row whose timestamp cannot be read
    is counted on the day it was loaded (`undated_count`), and a missing customer or event
    type is reported as '(missing)'. Producer control totals are compared with the distinct
    events we received that carry the key (received - duplicate - undated). Thresholds are
    dbt vars (dbt_project.yml); status reasons list every rule that fired.
#}
with

routed_events as (

    {# Rows of a withdrawn file count as never received (DECISIONLOG D38): the producer's
       corrected resend is what it reports. #}
    select * from {{ ref('stg_events__routed_events') }}
    where event_status != 'withdrawn'

),

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}

),

events_priced as (

    select * from {{ ref('int_events_priced') }}

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

control_totals as (

    select * from {{ ref('stg_events__control_totals') }}
    where control_status = 'accepted'

),

events_received as (

    select
        coalesce(event_date, cast(loaded_at as date)) as reconciliation_date,
        coalesce(customer_id, '(missing)') as customer_id,
        coalesce(event_type, '(missing)') as event_type,
        count(*) as received_count,
        count(*) filter (where event_status = 'accepted') as accepted_count,
        count(*) filter (where event_status = 'duplicate') as duplicate_count,
        count(*) filter (where event_status = 'quarantined') as quarantined_count,
        count(*) filter (where event_date is null) as undated_count,
        count(*) filter (
            where event_status = 'accepted' and reverses_event_id is not null
        ) as reversal_count
    from routed_events
    group by 1, 2, 3

),

events_invoiced as (

    {# Priced in a subscription period that has an invoice (draft or finalized). #}
    select distinct events_priced.event_id
    from events_priced
    inner join subscription_periods
        on
            events_priced.subscription_id = subscription_periods.subscription_id
            and events_priced.billing_period_start = subscription_periods.billing_period_start

),

events_subscribed as (

    select distinct usage_events.event_id
    from usage_events
    inner join subscriptions
        on
            usage_events.customer_id = subscriptions.customer_id
            and {{ falls_within(
                'usage_events.event_date', 'subscriptions.starts_on', 'subscriptions.ends_on'
            ) }}

),

usage_classified as (

    select
        usage_events.event_date as reconciliation_date,
        usage_events.customer_id,
        usage_events.event_type,
        case
            when usage_events.reversed_by_event_id is not null then 'reversed'
            when events_invoiced.event_id is not null then 'billed'
            when events_subscribed.event_id is null then 'no_subscription'
            else 'not_invoiced'
        end as billing_outcome
    from usage_events
    left join events_invoiced
        on usage_events.event_id = events_invoiced.event_id
    left join events_subscribed
        on usage_events.event_id = events_subscribed.event_id

),

usage_billed as (

    select
        reconciliation_date,
        customer_id,
        event_type,
        count(*) filter (where billing_outcome = 'billed') as billed_count,
        count(*) filter (where billing_outcome = 'reversed') as reversed_count,
        count(*) filter (where billing_outcome = 'no_subscription') as no_subscription_count,
        count(*) filter (where billing_outcome = 'not_invoiced') as not_invoiced_count
    from usage_classified
    group by 1, 2, 3

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
        coalesce(events_received.reconciliation_date, producer_reported.reconciliation_date)
            as reconciliation_date,
        coalesce(events_received.customer_id, producer_reported.customer_id) as customer_id,
        coalesce(events_received.event_type, producer_reported.event_type) as event_type,
        coalesce(events_received.received_count, 0) as received_count,
        coalesce(events_received.accepted_count, 0) as accepted_count,
        coalesce(events_received.duplicate_count, 0) as duplicate_count,
        coalesce(events_received.quarantined_count, 0) as quarantined_count,
        coalesce(events_received.undated_count, 0) as undated_count,
        coalesce(events_received.reversal_count, 0) as reversal_count,
        producer_reported.producer_reported_count
    from events_received
    full outer join producer_reported
        on
            events_received.reconciliation_date = producer_reported.reconciliation_date
            and events_received.customer_id = producer_reported.customer_id
            and events_received.event_type = producer_reported.event_type

),

deltas as (

    select
        counts_joined.*,
        coalesce(usage_billed.billed_count, 0) as billed_count,
        coalesce(usage_billed.reversed_count, 0) as reversed_count,
        coalesce(usage_billed.no_subscription_count, 0) as no_subscription_count,
        coalesce(usage_billed.not_invoiced_count, 0) as not_invoiced_count,
        counts_joined.received_count - counts_joined.accepted_count
        - counts_joined.duplicate_count - counts_joined.quarantined_count as routing_delta,
        counts_joined.received_count - counts_joined.duplicate_count
        - counts_joined.undated_count - counts_joined.producer_reported_count as producer_delta,
        counts_joined.accepted_count - counts_joined.reversal_count
        - coalesce(usage_billed.billed_count, 0) - coalesce(usage_billed.reversed_count, 0)
        - coalesce(usage_billed.no_subscription_count, 0)
        - coalesce(usage_billed.not_invoiced_count, 0) as billing_delta
    from counts_joined
    left join usage_billed
        on
            counts_joined.reconciliation_date = usage_billed.reconciliation_date
            and counts_joined.customer_id = usage_billed.customer_id
            and counts_joined.event_type = usage_billed.event_type

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
