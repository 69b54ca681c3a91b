"""Event-derived text in alerts reaches a chat or a mailbox as text, never as markup (D71)."""

from __future__ import annotations

import json

from billing.alerts import (
    SLACK_TEXT_LIMIT,
    Alert,
    code_block,
    mrkdwn_escaped,
    one_line_header,
    webhook_payload,
)

# A file name and a customer id as a hostile or careless producer could send them.
FILE = "usage_<!channel>_&_<https://evil.example|invoice>.jsonl"
CUSTOMER = "cus_```*bold*```"


def hostile_alert() -> Alert:
    return Alert(
        alert_kind="quality_gate",
        check_name="landed_files",
        severity="critical",
        scope="2026-10-07",
        period_start=None,
        period_end=None,
        customers=(CUSTOMER,),
        affected_rows=3,
        summary=f"file {FILE} rejected\r\nBcc: everyone@example.com",
        details=(f"{FILE}: 3 of 3 lines quarantined",),
    )


def test_mrkdwn_entities_are_escaped_once_ampersand_first():
    assert mrkdwn_escaped("a & b < c > d &amp;") == "a &amp; b &lt; c &gt; d &amp;amp;"


def test_no_backtick_run_can_close_the_code_block():
    block = code_block("x ``` y")
    assert block == "```\nx `\u200b`\u200b`\u200b y\n```"
    assert block[3:-3].count("```") == 0
    # A leading backtick does not join the opening fence.
    assert code_block("`x") == "```\n`\u200bx\n```"


def test_a_long_alert_is_cut_to_fit_slack_never_inside_an_entity():
    block = code_block("<" * 5000)
    assert SLACK_TEXT_LIMIT - 4 <= len(block) <= SLACK_TEXT_LIMIT  # no partial &lt;
    body = block.removeprefix("```\n").removesuffix("\n```")
    kept, note = body.split("\n… ")
    assert set(kept.split("&lt;")) == {""}  # whole entities only
    assert note == "(cut to fit Slack; billing alerts shows the whole alert)"
    assert code_block("short") == "```\nshort\n```"


def test_the_webhook_payload_carries_no_live_markup():
    payload = webhook_payload(hostile_alert())
    summary_block, details_block = payload["blocks"]
    # The summary as plain text: Slack shows it as is.
    assert summary_block["text"] == {
        "type": "plain_text",
        "text": hostile_alert().summary,
        "emoji": False,
    }
    # Fallback text and details: no raw <, > or & (no mention, link or entity survives).
    for text in (payload["text"], details_block["text"]["text"]):
        unescaped = text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
        assert not {"<", ">", "&"} & set(unescaped)
    assert payload["text"] == (
        "[CRITICAL] file usage_&lt;!channel&gt;_&amp;_&lt;https://evil.example|invoice&gt;"
        ".jsonl rejected\r\nBcc: everyone@example.com"
    )
    details = details_block["text"]["text"]
    assert details_block["text"]["verbatim"] is True
    assert details.startswith("```\n") and details.endswith("\n```")
    assert details[3:-3].count("```") == 0
    assert "cus_`\u200b`\u200b`\u200b*bold*`\u200b`\u200b`\u200b" in details
    # The raw fields stay data, exactly as stored, and the whole payload is valid JSON.
    assert payload["alert"]["customers"] == [CUSTOMER]
    assert json.loads(json.dumps(payload)) == payload


def test_a_mail_subject_stays_one_header():
    subject = one_line_header(f"[billing critical] {hostile_alert().summary}")
    assert subject == (f"[billing critical] file {FILE} rejected Bcc: everyone@example.com")
    assert "\r" not in subject and "\n" not in subject
