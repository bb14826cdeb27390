"""Metrics scraped and the status page rendered from a running service, over real HTTP.

The page is opened by headless Chromium, as a support person's browser would
open it: its text is checked for each tenant's counts and a screenshot taken.
Neither the page nor the metrics may carry a value from the uploaded rows.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import Site, require, users_csv
from tests.support.apiserver import ApiServer, Reply
from watcher.config import load_config
from watcher.shell.running.service import Service

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration
FAST = 'batch_window = "1s"\nsettle_time = 0.5\nrescan_interval = 2\nheartbeat_interval = 3600'
# Values of the uploaded rows: none of them may reach a page or a metric.
PERSONAL = ("U-00001", "Name1", "u1@jcu.example", "not-an-email")


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def get(url: str) -> str:
    """The body of a GET."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        return str(answer.read().decode())


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text, or None when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == wanted:
            return float(match[3])
    return None


@contextmanager
def serving(site: Site) -> Iterator[Service]:
    """The service for ``site``, in a thread, stopped at the end."""
    service = Service(load_config(site.config))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(30)


def test_metrics_follow_a_real_batch_and_the_page_shows_it_in_a_browser(tmp_path: Path) -> None:
    """Pending rows while the API is slow; after it, the batch's counts; then the page."""
    chromium = require("chromium")
    port = free_port()

    def slow(_: dict[str, Any], __: int) -> Reply:
        return Reply(delay=0.15)

    with ApiServer(slow) as api:
        site = Site(tmp_path, api_url=api.url, service=f'{FAST}\nhttp_listen = "127.0.0.1:{port}"')
        base = f"http://127.0.0.1:{port}"
        with serving(site):
            wait_for(lambda: _answers(f"{base}/metrics"))
            site.drop_file("users.csv", users_csv(60, bad_every=10))
            (site.drop / "check" / "trial.csv").write_text(users_csv(7, bad_every=3, start=100))
            pending: list[float] = []
            flying: list[float] = []

            def rows_pending() -> bool:
                metrics = get(f"{base}/metrics")
                pending.append(sample(metrics, "user_import_pending_rows", tenant="jcu") or 0)
                flying.append(sample(metrics, "user_import_api_in_flight", tenant="jcu") or 0)
                return pending[-1] > 0 and flying[-1] > 0

            wait_for(rows_pending)
            # The archive's .result.json comes before the batch is done and
            # counted: wait for the count itself, or a loaded machine reads
            # the metrics in between. The check is answered by then too.
            wait_for(
                lambda: (
                    sample(
                        get(f"{base}/metrics"),
                        "user_import_batch_duration_seconds_count",
                        tenant="jcu",
                    )
                    == 1
                    and (site.drop / "check" / "trial.csv.check.json").exists()
                )
            )
            metrics = get(f"{base}/metrics")
            overview = _browse(chromium, base + "/", tmp_path / "overview.png")
            tenant = _browse(chromium, base + "/tenants/jcu", tmp_path / "jcu.png")
            pages = get(base + "/") + get(base + "/tenants/jcu")
    assert max(pending) > 0
    assert max(flying) >= 1  # requests in flight while the API answers slowly
    assert sample(metrics, "user_import_api_in_flight", tenant="jcu") == 0
    assert (sample(metrics, "user_import_api_concurrency_limit", tenant="jcu") or 0) >= 1
    assert sample(metrics, "user_import_rows_total", tenant="jcu", outcome="imported") == 54
    assert sample(metrics, "user_import_rows_total", tenant="jcu", outcome="failed") == 6
    assert sample(metrics, "user_import_files_total", tenant="jcu", outcome="partly_imported") == 1
    assert sample(metrics, "user_import_api_requests_total", tenant="jcu", status_class="2xx") == 54
    assert sample(metrics, "user_import_batch_duration_seconds_count", tenant="jcu") == 1
    assert sample(metrics, "user_import_pending_rows", tenant="jcu") == 0
    # No SMTP: the batch's report and the check's answer are kept.
    assert sample(metrics, "user_import_outbox_messages", tenant="jcu") == 2
    assert sample(metrics, "user_import_held_batches", tenant="jcu") == 0
    assert sample(metrics, "user_import_drop_folder_watched", tenant="jcu") == 1
    assert (sample(metrics, "user_import_last_batch_age_seconds", tenant="jcu") or 99) < 60
    assert "jcu" in overview
    assert re.search(r"jcu\s.*\s60\s+54\s+0\s+6\s", overview, re.DOTALL), overview
    assert "users.csv" in tenant, tenant[-3000:]
    assert re.search(r"60\s+54\s+0\s+6\s+0\s+0\s+invalid_email \u00d76", tenant), tenant
    # The batch's row says when its file arrived and when it finished, both times.
    assert "Arrived Finished State" in re.sub(r"\s+", " ", tenant)
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", tenant)) >= 2
    # The chart: a strip per kind, each with its scale (54 imported, 6 failed today).
    assert re.search(r"\b54\s+imported\b", tenant), tenant
    assert re.search(r"\b6\s+failed\b", tenant), tenant
    # The check lane's answer, beside the batches: the file, its rows, what it would do.
    assert re.search(
        r"1 file checked in the last 7 days, 0 of them would import whole\.\s+Checked\s+File"
        r"\s+Rows\s+Answer\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+trial\.csv\s+7\s+2 rows would fail",
        tenant,
    ), tenant
    assert (tmp_path / "overview.png").stat().st_size > 5000
    assert (tmp_path / "jcu.png").stat().st_size > 5000
    for value in PERSONAL:
        assert value not in metrics
        assert value not in pages


