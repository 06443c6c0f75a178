"""The FastAPI gateway: webhook, vault API, auth, limits, history and the log filter.

`create_app` is the uvicorn factory (`middleware.service.app:create_app`, factory=True).
"""

from middleware.service.app import create_app
from middleware.service.errors import ServiceError

__all__ = ["ServiceError", "create_app"]
