{#
    Usage spikes per customer x meter x UTC day, judged against that customer's own trailing
    window (dbt vars `anomaly_*`). Two rules must both fire:
    - ratio: the day is at least `anomaly_spike_ratio` times the trailing mean (the
      methodology's 3x rule);
    - robust score: (day - trailing median) / (1.4826 x MAD) reaches `anomaly_robust_score`,
      so a noisy customer's ordinary swings are not flagged. When the MAD is zero the mean
      absolute deviation (x 1.2533) stands in; when every past day is identical any rise
      counts.
    Days with too little history or too few events are not judged. Only flagged days are
    rows. The ratio and score are statistics, not money: they are doubles.

    A customer's day per meter comes from the daily usage (int_usage_aggregated_to_days), not
    from events, so a run reads no event table however long the history (DECISIONLOG D66):
    count and sum add up over dimension values, max and min take the largest and smallest,
    and a meter without a dimension has one row a day already. Only a distinct count, latest
    or p95 meter that is also grouped by a property is counted from its events.
#}
with

meters as (

    select * from {{ ref('meters') }}

),

usage_per_dimension_day as (

    select
        usage_per_day.*,
        meters.aggregation
    from {{ ref('int_usage_aggregated_to_days') }} as usage_per_day
    inner join meters
        on usage_per_day.meter_id = meters.meter_id
    where
        meters.aggregation in ('count', 'sum', 'max', 'min')
        or meters.group_by_property is null

),

usage_merged_per_day as (

    select
        customer_id,
        meter_id,
        event_date,
        {# One row a day for a meter without a dimension: every branch returns it. #}
        case
            when aggregation = 'max' then max(aggregate_quantity)
            when aggregation = 'min' then min(aggregate_quantity)
            else sum(aggregate_quantity)
        end as aggregate_quantity,
        cast(sum(event_count) as bigint) as event_count
    from usage_per_dimension_day
    group by customer_id, meter_id, event_date, aggregation

),

events_metered_by_dimension as (

    select * from {{ ref('int_events_metered') }}
    where
        reversed_by_event_id is null
        and meter_id in (
            select meters.meter_id from meters
            where
                meters.aggregation not in ('count', 'sum', 'max', 'min')
                and meters.group_by_property is not null
        )

),

usage_counted_per_day as (

    {{ aggregate_meters('events_metered_by_dimension', ['customer_id', 'meter_id', 'event_date']) }}

),

usage_per_day as (

    select * from usage_merged_per_day
    union all by name
    select * from usage_counted_per_day

),

history as (

    select
        observed.customer_id,
        observed.meter_id,
        observed.event_date,
        past.aggregate_quantity as past_quantity
    from usage_per_day as observed
    inner join usage_per_day as past
        on
            observed.customer_id = past.customer_id
            and observed.meter_id = past.meter_id
            and observed.event_date > past.event_date
            and past.event_date >= observed.event_date
            - to_days(cast({{ var('anomaly_window_days') }} as integer))

),

history_centre as (

    select
        customer_id,
        meter_id,
        event_date,
        count(*) as history_days,
        sum(past_quantity) as history_sum,
        median(past_quantity) as baseline_median
    from history
    group by customer_id, meter_id, event_date

),

history_spread as (

    select
        history.customer_id,
        history.meter_id,
        history.event_date,
        median(abs(history.past_quantity - history_centre.baseline_median)) as baseline_mad,
        avg(abs(history.past_quantity - history_centre.baseline_median)) as baseline_mean_ad
    from history
    inner join history_centre
        on
            history.customer_id = history_centre.customer_id
            and history.meter_id = history_centre.meter_id
            and history.event_date = history_centre.event_date
    group by history.customer_id, history.meter_id, history.event_date

),

scored as (

    select
        usage_per_day.customer_id,
        usage_per_day.meter_id,
        usage_per_day.event_date,
        usage_per_day.aggregate_quantity as observed_quantity,
        usage_per_day.event_count as observed_event_count,
        history_centre.history_days,
        cast(history_centre.history_sum / history_centre.history_days as decimal(38, 9))
            as baseline_mean,
        history_centre.baseline_median,
        history_spread.baseline_mad,
        case
            when history_spread.baseline_mad > 0 then 1.4826 * history_spread.baseline_mad
            when history_spread.baseline_mean_ad > 0 then 1.2533 * history_spread.baseline_mean_ad
        end as robust_scale,
        {# Exact: quantity x days >= ratio x sum, no division. #}
        usage_per_day.aggregate_quantity * history_centre.history_days
        >= cast('{{ var("anomaly_spike_ratio") }}' as decimal(9, 3))
        * history_centre.history_sum
        and history_centre.history_sum > 0 as ratio_rule_fired
    from usage_per_day
    inner join history_centre
        on
            usage_per_day.customer_id = history_centre.customer_id
            and usage_per_day.meter_id = history_centre.meter_id
            and usage_per_day.event_date = history_centre.event_date
    inner join history_spread
        on
            usage_per_day.customer_id = history_spread.customer_id
            and usage_per_day.meter_id = history_spread.meter_id
            and usage_per_day.event_date = history_spread.event_date
    where
        history_centre.history_days >= {{ var('anomaly_min_history_days') }}
        and usage_per_day.event_count >= {{ var('anomaly_min_events') }}

),

rules_checked as (

    select
        *,
        round(
            cast(observed_quantity as double) / nullif(cast(baseline_mean as double), 0), 4
        ) as ratio_to_mean,
        round(cast(observed_quantity - baseline_median as double) / robust_scale, 4)
            as robust_score,
        case
            when robust_scale is null then observed_quantity > baseline_median
            else
                cast(observed_quantity - baseline_median as double) / robust_scale
                >= {{ var('anomaly_robust_score') }}
        end as robust_rule_fired
    from scored

),

anomalies as (

    select
        ---------- ids
        customer_id || ':' || meter_id || ':' || strftime(event_date, '%Y-%m-%d')
            as usage_anomaly_id,
        customer_id,
        meter_id,
        'spike: >= {{ var("anomaly_spike_ratio") }}x trailing mean and robust score >= '
        || '{{ var("anomaly_robust_score") }}' as anomaly_rule,
        ---------- numerics
        observed_quantity,
        observed_event_count,
        baseline_mean,
        baseline_median,
        baseline_mad,
        history_days,
        ratio_to_mean,
        robust_score,
        ---------- dates
        event_date as usage_date
    from rules_checked
    where ratio_rule_fired and robust_rule_fired

)

select * from anomalies
