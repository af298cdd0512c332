"""Imports every domain's tables so that Alembic and tests see the whole schema."""

from robofleet.activities import models as _activities_models  # noqa: F401
from robofleet.auth import cache as _auth_cache  # noqa: F401
from robofleet.auth import models as _auth_models  # noqa: F401
from robofleet.logs import models as _logs_models  # noqa: F401
from robofleet.robots import models as _robots_models  # noqa: F401
from robofleet.store.base import Base

metadata = Base.metadata
