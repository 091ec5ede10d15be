"""Headless Chromium driven over the Chrome DevTools Protocol, for page tests.

Chromium is started with `--remote-debugging-pipe`: it reads commands on
file descriptor 3 and writes answers and events on 4, as NUL-terminated
JSON. A pipe needs no port (nothing to collide with other test runs) and
no websocket client, so the tests depend on nothing beyond the browser.

    with Chromium() as browser:
        page = browser.new_page("http://127.0.0.1:8000/")
        page.wait_for("window.enet && window.enet.status === 'ready'")
        page.evaluate("document.title")
"""

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time

# Debian names the package and binary "chromium"; other systems one of these.
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The path of a Chromium or Chrome binary, or None."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class StaticServer:
    """Serves a folder on 127.0.0.1 (a free port) in a thread, counting GETs.

    As `python -m http.server -d DIRECTORY` does, without its log lines.
    """

    def __init__(self, directory):
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class BrowserError(RuntimeError):
    """The browser exited, timed out or answered a command with an error."""


class Chromium:
    """A headless Chromium process and its DevTools pipe.

    Args:
        binary: str or None. The browser; None: `find_chromium()`.
        timeout: float. Seconds to wait for one command's answer.
    """

    def __init__(self, binary=None, timeout=120.0):
        self.binary = binary or find_chromium()
        self.timeout = timeout
        self.process = None
        self._next_id = 0
        self._buffer = b""

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="tf_enet_chromium_")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        # Above the descriptors the child will use, so the dup2s below do
        # not overwrite one another.
        child_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def pipes_to_3_and_4():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.process = subprocess.Popen(
            [
                self.binary,
                "--headless",
                "--remote-debugging-pipe",
                # Chromium's sandbox refuses to run as root (containers, CI).
                "--no-sandbox",
                "--no-first-run",
                "--disable-dev-shm-usage",
                # A generated camera picture for getUserMedia; whether a page
                # may use it is set per test (`Page.set_camera_permission`).
                "--use-fake-device-for-media-stream",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=pipes_to_3_and_4,
            pass_fds=(3, 4),
        )
        os.close(child_in)
        os.close(child_out)
        self._write = to_browser_write
        self._read = from_browser_read
        return self

    def __exit__(self, *exc):
        try:
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method, params=None, session_id=None):
        """Sends one command and returns its result (dict).

        Raises:
            BrowserError: the browser answered with an error, exited or
                did not answer within `timeout` seconds.
        """
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._receive(deadline, method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})

    def _receive(self, deadline, method):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no answer from Chromium in {self.timeout} s.")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise BrowserError(f"{method}: Chromium exited.")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def new_page(self, url, width=1280, height=900, mobile=False):
        """Opens `url` in a new tab of `width` x `height` CSS pixels.

        Returns:
            Page.
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        # In front, so that requestAnimationFrame runs (it waits while a
        # tab is in the background).
        page.send("Page.bringToFront")
        page.send("Page.navigate", {"url": url})
        return page


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser, session_id):
        self.browser = browser
        self.session_id = session_id

    def send(self, method, params=None):
        return self.browser.send(method, params, self.session_id)

    def evaluate(self, expression):
        """The value of a JavaScript expression (promises awaited).

        Raises:
            BrowserError: the expression threw.
        """
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]}: {text}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=120.0, poll=0.1):
        """Waits until a JavaScript expression is truthy; returns its value.

        Raises:
            BrowserError: naming the expression, after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"Timed out after {timeout} s waiting for {expression}.")
            time.sleep(poll)

    def set_camera_permission(self, origin, setting):
        """Grants ("granted") or refuses ("denied") the camera to `origin`."""
        self.browser.send(
            "Browser.setPermission",
            {"permission": {"name": "camera"}, "setting": setting, "origin": origin},
        )

    def set_files(self, selector, paths):
        """Chooses files in an `<input type=file>`, as a user does (fires change)."""
        node = self.send(
            "Runtime.evaluate", {"expression": f"document.querySelector({json.dumps(selector)})"}
        )["result"]
        self.send(
            "DOM.setFileInputFiles",
            {"files": [os.path.abspath(p) for p in paths], "objectId": node["objectId"]},
        )

    def screenshot(self, path):
        """Saves the page's viewport as a PNG."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
