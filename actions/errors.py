"""The one exception root of `actions/`: errors name what failed, never a value."""

from __future__ import annotations

__all__ = [
    "ActionFailed",
    "CoatcheckActionError",
    "ConfigurationError",
    "GrantRefused",
    "InvalidArgument",
    "RevealRefused",
    "ServiceError",
    "ServiceUnavailable",
    "UnsupportedValue",
]


class CoatcheckActionError(Exception):
    """Root of every error this package raises.

    `name` is the offending thing (an env variable, an endpoint, an action); the message
    is a default per class, so no caller can leak a value by formatting one in.
    """

    default_message = "coatcheck action error"

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(f"{name}: {message or self.default_message}")


class ConfigurationError(CoatcheckActionError):
    default_message = "missing or invalid configuration"


class InvalidArgument(CoatcheckActionError):
    """An argument the service cannot be asked about (an empty conversation id)."""

    default_message = "invalid argument"


class UnsupportedValue(CoatcheckActionError):
    """An opted-in action returned something re-tokenization cannot walk; `name` is its type.

    Only JSON-like data (str, numbers, bool, None, dicts, lists, tuples, sets) can be
    checked for revealed values, so anything else fails the run instead of leaving unseen.
    """

    default_message = "returned a value of this type, which cannot be re-tokenized"


class ServiceUnavailable(CoatcheckActionError):
    default_message = "coatcheck service unreachable or timed out"


class ServiceError(CoatcheckActionError):
    """The service answered with an error; `status` and `code` are from its error body."""

    default_message = "coatcheck service returned an error"

    def __init__(self, name: str, status: int, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(name, f"HTTP {status} {code}".strip())


class GrantRefused(ServiceError):
    default_message = "grant refused"


class RevealRefused(ServiceError):
    default_message = "reveal refused"


class ActionFailed(CoatcheckActionError):
    """An opted-in action raised while holding real values.

    The original exception is dropped (its message or traceback could hold a value that
    rasa-sdk would log and return in its 500 body); only its class name is kept.
    """

    default_message = "the action failed while holding revealed values"
