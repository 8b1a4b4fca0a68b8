"""Server-rendered pages: one autoescaping Jinja2 environment, and the static files.

Templates live in `api/templates/`, CSS and JavaScript in `api/static/`
(served at `/static`, no build step). Every value a template prints is
escaped unless it is `Markup`; templates never mark guest text safe.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
STATIC_PATH = "/static"


@lru_cache(maxsize=64)
def static_url(name: str) -> str:
    """`/static/<name>?v=<content hash>`, so that browsers may cache it for long."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"{STATIC_PATH}/{name}?v={digest}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["static_url"] = static_url
    return env


PAGES = _environment()


def render_page(template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGES.get_template(template).render(context), status_code=status_code)


def mount_static(app: FastAPI) -> None:
    """Serve `api/static/` at `/static`."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
