"""The report in a real browser: headless Chromium opens it from disk over the DevTools protocol.

Asserts no console errors or exceptions, every chart image decoded (naturalWidth > 0),
no http(s) request at all, and saves a screenshot next to the test's files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from report_support import small_run  # noqa: F401 - a fixture
from support import need_server

from iotbench.transports.servers.process import free_port

pytestmark = [pytest.mark.server]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STEP_TIMEOUT_S = 20.0


class DevTools:
    """A minimal Chrome DevTools Protocol client over one websocket (page target)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        my_id = self.next_id
        await self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                message = json.loads(await self.ws.recv())
                if message.get("id") == my_id:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message.get("result", {})
                self.events.append(message)

    async def wait_for(self, method: str) -> dict[str, Any]:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            for event in self.events:
                if event.get("method") == method:
                    return event
            while True:
                message = json.loads(await self.ws.recv())
                self.events.append(message)
                if message.get("method") == method:
                    return message


def _page_ws_url(port: int) -> str:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                targets = json.load(resp)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"chromium's DevTools endpoint on port {port} did not come up in {STEP_TIMEOUT_S:g} s")


async def _inspect(ws_url: str, url: str, shot: Path) -> dict[str, Any]:
    import websockets

    async with websockets.connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=STEP_TIMEOUT_S) as ws:
        cdp = DevTools(ws)
        for domain in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            await cdp.call(domain)
        await cdp.call("Page.navigate", url=url)
        await cdp.wait_for("Page.loadEventFired")
        result = await cdp.call(
            "Runtime.evaluate",
            returnByValue=True,
            expression=(
                "JSON.stringify({images: Array.from(document.images).map(i => "
                "({w: i.naturalWidth, done: i.complete, alt: i.alt})), "
                "decision: !!document.getElementById('the-decision'), title: document.title})"
            ),
        )
        page = json.loads(result["result"]["value"])
        metrics = await cdp.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot_data = await cdp.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1},
        )
        shot.write_bytes(base64.b64decode(shot_data["data"]))
        pdf = await cdp.call("Page.printToPDF", printBackground=False, paperWidth=8.27, paperHeight=11.69)
        shot.with_suffix(".pdf").write_bytes(base64.b64decode(pdf["data"]))  # printable: A4, print styles
        return {"page": page, "events": cdp.events}


@pytest.fixture(scope="module")
def report(small_run: Path) -> Path:
    path = small_run / "report.html"  # written by `iotbench run` at the end of the run
    assert path.is_file()
    return path


def test_report_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        need_server("chromium (Debian package 'chromium') for the real-browser report test")
    port = free_port()
    profile = tmp_path / "profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--remote-debugging-port={port}",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--window-size=1200,900",
        "about:blank",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "chromium.log", "wb"), start_new_session=True
    )
    shot = tmp_path / "report.png"
    try:
        ws_url = _page_ws_url(port)
        seen = asyncio.run(asyncio.wait_for(_inspect(ws_url, report.resolve().as_uri(), shot), 90))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    page, events = seen["page"], seen["events"]
    errors = [
        e
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert errors == [], f"console errors: {errors}"
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == [], f"network requests: {requests}"
    assert page["decision"], "the decision section is missing"
    assert len(page["images"]) >= 3, f"expected charts, found {page['images']}"
    undecoded = [i for i in page["images"] if not (i["done"] and i["w"] > 0)]
    assert undecoded == [], f"images that did not decode: {undecoded}"
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = shot.with_suffix(".pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") + pdf.count(b"/Type/Page") >= 2
    print(f"screenshot: {shot}")
