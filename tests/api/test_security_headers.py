"""Every answer carries the security headers; pages forbid framing and foreign scripts."""

from __future__ import annotations


async def test_json_answers_carry_the_basic_headers(api):
    answer = await api.get("/communications/templates")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"


async def test_pages_forbid_framing_and_inline_scripts(api):
    answer = await api.get("/guest/not-a-token/check-in")
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
