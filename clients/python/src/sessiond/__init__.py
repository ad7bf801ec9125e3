"""Python client of sessiond's v1 JSON API (sync :class:`Client` and async
:class:`AsyncClient`), with typed results and stable error codes.

    from sessiond import Client
    with Client("http://127.0.0.1:7700", api_key) as sd:
        created = sd.create_session("user-1", attributes={"cart": 3})
        session = sd.validate(created.token).session
"""

from ._async import AsyncClient
from ._errors import Code, InvalidArgument, SessiondError
from ._models import (
    ClientInfo,
    Created,
    Introspection,
    Pair,
    Session,
    SessionPage,
    SubjectCount,
    SubjectPage,
    UpstreamGrant,
    UpstreamToken,
    Validated,
)
from ._sync import Client
from ._version import __version__

__all__ = [
    "AsyncClient",
    "Client",
    "ClientInfo",
    "Code",
    "Created",
    "Introspection",
    "InvalidArgument",
    "Pair",
    "Session",
    "SessionPage",
    "SessiondError",
    "SubjectCount",
    "SubjectPage",
    "UpstreamGrant",
    "UpstreamToken",
    "Validated",
    "__version__",
]
