"""uvicorn's access formatter unpacks the record's args: the filter must keep their shape."""

import logging

from uvicorn.logging import AccessFormatter

from middleware.detect import Detector, load_config
from middleware.service.logfilter import RedactingFilter, detector_redactor


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
