"""Imports every domain's tables so that Alembic and tests see the whole schema."""

from robofleet.auth import models as _auth_models  # noqa: F401
from robofleet.store.base import Base

metadata = Base.metadata
