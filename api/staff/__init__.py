"""The staff pages' parts: sign-in and session cookie (`session`), the page
route class (`route`), the operations panel (`panel`, `actions`, `attention`)
and the executive dashboard (`dashboard_card`, `svg_charts`; its data is `services.dashboard`).

The routes themselves are in `api/routes/`: `staff_panel.py` (`/guest-experience`),
`staff_analytics.py` (`/analytics`) and `staff_login.py` (`/login`, `/logout`); the templates in
`api/templates/staff/`, the CSS and JavaScript in `api/static/staff.*`.
"""
