"""Storage: engine and sessions, declarative base and common column types, migrations."""

from shopkeeper.db.base import Base, JSONType, UTCDateTime, WorkspaceScoped
from shopkeeper.db.session import Database

__all__ = ["Base", "Database", "JSONType", "UTCDateTime", "WorkspaceScoped"]
