"""The web UI and HTTP API behind ``painterly serve`` (needs the ``server`` extra).

- :mod:`~painterly.server.app`: builds the app (state, middleware, routers, error handlers);
- :mod:`~painterly.server.routes`: one router per concern (health and config, jobs, stylize, pages);
- :mod:`~painterly.server.security`: middleware for Host/Origin, token, upload size, security headers;
- :mod:`~painterly.server.state`: the one object routes share; :mod:`~painterly.server.config`: settings;
- :mod:`~painterly.server.forms`: a job's form to checked settings; :mod:`~painterly.server.uploads`:
  images decoded small, a few at a time;
- :mod:`~painterly.server.jobs`: the bounded queue and one worker per device, around ``run_transfer``;
- :mod:`~painterly.server.store`: job records in SQLite and result files, under the data folder;
- :mod:`~painterly.server.models`: fast stylization with trained models;
- :mod:`~painterly.server.serving`: uvicorn with a quick shutdown; :mod:`~painterly.server.logs`: the
  access log without tokens;
- ``static/``: the page, plain HTML, CSS and JavaScript (no build step).
"""

from __future__ import annotations

from painterly.server.config import ServerSettings

INSTALL_HINT = "pip install 'painterly[server]'"


def create_app(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See :func:`painterly.server.app.create_app` (imported lazily: a missing extra is one clear error)."""
    from painterly.server.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["INSTALL_HINT", "ServerSettings", "create_app"]