def test_the_listener_is_read_only_and_knows_only_configured_tenants(tmp_path: Path) -> None:
    """POST is refused; an unknown tenant is a 404, not a page."""
    port = free_port()
    site = Site(tmp_path, service=f'{FAST}\nhttp_listen = "127.0.0.1:{port}"')
    base = f"http://127.0.0.1:{port}"
    with serving(site):
        wait_for(lambda: _answers(base + "/"))
        # Pages of different lengths, one after the other, each whole.
        pages = [get(base + "/"), get(base + "/tenants/jcu"), get(base + "/")]
        head = urllib.request.Request(base + "/tenants/jcu", method="HEAD")  # noqa: S310 - loopback
        with urllib.request.urlopen(head, timeout=10) as answer:  # noqa: S310 - loopback
            head_status, head_body = answer.status, answer.read()
        post = urllib.request.Request(base + "/", data=b"x", method="POST")  # noqa: S310 - loopback
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=10)  # noqa: S310 - loopback
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(base + "/tenants/nobody", timeout=10)  # noqa: S310 - loopback
        refused.value.close()  # an HTTPError holds the connection open
        unknown.value.close()
    assert (refused.value.code, unknown.value.code) == (405, 404)
    assert all(page.endswith("</html>\n") for page in pages)
    assert len(pages[1]) != len(pages[0])
    assert (head_status, head_body) == (200, b"")


def _answers(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return False
    return True


def _browse(chromium: str, url: str, screenshot: Path) -> str:
    """The page's visible text as headless Chromium renders it, and a screenshot of it."""
    flags = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={screenshot.parent / 'chromium-profile'}",
        "--window-size=1280,900",
    ]  # fmt: skip
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=90
    )
    dom = subprocess.run(
        [*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=90
    )
    screenshot.with_suffix(".html").write_text(dom.stdout)  # kept for a failing run
    text = re.sub(r"<style>.*?</style>|<[^>]+>", " ", dom.stdout, flags=re.DOTALL)
    return re.sub(r"[ \t]+", " ", text.replace("&times;", "\u00d7"))


def test_an_address_in_use_is_said_and_the_service_imports_without_it(tmp_path: Path) -> None:
    """Metrics are not worth a stopped import: the bind failure is logged and work goes on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        site = Site(tmp_path, service=f'{FAST}\nhttp_listen = "127.0.0.1:{port}"')
        site.drop_file("users.csv", users_csv(3))
        result = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    events = site.events(result)
    (refused,) = [e for e in events if e["event"] == "http.unavailable"]
    assert refused["address"] == f"127.0.0.1:{port}"
    assert refused["error"] == "Address already in use"
    assert refused["level"] == "error"
    assert result.returncode == 0, result.stderr
    assert [e["imported"] for e in events if e["event"] == "batch.completed"] == [3]
