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
#}
with

events_metered as (

    select * from {{ ref('int_events_metered') }}
    where reversed_by_event_id is null

),

usage_per_day as (

    {{ aggregate_meters('events_metered', ['customer_id', 'meter_id', 'event_date']) }}

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
