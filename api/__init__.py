"""gridhall's HTTP API: the JSON read API mounted at ``/api/v1`` (docs/api.md).

``api.v1.create_blueprint(sessions, settings, timing)`` builds the Flask blueprint; ``app.py``
registers it on the Dash app's server. The figures come from ``dashboard.figures.readapi``.
``api.open311.create_blueprint`` is Open311 GeoReport v2 at ``/open311/v2`` (docs/open311.md).
"""

from .v1 import create_blueprint

__all__ = ["create_blueprint"]
