"""Import every model module so Base.metadata knows all tables (Alembic, tests)."""

from piyasa.db import (
    analytics_models,  # noqa: F401
    cluster_models,  # noqa: F401
    counter_models,  # noqa: F401
    fleetadmin_models,  # noqa: F401
    health_models,  # noqa: F401
    help_models,  # noqa: F401
    models,  # noqa: F401
    notify_models,  # noqa: F401
    preview_models,  # noqa: F401
    principals,  # noqa: F401
    runtime_models,  # noqa: F401
)
