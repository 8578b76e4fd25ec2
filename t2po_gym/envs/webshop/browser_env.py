"""``T2PO/WebShopBrowser-v0``: the WebShop site in a real headless Chromium, driven by selenium."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from typing import Any, Callable, ClassVar

from t2po_gym.envs.webshop.env import SEARCH_PLACEHOLDER, WebShopEnv, parse_webshop_command
from t2po_gym.envs.webshop.shop import SEP
from t2po_gym.protocol import sanitize_text
from t2po_gym.text_env import Transition

__all__ = ["WebShopBrowserEnv", "BrowserUnavailableError", "BrowserTimeoutError", "BrowserProcesses", "CHROME_FLAGS"]

#: Chromium flags measured to work headless in containers (NOTES.md).
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--window-size=1280,2000",
)
CRASH_TEXT = ("The browser or the shop site stopped responding. The episode is truncated; "
              "the next reset starts them again.")

_READ_PAGE_JS = """
const b = document.body;
if (!b) { return null; }
const texts = Array.from(document.querySelectorAll('[data-ws]')).map(e => e.textContent);
const clicks = Array.from(document.querySelectorAll('[data-click]')).map(e => e.dataset.click);
const r = document.getElementById('reward');
return {seq: b.dataset.seq, page: b.dataset.page, texts: texts, clicks: clicks,
        search: document.getElementById('search_input') !== null, reward: r ? r.textContent : null};
"""
_FIND_CLICK_JS = """
return Array.from(document.querySelectorAll('[data-click]')).find(e => e.dataset.click === arguments[0]) || null;
"""


class BrowserUnavailableError(RuntimeError):
    """selenium, Chromium or chromedriver is missing; the message names the fix."""


class BrowserTimeoutError(RuntimeError):
    """The browser did not answer within ``timeout_s`` (its process tree was killed)."""


class SiteDownError(RuntimeError):
    """The env's Flask server stopped answering."""


