"""`liqpolicy serve`: the policy backend over HTTP.

The service answers with the same documents as the CLI's JSON output (``AccountResult.as_dict()``,
``PriceQuote.as_dict()``), errors as RFC 9457 problem details carrying the CLI's diagnostics, and
is described by ``schemas/openapi.json``.  Served by uvicorn as an ASGI application (the
`server` install extra; ``docs/server.md`` says why, with the measurements).

- :mod:`engine.server.app`: dispatch and handlers, independent of the HTTP plumbing
- :mod:`engine.server.routes`: the routes, their methods and query parameters
- :mod:`engine.server.wire`: requests and responses as the application sees them; JSON out
- :mod:`engine.server.bodies`: request bodies read and parsed; their problems located
- :mod:`engine.server.inputs`: what the decision endpoints check before the engine runs
- :mod:`engine.server.problems`: errors as RFC 9457 problem details
- :mod:`engine.server.policy_json`: policies as JSON documents
- :mod:`engine.server.comparison`: the comparison engine, when the build has one
- :mod:`engine.server.asgi`: the ASGI application: requests in, bodies read within limits
- :mod:`engine.server.protocol`: uvicorn's HTTP protocol plus a request deadline and head limits
- :mod:`engine.server.metrics`: Prometheus metrics, across worker processes
- :mod:`engine.server.runner`: one process, or a supervisor with pre-forked workers; signals
- :mod:`engine.server.policies`: the served policy set and its all-or-nothing reload
- :mod:`engine.server.openapi`: the OpenAPI document and validation against it
- :mod:`engine.server.decisions`: the decision record, the decision log (an audit log,
  :mod:`engine.audit`) and the decision cache
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.server.config import ServerConfig

if TYPE_CHECKING:
    from engine.server.runner import Service, serve

__all__ = ["ServerConfig", "Service", "serve"]


def __getattr__(name: str) -> Any:
    """`Service` and `serve` import the server stack (the `server` extra) only when used, so
    the rest of liqpolicy, and `liqpolicy serve`'s own check for the extra, work without it."""
    if name in ("Service", "serve"):
        from engine.server import runner  # noqa: PLC0415  # the lazy import is the point

        return getattr(runner, name)
    raise AttributeError(f"module 'engine.server' has no attribute {name!r}")
