"""The HTTP layer of the gateway: routes (thin), auth, limits, error mapping, log filter.

Routes call the domain (`coatcheck.middleware.gateway`); the app factory that mounts them
is `coatcheck.middleware.app:create_app`.
"""
