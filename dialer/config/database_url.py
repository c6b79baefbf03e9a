"""Database URLs of the `store` section, read and written without the store's own library.

`sqlite:///relative.db`, `sqlite:////abs/path.db`, `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`
(a `+driver` suffix on the scheme is accepted and dropped). The user and the password are
percent-decoded when read and percent-encoded when written, as SQLAlchemy does, so the store
(`dialer.store.engine`) reads back the same URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit

__all__ = ["DatabaseUrl"]

_SCHEME = re.compile(r"^(?P<backend>[a-z][a-z0-9]*)(?:\+(?P<driver>[a-z0-9_]+))?$")


@dataclass(frozen=True)
class DatabaseUrl:
    backend: str  # "sqlite", "postgresql", or whatever the URL named
    database: str = ""  # the SQLite file, or the PostgreSQL database's name
    username: str | None = None
    password: str | None = None
    host: str | None = None
    port: int | None = None
    query: str = ""

    @classmethod
    def parse(cls, text: str) -> DatabaseUrl:
        """ValueError when `text` is not `scheme://...` with a readable port."""
        scheme, sep, _ = text.partition("://")
        match = _SCHEME.match(scheme)
        if not sep or match is None:
            raise ValueError(f"not a database URL: {text!r}")
        parts = urlsplit(text)
        port = parts.port  # ValueError for a port that is not a number
        if match.group("backend") == "sqlite":
            return cls("sqlite", database=parts.path[1:] if parts.path else "")
        return cls(
            backend=match.group("backend"),
            database=parts.path.lstrip("/"),
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            host=parts.hostname,
            port=port,
            query=parts.query,
        )

    def with_password(self, password: str | None) -> DatabaseUrl:
        return replace(self, password=password)

    def render(self, scheme: str | None = None) -> str:
        """The URL as text (with its password: never log it), under `scheme` if given."""
        prefix = f"{scheme or self.backend}://"
        if self.backend == "sqlite":
            return f"{prefix}/{self.database}"
        credentials = ""
        if self.username is not None:
            credentials = quote(self.username, safe="")
            if self.password is not None:
                credentials += ":" + quote(self.password, safe="")
            credentials += "@"
        host = f"[{self.host}]" if self.host and ":" in self.host else (self.host or "")
        location = host + (f":{self.port}" if self.port is not None else "")
        query = f"?{self.query}" if self.query else ""
        return f"{prefix}{credentials}{location}/{self.database}{query}"
