"""The service's keyed MACs (`guest_journey.signing`): every value already issued or
stored keeps its bytes, purposes do not collide, tampering fails, and verification
compares in constant time under every key (current and fallbacks).

The golden values below were made by the signing code each caller had before
`guest_journey.signing` existed; a change to a salt, a length or a text form
breaks them, and with them the links sent, the cookies set and the digests stored.
"""

from __future__ import annotations

import hmac
import itertools
from datetime import UTC, datetime

import pytest

from api.guest.visit import csrf_token
from api.staff.session import key_fingerprint, read_session_cookie
from communications.unsubscribes import address_digest
from guest_journey import signing
from guest_journey.guest_links import (
    GuestTokenError,
    Purpose,
    make_token,
    message_replied_to,
    read_token,
    reply_token,
)
from guest_journey.signing import Purpose as Mac

SECRET = "golden-secret-key-for-signing-tests"
PREVIOUS = "golden-previous-key-before-rotation"  # a key now in GUEST_JOURNEY_SECRET_KEY_FALLBACKS
ROTATED = (SECRET, PREVIOUS)
EXPIRES = datetime(2031, 5, 1, 12, tzinfo=UTC)
BEFORE_EXPIRY = datetime(2031, 1, 1, 1, tzinfo=UTC)
PAYLOAD = "eyJyIjoiUjEwMDEifQ"
MESSAGE_ID = "12345678-1234-5678-1234-567812345678"
HEX_ID = "12345678123456781234567812345678"
API_KEY = "ops-key-0123456789"
STAFF_CSRF_COOKIE = "browser-csrf-cookie-0123456789"
GUEST_CSRF_SEED = "seed-0123456789abcdef"
GUEST_CSRF_TOKEN = "eyJyIjoiUjEwMDEifQ.abc"

GOLDEN: list[tuple[Mac, str, str, str]] = [
    (Mac.GUEST_LINK, SECRET, PAYLOAD, "t0M4mgZxr5YD4_NZX_XQsu0YIyU"),
    (Mac.GUEST_LINK, PREVIOUS, PAYLOAD, "-DAST4EPS50L4c82IWK9A0_ybwQ"),
    (Mac.REPLY_ADDRESS, SECRET, HEX_ID, "zhyy6vwglfYQ"),
    (Mac.REPLY_ADDRESS, PREVIOUS, HEX_ID, "lBVHGVo21gnH"),
    (Mac.UNSUBSCRIBE_DIGEST, SECRET, "ana@example.com",
     "51884f876ecc5b6db524f0fac834c997aa6cd260b3ac2dd6d3357f8636b8231a"),
    (Mac.UNSUBSCRIBE_DIGEST, PREVIOUS, "+5511999990000",
     "392b0db5b57a7a6838027c632fa0a66cba43e39274a585362423a5014151e460"),
    (Mac.STAFF_SESSION, SECRET, PAYLOAD, "e62v6XVx3jhXUW7WJSGWUj10b4bo5Yw7rQ0RAqerGeo"),
    (Mac.STAFF_SESSION, PREVIOUS, PAYLOAD, "zxS2WQK8rSx4jDCPfosTHoOViQ6ThyLPRUmMXK-B95c"),
    (Mac.STAFF_KEY, SECRET, API_KEY, "SNUb8nJVF9uRte165OhPWHAY"),
    (Mac.STAFF_KEY, PREVIOUS, API_KEY, "0_5ELFdbkVvJkak-FrKiFKbC"),
    (Mac.STAFF_CSRF, SECRET, STAFF_CSRF_COOKIE, "BWM3dUG1em-UIVBihqUU-ASBfUvW4Vb6W2D5Gcnovlw"),
    (Mac.STAFF_CSRF, PREVIOUS, STAFF_CSRF_COOKIE, "IryOc8Qle10oR6pKPROl7OAmScxJDDpOyzZL2DesrOc"),
    (Mac.GUEST_CSRF, SECRET, f"{GUEST_CSRF_SEED}:{GUEST_CSRF_TOKEN}", "QWcFzyzxLybsVom6ClsdVpU0Ei4X6NBC"),
    (Mac.GUEST_CSRF, PREVIOUS, f"{GUEST_CSRF_SEED}:{GUEST_CSRF_TOKEN}", "oZgyBBZ7JPTC2MajTQSSVN7QHBwokVuL"),
]

