"""Opens a page in headless Chromium and clicks a button the way a person would.

    python3 chromium_click.py <chromium> <url> <button-id>

Drives Chromium over its DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
separated by NUL on file descriptors 3 and 4), so nothing but the standard library is needed.
Loads the page, moves the mouse onto the button and presses it (a real click: the browser submits the form itself, no script on the page), waits
for the next page, and prints one JSON object: {"before": <html>, "after": <html>, "url": ...}.
Exits non-zero with a message on stderr when something does not happen within 30 seconds.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

DEADLINE = 30.0


class Browser:
    def __init__(self, chromium):
        self.profile = tempfile.mkdtemp(prefix="herald-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def wire():
            # Move the child's ends out of the way first, so dup2 onto 3 and 4 cannot clobber them.
            os.dup2(to_child_r, 200)
            os.dup2(from_child_w, 201)
            os.dup2(200, 3)
            os.dup2(201, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync", "--remote-debugging-pipe",
             "--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=wire, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        return self.wait(lambda m: m.get("id") == self.next_id, f"a reply to {method}")

    def wait(self, matches, what):
        for i, event in enumerate(self.events):
            if matches(event):
                return self.events.pop(i)
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_child, 1 << 16)
                if not chunk:
                    raise SystemExit(f"chromium closed the DevTools pipe while waiting for {what}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "error" in message and "id" in message:
                raise SystemExit(f"DevTools error while waiting for {what}: {message['error']}")
            if matches(message):
                return message
            self.events.append(message)
        raise SystemExit(f"timed out waiting for {what}")

    def close(self):
        try:
            self.send("Browser.close")
        except BaseException:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        subprocess.run(["rm", "-rf", self.profile], check=False)


def main():
    chromium, url, button = sys.argv[1:4]
    browser = Browser(chromium)
    try:
        targets = browser.send("Target.getTargets")["result"]["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["result"]["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Runtime.enable", session=session)

        def evaluate(expression):
            reply = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            return reply["result"]["result"].get("value")

        def loaded():
            browser.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, "the page to load")

        browser.send("Page.navigate", {"url": url}, session=session)
        loaded()
        before = evaluate("document.documentElement.outerHTML")
        # Scroll the button into view, as a person would, then aim at its middle.
        box = evaluate(f"(() => {{ const b = document.getElementById({json.dumps(button)}); if (!b) return null;"
                       f" b.scrollIntoView({{block: 'center'}}); return JSON.stringify(b.getBoundingClientRect()); }})()")
        if box is None:
            raise SystemExit(f"the page has no element with id {button!r}")
        rect = json.loads(box)
        x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
        target = evaluate(f"document.elementFromPoint({x}, {y})?.id")
        if target != button:
            raise SystemExit(f"the button {button!r} is covered at ({x}, {y}) by element {target!r}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params.update({"button": "left", "clickCount": 1})
            browser.send("Input.dispatchMouseEvent", params, session=session)
        try:
            loaded()
        except SystemExit as error:
            raise SystemExit(f"{error} after the click at ({x}, {y}); the browser shows {evaluate('location.href')}:\n"
                             f"{evaluate('document.documentElement.outerHTML')}")
        after = evaluate("document.documentElement.outerHTML")
        print(json.dumps({"before": before, "after": after, "url": evaluate("location.href")}))
    finally:
        browser.close()


if __name__ == "__main__":
    main()
