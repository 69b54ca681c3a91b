{#
    A rate card that cannot be priced unambiguously fails the build before any invoice is
    made. One row per problem, with the charge (or subscription) and what is wrong.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'plan_charges'}}}) }}

with

plan_charges as (

    select * from {{ ref('plan_charges') }}

),

plan_charge_tiers as (

    select * from {{ ref('plan_charge_tiers') }}

),

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

plans as (

    select * from {{ ref('plans') }}

),

customers as (

    select * from {{ ref('customers') }}

),

tiered_charges as (

    select distinct charge_id from plan_charge_tiers

),

tiers_ordered as (

    select
        charge_id,
        tier,
        up_to,
        lag(up_to) over (partition by charge_id order by tier) as previous_up_to,
        row_number() over (partition by charge_id order by tier desc) = 1 as is_last_tier
    from plan_charge_tiers

),

tier_problems as (

    select
        charge_id,
        case
            when is_last_tier and up_to is not null
                then 'the last tier must have a blank up_to'
            when not is_last_tier and up_to is null
                then 'only the last tier may have a blank up_to'
            else 'up_to must increase from tier to tier'
        end as problem
    from tiers_ordered
    where
        (is_last_tier and up_to is not null)
        or (not is_last_tier and up_to is null)
        or (up_to is not null and previous_up_to is not null and up_to <= previous_up_to)

),

charge_problems as (

    select
        plan_charges.charge_id,
        case
            when
                plan_charges.charge_model in ('graduated', 'volume', 'staircase')
                and tiered_charges.charge_id is null
                then plan_charges.charge_model || ' charge has no tiers'
            when
                plan_charges.charge_model in ('standard', 'package')
                and plan_charges.unit_price is null
                then plan_charges.charge_model || ' charge has no unit_price'
            when
                plan_charges.charge_model = 'package'
                and coalesce(plan_charges.package_size, 0) <= 0
                then 'package charge needs a package_size above 0'
            when plan_charges.quantity_divisor <= 0
                then 'quantity_divisor must be above 0'
            when plan_charges.quantity_precision not between -9 and 9
                then 'quantity_precision must be between -9 and 9'
        end as problem
    from plan_charges
    left join tiered_charges
        on plan_charges.charge_id = tiered_charges.charge_id

),

currency_problems as (

    select
        subscriptions.subscription_id as charge_id,
        'plan currency ' || plans.currency || ' differs from customer currency '
        || customers.currency as problem
    from subscriptions
    inner join plans
        on subscriptions.plan_id = plans.plan_id
    inner join customers
        on subscriptions.customer_id = customers.customer_id
    where plans.currency != customers.currency

),

all_problems as (

    select * from tier_problems
    union all
    select * from charge_problems
    where problem is not null
    union all
    select * from currency_problems

)

select * from all_problems
