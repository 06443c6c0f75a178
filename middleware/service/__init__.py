"""The FastAPI gateway: webhook, vault API, auth, limits, history and the log filter.

`create_app` is the uvicorn factory (`coatcheck.middleware.service.app:create_app`, factory=True).
"""

from coatcheck.middleware.service.app import create_app
from coatcheck.middleware.service.errors import ServiceError

__all__ = ["ServiceError", "create_app"]
