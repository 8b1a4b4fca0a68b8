"""The API and guest-page fixtures, for the hostile-input tests."""

from tests.api.conftest import api, api_settings
from tests.api.test_guest_pages import app, guest_settings, links, rid, web

__all__ = ["api", "api_settings", "app", "guest_settings", "links", "rid", "web"]
