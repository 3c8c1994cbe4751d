"""Suite-wide guard: no private key used by any test may appear in any log record, captured
output or failure report of the suite. Every keeper logger runs at DEBUG while the tests run,
so even records nobody displays are scanned."""

import contextlib
import logging

import pytest
import pytest_asyncio
from eth_utils import keccak
from web3.providers import AsyncHTTPProvider

SECRETS = {
    "chain tests' keeper key": keccak(text="keeper test key").hex(),
    "demo keeper key": keccak(text="keeper demo key").hex(),
    "config tests' key": "4c" * 32,
    "anvil dev key 0": "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "anvil dev key 9": "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
    "private tests' relay auth key": "42" * 32,
    "unit tests' relay API key": "relay-api-key-7f3a",
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


# Every HTTP provider a test opens (directly, or through the keeper it builds) is closed when the
# test ends: with ResourceWarning an error (pyproject.toml), a leaked aiohttp session fails the run.
_PROVIDERS: list[AsyncHTTPProvider] = []
_provider_init = AsyncHTTPProvider.__init__


def _tracked_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    _provider_init(self, *args, **kwargs)
    _PROVIDERS.append(self)


AsyncHTTPProvider.__init__ = _tracked_init  # type: ignore[method-assign]


@pytest_asyncio.fixture(autouse=True)
async def _close_http_providers():
    yield
    while _PROVIDERS:
        provider = _PROVIDERS.pop()
        with contextlib.suppress(Exception):  # a provider whose node is already gone
            await provider.disconnect()
