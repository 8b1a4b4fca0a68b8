"""Every table of the app's database: the tables on `SQLModel.metadata` once every
module of the service's packages is imported.

Nothing keeps a list of table modules, so a table declared anywhere in a package
is compared with the migrations (`tests/test_schema.py`) and searched by the
erase test (`tests/test_gdpr.py`) without being registered.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData
from sqlmodel import SQLModel

PACKAGES = ("guest_journey", "communications", "activities", "workflows", "services", "api", "commands")


def every_table() -> MetaData:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
            if ".migrations" not in module.name:  # Alembic's scripts run only inside Alembic
                importlib.import_module(module.name)
    return SQLModel.metadata
