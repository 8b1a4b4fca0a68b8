"""Services: the operations routes, commands and activities share (a journey's
Temporal calls, preference sync, KPIs, GDPR). Below the HTTP app and the
commands, above workflows and activities (docs/architecture.md)."""
