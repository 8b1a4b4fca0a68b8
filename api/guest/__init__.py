"""The guest pages (`/guest/{token}/...`): check-in, offers, feedback and web chat."""