# Issued before `guest_journey.signing`: a check-in link, an offer link, and staff cookies.
CHECKIN_LINK = "eyJyIjoiUjEwMDEiLCJwIjoiY2hlY2tpbiIsImUiOjE5MzU0MDMyMDB9.bk-QBQYnBYs_KbALS3ZspZtnh0E"
CHECKIN_LINK_PREVIOUS = "eyJyIjoiUjEwMDEiLCJwIjoiY2hlY2tpbiIsImUiOjE5MzU0MDMyMDB9.nOJZdctKVFJapqf0A73F7H-ncjQ"
OFFER_LINK = (
    "eyJyIjoiUjEwMDEiLCJwIjoib2ZmZXIiLCJlIjoxOTM1NDAzMjAwLCJvIjoic3BhIn0.I81-DWgDyUyhkeLVa7dcJJEvS0g"
)
STAFF_COOKIE = (
    "eyJyIjoib3BzIiwiZiI6IlNOVWI4bkpWRjl1UnRlMTY1T2hQV0hBWSIsImUiOjE5MjUwMzUyMDAsImkiOiIzU1ViRkt6Zm82Uk"
    "haaVV0UUR0YmpVRWMifQ.SPZZIQyCF4MgXPdRgXw1jUFvgtef49E3Il5tCTRX6wI"
)
STAFF_COOKIE_PREVIOUS = (
    "eyJyIjoib3BzIiwiZiI6IjBfNUVMRmRia1Z2Smthay1GcktpRktiQyIsImUiOjE5MjUwMzUyMDAsImkiOiJvTnpSTDltUHo4ZW"
    "RTMmtFNmxOV0ZRc0QifQ.ZSOKUvIGVH-8T6nardnyYNGpEjsI38cSdMDYYrmRykg"
)


# -- the bytes already issued --------------------------------------------------------


@pytest.mark.parametrize(("purpose", "secret", "message", "expected"), GOLDEN,
                         ids=[f"{row[0].label}-{i % 2}" for i, row in enumerate(GOLDEN)])
def test_each_purpose_makes_the_bytes_already_issued(purpose: Mac, secret: str, message: str, expected: str):
    assert signing.sign(purpose, secret, message) == expected
    assert signing.verify(purpose, ROTATED, message, expected)


def test_guest_links_sent_before_still_open_and_new_ones_are_the_same():
    assert make_token(SECRET, "R1001", Purpose.checkin, EXPIRES) == CHECKIN_LINK
    assert make_token(SECRET, "R1001", Purpose.offer, EXPIRES, "spa") == OFFER_LINK
    for link in (CHECKIN_LINK, CHECKIN_LINK_PREVIOUS):
        assert read_token(ROTATED, link, Purpose.checkin, now=BEFORE_EXPIRY).reservation_id == "R1001"
    assert read_token(SECRET, OFFER_LINK, Purpose.offer, now=BEFORE_EXPIRY).offer == "spa"
    with pytest.raises(GuestTokenError):  # the previous key's link, once that key is dropped
        read_token(SECRET, CHECKIN_LINK_PREVIOUS, Purpose.checkin, now=BEFORE_EXPIRY)


def test_reply_addresses_sent_before_still_name_their_message():
    assert reply_token(SECRET, MESSAGE_ID) == HEX_ID + "zhyy6vwglfYQ"
    for token in (HEX_ID + "zhyy6vwglfYQ", HEX_ID + "lBVHGVo21gnH"):
        assert message_replied_to(ROTATED, f"reply+{token}@hotel.example") == MESSAGE_ID


def test_stored_address_digests_are_byte_identical():
    assert address_digest("Ana <Ana@Example.com>", SECRET) == (
        "sha256:51884f876ecc5b6db524f0fac834c997aa6cd260b3ac2dd6d3357f8636b8231a"
    )
    assert address_digest("+5511999990000", SECRET) == (
        "sha256:142bc93927a49c5c21c62212d43e17c7d939abd094fc3da38973d67a63ce3b15"
    )
    assert address_digest("ana@example.com", PREVIOUS) == (
        "sha256:da7355f263d9b073e6bb6d7ab092c88433f74bd8202f4fbdb38474e62160f081"
    )


def test_staff_cookies_set_before_still_sign_in():
    assert key_fingerprint(SECRET, API_KEY) == "SNUb8nJVF9uRte165OhPWHAY"
    current = read_session_cookie(ROTATED, STAFF_COOKIE, now=BEFORE_EXPIRY)
    previous = read_session_cookie(ROTATED, STAFF_COOKIE_PREVIOUS, now=BEFORE_EXPIRY)
    assert current is not None and current.role == "ops" and current.fingerprint == "SNUb8nJVF9uRte165OhPWHAY"
    assert previous is not None and previous.fingerprint == "0_5ELFdbkVvJkak-FrKiFKbC"
    assert read_session_cookie(SECRET, STAFF_COOKIE_PREVIOUS, now=BEFORE_EXPIRY) is None


def test_guest_csrf_tokens_of_pages_already_loaded_still_post():
    assert csrf_token(SECRET, GUEST_CSRF_SEED, GUEST_CSRF_TOKEN) == "QWcFzyzxLybsVom6ClsdVpU0Ei4X6NBC"


# -- purposes do not collide ---------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(Mac, 2)),
                         ids=lambda purpose: purpose.label)
