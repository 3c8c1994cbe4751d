"""Suite-wide guard: no private key used by any test may appear in any log record, captured
output or failure report of the suite. Every keeper logger runs at DEBUG while the tests run,
so even records nobody displays are scanned."""

import logging

import pytest
from eth_utils import keccak

SECRETS = {
    "chain tests' keeper key": keccak(text="keeper test key").hex(),
    "demo keeper key": keccak(text="keeper demo key").hex(),
    "config tests' key": "4c" * 32,
    "anvil dev key 0": "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "anvil dev key 9": "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
}
LEAKS: list[str] = []


def leaked(text: str) -> list[str]:
    low = text.lower()
    return [name for name, secret in SECRETS.items() if secret in low]


class _KeyScan(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot format cannot leak either
            return
        for name in leaked(text):
            LEAKS.append(f"log record {record.name}:{record.lineno} contains the {name}")


def pytest_configure(config: pytest.Config) -> None:
    handler = _KeyScan(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(message)s %(exc_text)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("keeper").setLevel(logging.DEBUG)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for section, text in report.sections:
        for name in leaked(text):
            LEAKS.append(f"{report.nodeid} {section} contains the {name}")
    if report.failed:
        for name in leaked(report.longreprtext):
            LEAKS.append(f"{report.nodeid} failure report contains the {name}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LEAKS:
        print("\nPRIVATE KEY LEAK:\n  " + "\n  ".join(sorted(set(LEAKS))))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