#: Watchdog: waits for its stdin to close (the owner exited or was killed: the kernel closes
#: the pipe either way), then kills the process group it was told about. A shell, so it costs
#: a few hundred kB and works when the owner dies by SIGKILL, where atexit never runs.
_WATCHDOG_SH = 'read pg; read _; [ -n "$pg" ] && kill -9 "-$pg" 2>/dev/null; exit 0'  # POSIX sh (dash) syntax


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_tree(pgid: int, procs: tuple[subprocess.Popen, ...], profile_dir: str | None) -> None:
    """SIGKILL the group ``pgid`` and any process started for ``profile_dir`` that left it
    (Chromium's crash handler daemonises), reap ``procs`` and delete the profile."""
    # SIGKILL is asynchronous and a process may fork while it is delivered: repeat until no
    # member is left running (zombies of reparented children count as gone), for at most 2 s.
    # The group id is safe to signal while its leader (chromedriver, our child) is not reaped:
    # until then no other process can get that id. Once reaped, only members that are
    # recognisably ours (Chromium / chromedriver, or naming our profile) are signalled.
    deadline = time.monotonic() + 2.0
    leader = procs[0]
    for watchdog in procs[1:]:
        # Its job is done here; stop it first, or on closing its pipe it would signal the group
        # id after the leader is reaped, when the id may belong to someone else.
        try:
            watchdog.kill()
        except OSError:
            pass
    while True:
        if leader.returncode is None:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        ours = set(_pids_of_profile(profile_dir))
        if leader.returncode is not None:
            ours.update(pid for pid in _group_pids(pgid) if _is_browser(pid))
        for pid in ours:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        left = [pid for pid in _group_pids(pgid) + _pids_of_profile(profile_dir) if _running(pid)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    for p in procs:
        try:
            if p.stdin is not None:
                p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
    if profile_dir:
        shutil.rmtree(profile_dir, ignore_errors=True)


def _is_browser(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"chrom" in f.read()
    except OSError:
        return False


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _group_pids(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    out.append(int(entry))
            except OSError:
                continue
    return out


def _pids_of_profile(profile_dir: str | None) -> list[int]:
    """PIDs whose command line names ``profile_dir`` (a unique temporary directory of ours)."""
    if not profile_dir:
        return []
    needle = profile_dir.encode()
    out = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    out.append(int(entry))
        except OSError:
            continue
    return out


class BrowserProcesses:
    """chromedriver (and the Chromium it starts) in a process group of their own, owned by this
    process: killed by :meth:`kill`, by a finaliser when the owner is collected or the
    interpreter exits, and by a watchdog when the owner dies without running Python code.

    Args:
        chromedriver_path: the chromedriver binary.
        profile_dir: Chromium's ``--user-data-dir`` (processes naming it are swept on kill).
    """

    def __init__(self, chromedriver_path: str, profile_dir: str | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.profile_dir = profile_dir
        # the watchdog first, so no moment exists where chromedriver runs unwatched
        self.watchdog = subprocess.Popen(["/bin/sh", "-c", _WATCHDOG_SH], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        self.driver_proc = subprocess.Popen(
            [chromedriver_path, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own session and group (pgid = its pid); Chromium inherits it
        )
        self.pgid = self.driver_proc.pid
        try:
            assert self.watchdog.stdin is not None
            self.watchdog.stdin.write(f"{self.pgid}\n".encode())
            self.watchdog.stdin.flush()
        except OSError:  # pragma: no cover - the watchdog died: the finaliser still kills the tree
            pass
        self._finalizer = weakref.finalize(self, _kill_tree, self.pgid, (self.driver_proc, self.watchdog),
                                           profile_dir)

    def wait_ready(self, timeout: float) -> None:
        """Wait until chromedriver answers ``/status`` (raise after ``timeout`` seconds)."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            if self.driver_proc.poll() is not None:
                raise RuntimeError(f"chromedriver exited with code {self.driver_proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/status", timeout=1) as r:
                    r.read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BrowserTimeoutError(f"chromedriver did not start within {timeout:.0f} s") from None
                time.sleep(0.05)

    def alive(self) -> bool:
        return self._finalizer.alive and self.driver_proc.poll() is None

    def pids(self) -> list[int]:
        """Live processes of the tree: the group's members plus strays naming the profile."""
        return sorted(p for p in set(_pids_of_profile(self.profile_dir) + _group_pids(self.pgid)) if _running(p))

    def kill(self) -> None:
        """Kill the whole tree now (idempotent)."""
        self._finalizer()


class WebShopBrowserEnv(WebShopEnv):
    """WebShop through a real browser: the same shop, served by Flask, read from the DOM.

    ## Description
    The same task, catalog, search engine and reward as ``T2PO/WebShop-v0``, but the shop is
    a Flask site on ``127.0.0.1`` (a free port) and the agent acts through a headless
    Chromium driven by selenium: ``search[...]`` types into the search box and submits the
    form, ``click[...]`` clicks the button, product link or option radio.

    ## Action Space
    As ``T2PO/WebShop-v0``.

    ## Observation Space
    As ``T2PO/WebShop-v0``, but read from the rendered DOM (every visible string, `` [SEP] ``
    joined); admissible actions come from the DOM's clickables and search box.

    ## Rewards
    As ``T2PO/WebShop-v0``; the score is read from the done page.

    ## Starting State
    As ``T2PO/WebShop-v0``: the same seed gives the same goal and the same observations.

    ## Episode End
    Terminated at ``buy now``; truncated after 15 steps, or when the browser or the Flask site
    crashes, is stopped (SIGSTOP) or stops answering: such a step returns within ``timeout_s``
    (plus about a second to kill the browser) with ``info["admissible_actions"] == []``, and
    the next ``reset`` starts a fresh browser (and a fresh site if it died). A step never hangs.

    ## Processes
    chromedriver and every Chromium process run in a process group of their own
    (:class:`BrowserProcesses`). The group is killed on ``close()``, when ``quit()`` fails,
    when the env is garbage-collected or the interpreter exits (a ``weakref.finalize``), and
    when the owning process dies without running any Python (``kill -9``): a small watchdog
    shell waits on a pipe from the owner and kills the group when the pipe closes.

    ## Arguments
    Those of ``T2PO/WebShop-v0`` (``protocol`` is ``"strict"``, the only one a browser can
    play), plus ``chromium_path`` (default ``/usr/bin/chromium``),
    ``chromedriver_path`` (default ``/usr/bin/chromedriver``) and ``timeout_s`` (the hard
    deadline of one step's browser work and of a page load, seconds, default 20; starting a
    browser at reset may take up to ``max(60, timeout_s)``).

    >>> import gymnasium as gym
    >>> env = gym.make("T2PO/WebShopBrowser-v0", observation_mode="raw")  # doctest: +SKIP
    >>> obs, info = env.reset(seed=123)  # doctest: +SKIP
    >>> env.close()  # doctest: +SKIP

    ## Vectorized environment
    Each env owns a Flask server and a Chromium (about 0.8 s to start, 100-200 MB); the
    catalog and the search index are shared. ``env.close()`` stops both.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        *,
        chromium_path: str | None = None,
        chromedriver_path: str | None = None,
        timeout_s: float = 20.0,
        **kwargs: Any,
    ):
        protocol = kwargs.setdefault("protocol", "strict")
        if protocol != "strict":
            # The released protocol searches from any page (web_agent_text_env.py:L100-112), which a
            # browser can only do on the search page; rather than differ silently, refuse.
            raise ValueError(f"protocol={protocol!r} is not supported by T2PO/WebShopBrowser-v0: the browser "
                             "can only search from the search page; use protocol='strict' (the default here)")
        super().__init__(**kwargs)
        self.chromium_path = chromium_path or shutil.which("chromium") or "/usr/bin/chromium"
        self.chromedriver_path = chromedriver_path or shutil.which("chromedriver") or "/usr/bin/chromedriver"
        if not (isinstance(timeout_s, (int, float)) and 0 < float(timeout_s) <= 3600):
            raise ValueError(f"timeout_s must be a number of seconds in (0, 3600], got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self.start_timeout_s = max(60.0, self.timeout_s)
        self.site = None
        self.driver = None
        self._procs: BrowserProcesses | None = None
        self._profile_dir: str | None = None
        self._dom: dict[str, Any] | None = None
        self._crashed = False
        self.restarts = 0
        self.site_restarts = 0
        self.last_fault: str | None = None
        self._reward_warm = False

    # ----------------------------------------------------------------- browser lifecycle
    def _bounded(self, fn: Callable[[], Any], timeout: float) -> Any:
        """Run ``fn`` (browser work) with a hard deadline of ``timeout`` seconds.

        selenium's own timeouts do not bound a call to a stopped (SIGSTOP) or wedged browser:
        retries and waits stack up (62 s measured against ``timeout_s=5``). Past the deadline the
        process tree is killed, which makes the stuck call fail at once, and
        :class:`BrowserTimeoutError` is raised.
        """
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = e

        t = threading.Thread(target=run, name="webshop-browser-call", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            self._kill_browser()
            raise BrowserTimeoutError(f"the browser did not answer within {timeout:.1f} s")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _ensure_site(self) -> None:
        """A Flask server that answers: (re)started when it is missing or has died."""
        if self.site is not None and self.site.alive():
            return
        if self.site is not None:
            self.site.close()
            self.site_restarts += 1
        from t2po_gym.envs.webshop.site import ShopSite

        self.site = ShopSite(self.shop)

    def _start(self) -> None:
        try:
            from selenium import webdriver
        except ImportError:
            raise BrowserUnavailableError("selenium is not installed: pip install 't2po-gym[browser]'") from None
        for path, what in ((self.chromium_path, "Chromium"), (self.chromedriver_path, "chromedriver")):
            if not os.path.exists(path):
                raise BrowserUnavailableError(
                    f"{what} not found at {path}: apt-get install -y chromium chromium-driver "
                    "(or pass chromium_path=/chromedriver_path=)"
                )
        self._ensure_site()
        opts = webdriver.ChromeOptions()
        for flag in CHROME_FLAGS:
            opts.add_argument(flag)
        self._profile_dir = tempfile.mkdtemp(prefix="t2po-chromium-")
        opts.add_argument(f"--user-data-dir={self._profile_dir}")
        opts.binary_location = self.chromium_path
        self._procs = BrowserProcesses(self.chromedriver_path, self._profile_dir)
        try:
            self._procs.wait_ready(self.start_timeout_s)
            self.driver = self._bounded(
                lambda: webdriver.Remote(command_executor=self._procs.url, options=opts),  # type: ignore[union-attr]
                self.start_timeout_s)
        except BaseException:
            self._kill_browser()
            raise
        self.driver.set_page_load_timeout(self.timeout_s)
        self.driver.set_script_timeout(self.timeout_s)
        try:  # bound every HTTP call to chromedriver as well (the hard deadline is _bounded's)
            self.driver.command_executor.client_config.timeout = self.timeout_s + 1
        except AttributeError:
            pass

    def _kill_browser(self) -> None:
        """Kill Chromium and chromedriver at once (no ``quit``): for a crashed or stuck browser."""
        self.driver = None
        self._dom = None
        procs, self._procs = self._procs, None
        if procs is not None:
            procs.kill()
        self._profile_dir = None

    def _stop_browser(self) -> None:
        """Quit the browser politely (bounded), then kill whatever is left of its process tree."""
        d = self.driver
        if d is not None and self._procs is not None and self._procs.alive():
            try:
                self._bounded(d.quit, min(self.timeout_s, 5.0))
            except Exception:  # noqa: BLE001 - a dead or stuck browser cannot quit: it is killed below
                pass
        self._kill_browser()

    def _restart(self) -> None:
        self.restarts += 1
        self._stop_browser()
        self._start()

    def close(self) -> None:
        """Quit Chromium, kill its process tree and stop the Flask server (idempotent)."""
        self._stop_browser()
        if self.site is not None:
            self.site.close()
            self.site = None
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def browser_pids(self) -> list[int]:
        """PIDs of this env's chromedriver and Chromium processes (empty when none runs)."""
        return self._procs.pids() if self._procs is not None else []

    # ----------------------------------------------------------------- DOM access
    def _read_dom(self) -> dict[str, Any]:
        if self._dom is None:
            if self.driver is None:
                raise RuntimeError("the browser is not running")
            driver = self.driver
            dom = self._bounded(lambda: driver.execute_script(_READ_PAGE_JS), self.timeout_s)
            if not dom:
                raise RuntimeError("the page has no body")
            self._dom = dom
        return self._dom

    def _wait_new_page(self, old_seq: str, deadline: float) -> None:
        """Poll until the page's ``data-seq`` changes; raise if the site dies or ``deadline`` passes."""
        while True:
            try:
                seq = self.driver.execute_script(  # type: ignore[union-attr]
                    "return document.readyState === 'complete' && document.body ? document.body.dataset.seq : null")
            except Exception:  # noqa: BLE001 - mid-navigation errors: keep waiting
                seq = None
                if self.driver is None:
                    raise
            if seq is not None and seq != old_seq:
                self._dom = None
                return
            if self.site is None or not self.site.alive():
                raise SiteDownError("the WebShop site stopped answering")
            if time.monotonic() > deadline:
                raise BrowserTimeoutError(f"no new page within {self.timeout_s} s")
            time.sleep(0.01)

    # ----------------------------------------------------------------- hooks
    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        raw, task = super()._reset_game(seed, options)  # picks the goal, resets the shop
        self._crashed = False
        if not self._reward_warm:
            # The reward's spaCy model loads on the first purchase (about 20 s on a busy CPU): load
            # it here, outside any step's deadline, or the first `buy now` would time out.
            from t2po_gym.envs.webshop.reward import spacy_available

            if getattr(self.shop, "type_mode", None) in (None, "auto", "spacy"):
                spacy_available()
            self._reward_warm = True
        for attempt in range(2):
            try:
                self._ensure_site()  # a dead Flask server comes back with the browser
                if self.driver is None:
                    self._start()
                self._dom = None
                driver, url = self.driver, self.site.url  # type: ignore[union-attr]
                self._bounded(lambda: driver.get(url), self.timeout_s)  # type: ignore[union-attr]
                return self._page_text(), task
            except BrowserUnavailableError:
                raise
            except Exception:  # noqa: BLE001 - any driver failure: restart once
                if attempt:
                    raise
                self._restart()
        raise AssertionError("unreachable")

    def _page_text(self) -> str:
        if self.driver is None:
            return self.shop.text()
        return SEP.join(self._read_dom()["texts"])

    def _admissible_actions(self) -> list[str]:
        if self._crashed:
            return []
        dom = self._read_dom()
        acts = [SEARCH_PLACEHOLDER] if dom["search"] else []
        # the DOM says what is clickable; WebShop's order (the text env's, Shop.clickables) says in
        # which order to list it, so both envs give the same list
        order = {c: i for i, c in enumerate(self.shop.clickables())}
        clicks = sorted(dict.fromkeys(dom["clicks"]), key=lambda c: order.get(c, len(order)))
        acts += [f"click[{c}]" for c in clicks]
        return acts

    def _check_command(self, command: str) -> str | None:
        parsed = parse_webshop_command(command)
        if isinstance(parsed, str):
            return parsed
        verb, arg = parsed
        try:
            dom = self._read_dom()
        except Exception:  # noqa: BLE001 - let _apply_command's crash path handle it
            return None
        if verb == "search":
            if not dom["search"]:
                return "there is no search box on this page (click[back to search] first)"
            return None if arg else "search[] needs a query, e.g. search[red running shoes]"
        if arg.lower() not in dom["clicks"]:
            return f"{sanitize_text(arg, 100)!r} is not clickable on this page"
        return None

    def _apply_command(self, command: str) -> Transition:
        verb, arg = parse_webshop_command(command)  # type: ignore[misc]
        t0 = time.monotonic()
        if verb == "search":
            self._n_searches += 1

        def act() -> dict[str, Any]:
            # A stopped server's handler threads can still answer on a kept-alive connection,
            # so a request after the stop may "work": check the site before acting, not only
            # while waiting for the next page.
            if self.site is None or not self.site.alive():
                raise SiteDownError("the WebShop site stopped answering")
            old_seq = self._read_dom()["seq"]
            d = self.driver
            if d is None:
                raise RuntimeError("the browser is not running")
            if verb == "search":
                box = d.find_element("id", "search_input")
                d.execute_script("arguments[0].value = arguments[1];", box, arg)
                d.find_element("css selector", "#search-form button[type=submit]").click()
            else:
                el = d.execute_script(_FIND_CLICK_JS, arg.lower())
                if el is None:
                    raise RuntimeError(f"no element for {arg!r}")
                el.click()
            self._wait_new_page(old_seq, t0 + self.timeout_s)
            return d.execute_script(_READ_PAGE_JS)

        try:
            # One hard deadline for the whole action: click, navigation and the new page's DOM.
            dom = self._bounded(act, self.timeout_s)
            if not dom:
                raise RuntimeError("the page has no body")
            self._dom = dom
            text = SEP.join(dom["texts"])
        except Exception as e:  # noqa: BLE001 - crashed, stopped or vanished browser or site: truncate
            self._crashed = True
            self.last_fault = f"{type(e).__name__}: {e}"[:300]
            # Kill now (a stuck browser cannot quit); the next reset starts a fresh browser (and
            # site, if it died), so this step returns within timeout_s plus the kill.
            self._kill_browser()
            return Transition(CRASH_TEXT)
        if dom["page"] == "done" and dom["reward"] is not None:
            r = float(dom["reward"])
            return Transition(text, reward=r, terminated=True, won=r == 1.0, task_score=r)
        return Transition(text)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        if self._crashed and not terminated:
            truncated, self._ended = True, True
            info["admissible_actions"] = []
            self._dom = None
        return obs, reward, terminated, truncated, info
