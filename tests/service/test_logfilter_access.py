"""uvicorn's access formatter unpacks the record's args: the filter must keep their shape."""

import logging

from uvicorn.logging import AccessFormatter

from coatcheck.middleware.detect import Detector, load_config
from coatcheck.middleware.service.logfilter import RedactingFilter, detector_redactor


def _access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:5555", "GET", path, "1.1", 200),
        None,
    )


def test_access_line_formats_and_is_redacted() -> None:
    flt = RedactingFilter(detector_redactor(Detector(load_config(None))))
    record = _access_record("/v1/x?mail=jane.doe@example.com")
    assert flt.filter(record) is True
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
    assert "jane.doe@example.com" not in line
    assert "203.0.113.7" not in line
    assert "[EMAIL_ADDRESS]" in line and "200" in line


ACCESS_ROWS = [
    # (client, method, path, what must be in the line, what must not)
    ("203.0.113.7:5555", "POST", "/webhooks/rest/webhook", "/webhooks/rest/webhook", "203.0.113.7"),
    ("[2001:db8::1]:443", "GET", "/health", "[IP_ADDRESS]:443", "2001:db8::1"),
    (
        "10.0.0.1:1",
        "GET",
        "/v1/conversations/jane.doe@example.com/history",
        "[EMAIL_ADDRESS]",
        "jane.doe",
    ),
    ("10.0.0.1:1", "POST", "/v1/redact?to=+1 415 555 0123", "/v1/redact?to=", "555 0123"),
    (
        "10.0.0.1:1",
        "GET",
        "/v1/conversations/jane.doe%40example.com/end",
        "[EMAIL_ADDRESS]",
        "jane",
    ),
    ("10.0.0.1:1", "GET", "/v1/x?to=%2B1%20415%20555%200123", "[PHONE_NUMBER]", "555"),
    ("jane.doe@example.com:80", "POST", "/v1/check", "[EMAIL_ADDRESS]", "jane.doe"),
    ("10.0.0.1:1", "JANE.DOE@EXAMPLE.COM", "/health", "[EMAIL_ADDRESS]", "JANE.DOE"),
]


def test_access_fast_path_keeps_fixed_routes_and_redacts_the_rest() -> None:
    flt = RedactingFilter(detector_redactor(Detector(load_config(None))))
    formatter = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s")
    for client, method, path, present, absent in ACCESS_ROWS:
        record = _access_record(path)
        record.args = (client, method, path, "1.1", 200)
        assert flt.filter(record) is True
        line = formatter.format(record)
        assert present in line, (client, path, line)
        assert absent not in line, (client, path, line)
        assert isinstance(record.args, tuple) and len(record.args) == 5


def test_a_record_seen_by_logger_and_handler_is_rewritten_once() -> None:
    """The filter sits on uvicorn's logger and its handler: the second pass used to send
    the masked client `[IP_ADDRESS]:5555` (no address) to the detector on every request."""
    calls: list[str] = []
    real = detector_redactor(Detector(load_config(None)))

    def counting(text: str) -> str:
        calls.append(text)
        return real(text)

    logger = logging.getLogger("uvicorn.access.test-once")
    handler = logging.Handler()
    lines: list[str] = []
    handler.emit = lambda record: lines.append(AccessFormatter("%(client_addr)s").format(record))  # type: ignore[method-assign]
    flt = RedactingFilter(counting)
    logger.addFilter(flt)
    handler.addFilter(flt)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        record = _access_record("/webhooks/rest/webhook")
        logger.handle(record)
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(flt)
    assert lines == ["[IP_ADDRESS]:5555"]
    assert calls == []  # a fixed path and an address: no detector at all
