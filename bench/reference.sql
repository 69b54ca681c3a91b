-- The hand-written reference pipeline `make bench` races the project against: the essential
-- work of billing usage, written straight in DuckDB SQL with no framework around it. It
-- reads the landed raw rows and the rate-card CSVs, parses each line once, validates it
-- (the project's rules that decide what is billed: an object, a string id, an RFC 3339
-- timestamp with offset, not in the future, a known customer and event type, object
-- properties, a numeric value for summed and maxed meters; a reversal of the same
-- customer's and event type's event),
-- keeps the first row of each event id, applies reversals, meters, prices with the plan's
-- charges and tiers, and rounds each usage line to the currency's minor units. It covers
-- what the demo rate card uses (standard, graduated, volume, package and staircase
-- charges; count, sum, max and unique_count meters; quantity rounding `up` or `none` at
-- precision 0, whole package sizes, no price overrides) and nothing else: billing/bench.py
-- refuses a rate card outside that.
-- Parameters (str.format): {seeds} the seeds folder, {as_of} the run's as_of,
-- {tolerance} the future tolerance in minutes. The result is one row per usage line.
with

customers as (
    select customer_id, currency from read_csv('{seeds}/accounts/customers.csv', all_varchar = true)
),

currencies as (
    select currency, cast(minor_units as integer) as minor_units
    from read_csv('{seeds}/rate_cards/currencies.csv', all_varchar = true)
),

meters as (
    select * from read_csv('{seeds}/rate_cards/meters.csv', all_varchar = true)
),

subscriptions as (
    select
        subscription_id, customer_id, plan_id,
        cast(starts_on as date) as starts_on, cast(nullif(ends_on, '') as date) as ends_on
    from read_csv('{seeds}/accounts/subscriptions.csv', all_varchar = true)
),

charges as (
    select
        charge_id, plan_id, meter_id, nullif(dimension_value, '') as dimension_value,
        charge_model,
        cast(nullif(unit_price, '') as decimal(38, 9)) as unit_price,
        cast(nullif(package_size, '') as decimal(38, 9)) as package_size,
        coalesce(cast(nullif(free_units, '') as decimal(38, 9)), 0) as free_units,
        coalesce(cast(nullif(quantity_divisor, '') as hugeint), 1) as quantity_divisor,
        coalesce(nullif(quantity_rounding, ''), 'none') as quantity_rounding
    from read_csv('{seeds}/rate_cards/plan_charges.csv', all_varchar = true)
),

tiers as (
    select
        charge_id,
        cast(tier as integer) as tier,
        coalesce(lag(cast(nullif(up_to, '') as decimal(38, 9))) over (
            partition by charge_id order by cast(tier as integer)
        ), 0) as lower_bound,
        cast(nullif(up_to, '') as decimal(38, 9)) as up_to,
        coalesce(cast(nullif(unit_price, '') as decimal(38, 9)), 0) as unit_price,
        coalesce(cast(nullif(flat_fee, '') as decimal(38, 9)), 0) as flat_fee
    from read_csv('{seeds}/rate_cards/plan_charge_tiers.csv', all_varchar = true)
),

-- One JSON parse per line: the five top-level fields as one list.
parsed as (
    select
        file_id,
        line_number,
        json_extract_string(
            raw_line,
            ['$.event_id', '$.customer_id', '$.event_type', '$.timestamp', '$.reverses_event_id']
        ) as fields,
        raw_line -> '$.properties' as properties_raw,
        raw_line
    from (
        -- Invalid JSON becomes null first: DuckDB may evaluate json_type before json_valid.
        select
            file_id,
            line_number,
            case when not has_encoding_error and json_valid(raw_line) then raw_line end as raw_line
        from raw.raw_events
    )
    where json_type(raw_line) = 'OBJECT'
),

