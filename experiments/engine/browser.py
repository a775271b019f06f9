"""Opening static pages in headless Chromium over its DevTools protocol (CDP, JSON over one websocket), so that a
page is judged as a reader's browser shows it, offline:

- the network is blocked (``--host-resolver-rules`` maps every host to nothing) and every request is paused by
  ``Fetch``: one that leaves ``file:``/``data:``/``about:``/``blob:`` is failed and reported;
- console errors, uncaught exceptions and failed loads (``Log``/``Runtime`` events) are reported;
- once the page has loaded (and MathJax, where the page has it, has typeset), a probe reads the images (loaded,
  non-zero size), the links (each must resolve to a file, and an anchor to an element id), and the rendered text
  outside ``pre``/``code``/``script``/``style``/``math``, in which no LaTeX may be left (``$$``, ``\\frac``, ``_{``).

One browser serves every page (about a second a page). The driver is ~100 lines of CDP because a maintained
driver (playwright) downloads its own browsers, which this project cannot; ``websockets`` carries the messages.
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from experiments.engine.mathhtml import RAW_TEX

LOCAL = ("file:", "data:", "about:", "blob:")
SKIP_DIRS = {"mathjax"}        # the MathJax copy beside the notebooks is a library, not a page to read

_PROBE = r"""(async () => {
  if (window.MathJax && MathJax.Hub && MathJax.Hub.Queue) {
    await new Promise(r => MathJax.Hub.Queue(() => r(true)));
  }
  if (document.fonts) { await document.fonts.ready; }
  const broken = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) broken.push(img.getAttribute('src'));
  }
  const links = [];
  for (const a of document.querySelectorAll('a[href]')) links.push(a.getAttribute('href'));
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
  const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'MATH', 'TEXTAREA', 'NOSCRIPT']);
  const texts = [];
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let e = n.parentElement, hidden = false;
    while (e && !hidden) {
      if (skip.has(e.tagName.toUpperCase())) hidden = true;
      e = e.parentElement;
    }
    if (hidden || !n.parentElement || !n.parentElement.checkVisibility()) continue;
    texts.push(n.textContent);
  }
  return JSON.stringify({images: document.images.length, broken: broken, links: links, ids: ids,
                         text: texts.join(' ')});
})()"""


def binary() -> str | None:
    for b in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(b)
        if p:
            return p
    return None


class Browser:
    """One headless Chromium with one tab, driven over CDP."""

    def __init__(self, path: str, timeout: float = 30):
        from websockets.sync.client import connect
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory()
        self._proc = subprocess.Popen(
            [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--allow-file-access-from-files", "--remote-debugging-port=0",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        t0 = time.monotonic()
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if time.monotonic() - t0 > timeout or self._proc.poll() is not None:
                self.close()
                raise RuntimeError(f"Chromium ({path}) did not open its DevTools port")
            time.sleep(0.05)
        port, ws_path = port_file.read_text().split()[:2]
        self._ws = connect(f"ws://127.0.0.1:{port}{ws_path}", max_size=None, open_timeout=timeout).__enter__()
        self._id = 0
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self._call(f"{domain}.enable", session=True)
        self._call("Fetch.enable", session=True, patterns=[{"urlPattern": "*"}])
        self.events: list[str] = []
        self.requests: list[str] = []
        self._loaded = False

    def _call(self, method: str, session: bool = False, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self._session
        self._ws.send(json.dumps(msg))
        want = self._id
        while True:
            reply = json.loads(self._ws.recv(timeout=self.timeout))
            if reply.get("id") == want:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._event(reply)

    def _event(self, msg: dict) -> None:
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Fetch.requestPaused":
            url = p["request"]["url"]
            if url.startswith(LOCAL):
                self._send("Fetch.continueRequest", requestId=p["requestId"])
            else:
                self.requests.append(url)
                self._send("Fetch.failRequest", requestId=p["requestId"], errorReason="BlockedByClient")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.events.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.events.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.events.append(f"{e.get('text', '')} {e.get('url', '')}".strip())
        elif method == "Page.loadEventFired":
            self._loaded = True

    def _send(self, method: str, **params) -> None:
        # a reply to a fire-and-forget command carries an id nobody waits for; _call skips it
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params, "sessionId": self._session}))

    def open(self, url: str) -> dict:
        """Load ``url``, wait for its load event, run the probe; returns its findings with the page's console
        errors (``console``) and the requests that left the machine (``network``)."""
        self.events, self.requests, self._loaded = [], [], False
        self._call("Page.navigate", session=True, url=url)
        t0 = time.monotonic()
        while not self._loaded:
            if time.monotonic() - t0 > self.timeout:
                return {"error": "the page did not finish loading", "console": self.events,
                        "network": self.requests}
            self._event(json.loads(self._ws.recv(timeout=self.timeout)))
        res = self._call("Runtime.evaluate", session=True, expression=_PROBE, awaitPromise=True,
                         returnByValue=True, timeout=int(self.timeout * 1000))
        if "exceptionDetails" in res:
            found = {"error": f"the probe failed: {res['exceptionDetails'].get('text')}"}
        else:
            found = json.loads(res["result"]["value"])
        found.update(console=list(self.events), network=list(self.requests))
        return found

    def close(self) -> None:
        try:
            if getattr(self, "_ws", None) is not None:
                self._ws.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pages(root: Path) -> list[Path]:
    """Every HTML page under ``root``, the MathJax copy left out."""
    return sorted(p for p in Path(root).rglob("*.html")
                  if not SKIP_DIRS & set(p.relative_to(root).parts[:-1]) and not p.name.startswith(".probe-"))


def _link_problems(page: Path, href: str, ids: list[str]) -> list[str]:
    if not href:
        return ["empty link"]
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href):
        return [] if href.startswith("mailto:") else [f"link {href!r} leaves the site"]
    target, _, anchor = href.partition("#")
    dest = (page.parent / unquote(urlparse(target).path)) if target else page
    if not dest.exists():
        return [f"link {href} does not resolve"]
    if anchor and dest.suffix == ".html":
        have = ids if dest.resolve() == page.resolve() else re.findall(r'\bid="([^"]*)"', dest.read_text())
        have = {html.unescape(x) for x in have}
        if anchor not in have and unquote(anchor) not in have:   # a browser tries the fragment as is, then decoded
            return [f"link {href}: no anchor {unquote(anchor)!r} in {dest.name}"]
    return []


def problems_of(page: Path, found: dict, name: str) -> list[str]:
    """The findings of one page, as lines naming it."""
    out = [f"{name}: {found['error']}"] if "error" in found else []
    out += [f"{name}: image {src} did not load" for src in found.get("broken", [])]
    out += [f"{name}: console: {c}" for c in found.get("console", [])]
    out += [f"{name}: network request {u} (the pages must load nothing from the network)"
            for u in found.get("network", [])]
    for href in found.get("links", []):
        out += [f"{name}: {p}" for p in _link_problems(page, href, found.get("ids", []))]
    text = found.get("text", "")
    for m in list(RAW_TEX.finditer(text))[:5]:
        around = text[max(0, m.start() - 40):m.end() + 40]
        out.append(f"{name}: raw TeX {m.group(0)!r} in the rendered text: …{around}…")
    return out


def check(roots, browser: str | None = None) -> list[str]:
    """Every page under each of ``roots`` opened in one headless Chromium: the problems found (empty: sound)."""
    browser = browser or binary()
    if browser is None:
        return ["no Chromium on PATH (apt-get install -y chromium, or `make chromium`)"]
    found_pages = [(Path(r).resolve(), p.resolve()) for r in roots for p in pages(Path(r).resolve())]
    if not found_pages:
        return [f"no HTML page under {', '.join(map(str, roots))}"]
    problems = []
    with Browser(browser) as b:
        for root, page in found_pages:
            name = f"{root.name}/{page.relative_to(root)}"
            problems += problems_of(page, b.open(page.as_uri()), name)
    return problems