def test_the_same_message_under_two_purposes_gives_two_macs(first: Mac, second: Mac):
    """Guest links and address digests share the empty salt (`test_salts_keep_purposes_apart`):
    theirs differ by length and form, and by what each signs."""
    for message in (PAYLOAD, API_KEY, "ana@example.com", ""):
        assert signing.sign(first, SECRET, message) != signing.sign(second, SECRET, message)
        assert not signing.verify(second, SECRET, message, signing.sign(first, SECRET, message))


def test_salts_keep_purposes_apart():
    """Salts are distinct and none begins another, so no salt+message of one purpose is another's.
    Only the two kept for the values already issued are empty; every other salt ends in `:`,
    which a guest link's base64url payload never holds."""
    salted = [purpose.salt for purpose in Mac if purpose.salt]
    assert {purpose for purpose in Mac if not purpose.salt} == {Mac.GUEST_LINK, Mac.UNSUBSCRIBE_DIGEST}
    assert len(set(salted)) == len(salted)
    assert not any(a != b and b.startswith(a) for a in salted for b in salted)
    assert all(salt.endswith(":") for salt in salted)
    assert ":" not in CHECKIN_LINK.partition(".")[0] + OFFER_LINK.partition(".")[0]


def test_a_guest_link_is_no_staff_cookie_and_a_staff_cookie_no_guest_link():
    assert read_session_cookie(SECRET, CHECKIN_LINK, now=BEFORE_EXPIRY) is None
    with pytest.raises(GuestTokenError):
        read_token(SECRET, STAFF_COOKIE, Purpose.checkin, now=BEFORE_EXPIRY)


# -- tampering -----------------------------------------------------------------------


def _flip(text: str, at: int = 0) -> str:
    return text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1:]


@pytest.mark.parametrize(("purpose", "secret", "message", "expected"), GOLDEN[::2],
                         ids=[row[0].label for row in GOLDEN[::2]])
def test_tampering_fails(purpose: Mac, secret: str, message: str, expected: str):
    assert not signing.verify(purpose, secret, message, _flip(expected))
    assert not signing.verify(purpose, secret, message, _flip(expected, -1))
    assert not signing.verify(purpose, secret, message + "x", expected)
    assert not signing.verify(purpose, secret, message, expected[:-1])
    assert not signing.verify(purpose, secret, message, expected + "A")
    assert not signing.verify(purpose, secret, message, "")
    assert not signing.verify(purpose, secret, message, "é" + expected[1:])  # not ASCII: just unequal
    assert not signing.verify(purpose, secret, message, "\ud800" + expected[1:])  # a lone surrogate too
    assert not signing.verify(purpose, "another-key", message, expected)
    assert not signing.verify(purpose, (), message, expected)  # no key verifies nothing


def test_tampered_links_and_cookies_are_refused():
    payload, _, signature = CHECKIN_LINK.partition(".")
    other_reservation = make_token(SECRET, "R1002", Purpose.checkin, EXPIRES).partition(".")[0]
    for forged in (f"{payload}.{_flip(signature)}", f"{other_reservation}.{signature}", f"{payload}."):
        with pytest.raises(GuestTokenError):
            read_token(ROTATED, forged, Purpose.checkin, now=BEFORE_EXPIRY)
    cookie_payload, _, cookie_signature = STAFF_COOKIE.partition(".")
    assert read_session_cookie(ROTATED, f"{cookie_payload}.{_flip(cookie_signature)}", now=BEFORE_EXPIRY) is None
    assert read_session_cookie(ROTATED, f"{_flip(cookie_payload, 5)}.{cookie_signature}", now=BEFORE_EXPIRY) is None
    assert message_replied_to(ROTATED, f"reply+{HEX_ID}{_flip('zhyy6vwglfYQ')}@hotel.example") is None


# -- constant time, under every key --------------------------------------------------


def test_verification_compares_with_compare_digest_under_every_key(monkeypatch: pytest.MonkeyPatch):
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return real(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signature = signing.sign(Mac.STAFF_SESSION, SECRET, PAYLOAD)
    keys = (SECRET, PREVIOUS, "older-key")

    assert signing.verify(Mac.STAFF_SESSION, keys, PAYLOAD, signature)  # the first key matches...
    assert len(compared) == 3  # ...and the other two are still tried
    assert all(isinstance(given, bytes) and isinstance(expected, bytes) for given, expected in compared)

    compared.clear()
    assert read_token(ROTATED, CHECKIN_LINK, Purpose.checkin, now=BEFORE_EXPIRY)
    assert read_session_cookie(ROTATED, STAFF_COOKIE, now=BEFORE_EXPIRY) is not None
    assert len(compared) == 4  # the link's and the cookie's checks go through it too, twice each


def test_same_is_constant_time_equality_of_text():
    assert signing.same("abc", "abc")
    assert not signing.same("abc", "abd") and not signing.same("ab", "abc") and not signing.same("\udcff", "a")


def test_keys_takes_one_key_or_several():
    assert signing.keys(SECRET) == (SECRET,)
    assert signing.keys([SECRET, PREVIOUS]) == ROTATED
