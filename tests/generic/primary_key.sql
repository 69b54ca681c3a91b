{#
    A primary key: the column is never null and no two rows share a value. One query, so
    one dbt node where a `unique` and a `not_null` test would be two (DECISIONLOG D75).
    A failing row is a null key or a repeated one, with how many rows hold it.
#}
{% test primary_key(model, column_name) %}

select
    {{ column_name }},
    count(*) as row_count
from {{ model }}
group by {{ column_name }}
having {{ column_name }} is null or count(*) > 1

{% endtest %}
