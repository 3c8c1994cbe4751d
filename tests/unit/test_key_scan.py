"""The suite's key scan (tests/conftest.py) sees a key in a log record: the guard can fail."""

import logging

from tests import conftest


def test_the_scan_catches_a_key_in_a_log_record():
    before = len(conftest.LEAKS)
    secret = conftest.SECRETS["config tests' key"]
    record = logging.LogRecord("keeper.test", logging.DEBUG, __file__, 1, "signing with %s", (secret,), None)
    conftest._KeyScan().emit(record)
    assert len(conftest.LEAKS) == before + 1 and "config tests' key" in conftest.LEAKS[-1]
    del conftest.LEAKS[before:]  # this one was planted
