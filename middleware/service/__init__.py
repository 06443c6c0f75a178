"""The FastAPI gateway: webhook, vault API, auth, limits, history and the log filter.

`create_app` builds the app; `coatcheck serve` runs `middleware.service.app:worker_app`
(a uvicorn factory: the same app, its startup objects frozen for the collector).
"""

from middleware.service.app import create_app
from middleware.service.errors import ServiceError

__all__ = ["ServiceError", "create_app"]
