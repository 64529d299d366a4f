"""Import every model module so Base.metadata knows all tables (Alembic, tests)."""

from piyasa.db import (
    models,  # noqa: F401
    runtime_models,  # noqa: F401
)
