"""gridhall's HTTP API: the JSON read API mounted at ``/api/v1`` (docs/api.md).

``api.v1.create_blueprint(sessions, settings, timing)`` builds the Flask blueprint; ``app.py``
registers it on the Dash app's server. The figures come from ``dashboard.figures.readapi``.
"""

from .v1 import create_blueprint

__all__ = ["create_blueprint"]
