"""The routes, one router per concern. ``app.py`` includes them in this order.

- :mod:`.health`: ``GET /api/health`` and ``GET /api/config`` (limits and the settings' declaration);
- :mod:`.jobs`: image optimization jobs, ``/api/jobs...`` (submit, list, status, cancel, result, events);
- :mod:`.stylize`: fast stylization, ``GET /api/models`` and ``POST /api/stylize``;
- :mod:`.live`: the live camera, ``/api/live`` (a WebSocket);
- :mod:`.videos`: video jobs, ``POST /api/videos`` (followed under ``/api/jobs``);
- :mod:`.pages`: the web page at ``/`` and its files under ``/static``.

A new route goes into the router of its concern (or a new module here, added to :data:`API_ROUTERS`
or :data:`PAGE_ROUTERS`); it reads shared state with ``Depends(get_state)`` and raises
:class:`~painterly.errors.PainterlyError` for a user's mistake (400). Token, ``Host``/``Origin`` checks,
the upload limit and security headers are middleware (:mod:`painterly.server.security`): routes
under ``/api`` get them without asking.
"""

from __future__ import annotations

from painterly.server.routes import health, jobs, live, pages, stylize, videos

#: Routers mounted under ``/api`` (the token applies to all of them).
API_ROUTERS = (health.router, jobs.router, stylize.router, live.router, videos.router)
#: Routers for the page.
PAGE_ROUTERS = (pages.router,)

__all__ = ["API_ROUTERS", "PAGE_ROUTERS"]
