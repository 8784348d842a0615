"""The recipient an address reaches, as the per-recipient acknowledgement limit counts it."""

from __future__ import annotations

import pytest

from engine.customer_mail import recipient_key


@pytest.mark.parametrize("address,key", [
    ("anna@example.com", "anna@example.com"),
    ("Anna@Example.COM", "anna@example.com"),
    ("anna+1@example.com", "anna@example.com"),
    (" ANNA+News+2@Example.com ", "anna@example.com"),
    ("anna.b@example.com", "anna.b@example.com"),  # dots are the mail provider's business: kept
    ("+tag@example.com", "+tag@example.com"),  # nothing before the tag: the whole local part
    ('"a@b"@example.com', '"a@b"@example.com'),  # the domain is after the last @
    ("no-at-sign", "no-at-sign"),
])
def test_recipient_key(address, key):
    assert recipient_key(address) == key