typed as (
    select
        file_id,
        line_number,
        fields[1] as event_id,
        fields[2] as customer_id,
        fields[3] as event_type,
        -- RFC 3339 with an explicit offset, hours 00-23, as the project demands.
        case
            when regexp_full_match(
                fields[4],
                '\d{{4}}-\d{{2}}-\d{{2}}[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{{1,6}})?'
                || '([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)'
            ) then try_cast(fields[4] as timestamptz)
        end as event_at,
        fields[5] as reverses_event_id,
        json_type(raw_line -> '$.event_id') as event_id_type,
        case
            when properties_raw is null or json_type(properties_raw) = 'NULL' then json('{{}}')
            when json_type(properties_raw) = 'VARCHAR' and json_valid(properties_raw ->> '$')
                then json(properties_raw ->> '$')
            when json_type(properties_raw) = 'VARCHAR' then null
            else properties_raw
        end as properties
    from parsed
),

valid as (
    select typed.*
    from typed
    inner join customers on typed.customer_id = customers.customer_id
    where
        typed.event_id is not null
        and typed.event_id_type = 'VARCHAR'
        and json_type(typed.properties) = 'OBJECT'
        -- A summed or maxed value must be there and be a number (reversals carry none).
        and (
            typed.reverses_event_id is not null
            or not exists (
                select 1 from meters
                where
                    meters.event_type = typed.event_type
                    and meters.aggregation in ('sum', 'max')
                    and try_cast(json_extract_string(
                        typed.properties, '$."' || meters.value_property || '"'
                    ) as decimal(38, 9)) is null
            )
        )
        and typed.event_at is not null
        and typed.event_at <= timestamptz '{as_of}' + to_minutes({tolerance})
        and typed.event_type in (select event_type from meters)
),

-- Keep-first dedupe: the earliest landed row of each id wins.
first_rows as (
    select *
    from valid
    qualify row_number() over (partition by event_id order by file_id, line_number) = 1
),

reversals as (
    select reversals.reverses_event_id as event_id
    from first_rows as reversals
    inner join first_rows as originals
        on
            reversals.reverses_event_id = originals.event_id
            and reversals.customer_id = originals.customer_id
            and reversals.event_type = originals.event_type
    where reversals.reverses_event_id is not null and originals.reverses_event_id is null
),

events as (
    select *
    from first_rows
    where reverses_event_id is null and event_id not in (select event_id from reversals)
),

metered as (
    select
        events.customer_id,
        events.event_id,
        meters.meter_id,
        meters.aggregation,
        cast(timezone('UTC', events.event_at) as date) as event_date,
        cast(date_trunc('month', timezone('UTC', events.event_at)) as date) as period_start,
        json_extract_string(events.properties, '$."' || meters.group_by_property || '"')
            as dimension_value,
        json_extract_string(events.properties, '$."' || meters.value_property || '"')
            as value_text
    from events
    inner join meters on events.event_type = meters.event_type
),

priced as (
    select
        subscriptions.subscription_id,
        subscriptions.customer_id,
        charges.charge_id,
        metered.period_start,
        metered.aggregation,
        metered.value_text
    from metered
    inner join subscriptions
        on
            metered.customer_id = subscriptions.customer_id
            and metered.event_date >= subscriptions.starts_on
            and (subscriptions.ends_on is null or metered.event_date < subscriptions.ends_on)
    inner join charges
        on subscriptions.plan_id = charges.plan_id and metered.meter_id = charges.meter_id
    where
        charges.dimension_value = metered.dimension_value
        or (
            charges.dimension_value is null
            and not exists (
                select 1 from charges as claims
                where
                    claims.plan_id = charges.plan_id
                    and claims.meter_id = charges.meter_id
                    and claims.dimension_value = metered.dimension_value
            )
        )
),

quantities as (
    select
        subscription_id,
        customer_id,
        charge_id,
        period_start,
        case any_value(aggregation)
            when 'count' then count(*)
            when 'sum' then sum(try_cast(value_text as decimal(38, 9)))
            when 'max' then max(try_cast(value_text as decimal(38, 9)))
            when 'unique_count' then count(distinct value_text)
        end as aggregate_quantity
    from priced
    group by subscription_id, customer_id, charge_id, period_start
),

