"""Entry point of a `stylerec serve` web worker process (`recsys.service.worker:serve_app`, uvicorn's factory).

Its lifeline (`die_with_parent`) starts before the app's heavy imports: a worker that uvicorn starts just as the
supervisor is killed still sees that and ends, instead of serving on the port as an orphan."""

from __future__ import annotations

from recsys.service.server import die_with_parent, stop_self


def serve_app():
    """The app of one web worker, its lifeline on `stylerec serve` started first."""
    die_with_parent(on_death=stop_self)  # `stylerec serve` killed (even -9): stop answering, close the pools
    from recsys.service.app import serve_app as make_app

    return make_app()
