{#
    Fails on every row where the expression is false or null: the house's way to assert an
    identity (counts that must add up, amounts that must balance) on each row of a model.
#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