-- Every charge of every subscription active in a period with usage, at 0 without any.
charge_periods as (
    select distinct
        subscriptions.subscription_id,
        subscriptions.customer_id,
        charges.charge_id,
        quantities.period_start
    from subscriptions
    inner join charges on subscriptions.plan_id = charges.plan_id
    inner join (select distinct customer_id, period_start from quantities) as quantities
        on subscriptions.customer_id = quantities.customer_id
    where
        subscriptions.starts_on < quantities.period_start + interval 1 month
        and (subscriptions.ends_on is null or subscriptions.ends_on > quantities.period_start)
),

transformed as (
    select
        charge_periods.*,
        charges.charge_model,
        charges.unit_price,
        charges.package_size,
        charges.free_units,
        -- ceil(q / d) = ceil(ceil(q) / d) for a whole d > 0: exact in hugeint.
        case
            when charges.quantity_rounding = 'up'
                then cast(
                    (cast(ceil(coalesce(quantities.aggregate_quantity, 0)) as hugeint)
                        + charges.quantity_divisor - 1) // charges.quantity_divisor
                    as decimal(38, 9))
            else cast(coalesce(quantities.aggregate_quantity, 0) as decimal(38, 9))
        end as quantity
    from charge_periods
    inner join charges on charge_periods.charge_id = charges.charge_id
    left join quantities
        on
            charge_periods.subscription_id = quantities.subscription_id
            and charge_periods.charge_id = quantities.charge_id
            and charge_periods.period_start = quantities.period_start
),

-- One amount per line and tier (graduated lines are one per tier, each rounded on its own).
tier_amounts as (
    select
        transformed.customer_id,
        transformed.charge_id,
        transformed.period_start,
        case transformed.charge_model
            when 'standard' then transformed.quantity * transformed.unit_price
            when 'package' then
                ((cast(ceil(greatest(transformed.quantity - transformed.free_units, 0)) as hugeint)
                    + cast(transformed.package_size as hugeint) - 1)
                    // cast(transformed.package_size as hugeint)) * transformed.unit_price
            when 'graduated' then
                greatest(least(transformed.quantity, coalesce(tiers.up_to, transformed.quantity))
                    - tiers.lower_bound, 0) * tiers.unit_price
                + case
                    when tiers.lower_bound = 0 or transformed.quantity > tiers.lower_bound
                        then tiers.flat_fee else 0
                end
            when 'volume' then
                case
                    when (tiers.lower_bound = 0 or transformed.quantity > tiers.lower_bound)
                        and (tiers.up_to is null or transformed.quantity <= tiers.up_to)
                        then transformed.quantity * tiers.unit_price + tiers.flat_fee
                    else 0
                end
            when 'staircase' then
                case
                    when (tiers.lower_bound = 0 or transformed.quantity > tiers.lower_bound)
                        and (tiers.up_to is null or transformed.quantity <= tiers.up_to)
                        then tiers.flat_fee
                    else 0
                end
        end as amount
    from transformed
    left join tiers on transformed.charge_id = tiers.charge_id
)

-- Half away from zero to the minor units (round() takes a constant precision), per tier.
select
    tier_amounts.customer_id,
    tier_amounts.period_start,
    tier_amounts.charge_id,
    customers.currency,
    sum(case currencies.minor_units
        when 0 then cast(round(tier_amounts.amount, 0) as decimal(38, 4))
        when 2 then cast(round(tier_amounts.amount, 2) as decimal(38, 4))
        when 3 then cast(round(tier_amounts.amount, 3) as decimal(38, 4))
    end) as amount
from tier_amounts
inner join customers on tier_amounts.customer_id = customers.customer_id
inner join currencies on customers.currency = currencies.currency
group by all
