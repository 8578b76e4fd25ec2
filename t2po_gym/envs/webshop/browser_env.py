"""``T2PO/WebShopBrowser-v0``: the WebShop site in a real headless Chromium, driven by selenium."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, ClassVar

from t2po_gym.envs.webshop.env import SEARCH_PLACEHOLDER, WebShopEnv, parse_webshop_command
from t2po_gym.envs.webshop.shop import SEP
from t2po_gym.protocol import sanitize_text
from t2po_gym.text_env import Transition

__all__ = ["WebShopBrowserEnv", "BrowserUnavailableError", "CHROME_FLAGS"]

#: Chromium flags measured to work headless in containers (NOTES.md).
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--window-size=1280,2000",
)
CRASH_TEXT = "The browser stopped responding and was restarted. The episode is truncated."

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
    Terminated at ``buy now``; truncated after 15 steps, or at once when the browser crashes
    or stops answering (it is restarted for the next episode; a step never hangs).

    ## Arguments
    Those of ``T2PO/WebShop-v0``, plus ``chromium_path`` (default ``/usr/bin/chromium``),
    ``chromedriver_path`` (default ``/usr/bin/chromedriver``) and ``timeout_s`` (per browser
    command, default 20).

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
        super().__init__(**kwargs)
        self.chromium_path = chromium_path or shutil.which("chromium") or "/usr/bin/chromium"
        self.chromedriver_path = chromedriver_path or shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.timeout_s = float(timeout_s)
        self.site = None
        self.driver = None
        self._profile_dir: str | None = None
        self._dom: dict[str, Any] | None = None
        self._crashed = False
        self.restarts = 0

    # ----------------------------------------------------------------- browser lifecycle
    def _start(self) -> None:
        try:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
        except ImportError:
            raise BrowserUnavailableError("selenium is not installed: pip install 't2po-gym[browser]'") from None
        for path, what in ((self.chromium_path, "Chromium"), (self.chromedriver_path, "chromedriver")):
            if not os.path.exists(path):
                raise BrowserUnavailableError(
                    f"{what} not found at {path}: apt-get install -y chromium chromium-driver "
                    "(or pass chromium_path=/chromedriver_path=)"
                )
        if self.site is None:
            from t2po_gym.envs.webshop.site import ShopSite

            self.site = ShopSite(self.shop)
        opts = webdriver.ChromeOptions()
        for flag in CHROME_FLAGS:
            opts.add_argument(flag)
        self._profile_dir = tempfile.mkdtemp(prefix="t2po-chromium-")
        opts.add_argument(f"--user-data-dir={self._profile_dir}")
        opts.binary_location = self.chromium_path
        self.driver = webdriver.Chrome(service=Service(self.chromedriver_path), options=opts)
        self.driver.set_page_load_timeout(self.timeout_s)
        self.driver.set_script_timeout(self.timeout_s)
        try:  # bound every HTTP call to chromedriver, so a hung browser cannot hang a step
            self.driver.command_executor.client_config.timeout = self.timeout_s + 5
        except AttributeError:
            pass

    def _stop_browser(self) -> None:
        d, self.driver = self.driver, None
        if d is not None:
            try:
                d.quit()
            except Exception:  # noqa: BLE001 - a dead browser cannot be quit cleanly
                try:
                    d.service.stop()
                except Exception:  # noqa: BLE001
                    pass
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None

    def _restart(self) -> None:
        self.restarts += 1
        self._stop_browser()
        self._start()

    def close(self) -> None:
        """Quit Chromium and stop the Flask server (idempotent)."""
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

    # ----------------------------------------------------------------- DOM access
    def _read_dom(self) -> dict[str, Any]:
        if self._dom is None:
            dom = self.driver.execute_script(_READ_PAGE_JS)
            if not dom:
                raise RuntimeError("the page has no body")
            self._dom = dom
        return self._dom

    def _wait_new_page(self, old_seq: str) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        def changed(d: Any) -> bool:
            try:
                seq = d.execute_script("return document.readyState === 'complete' && document.body "
                                       "? document.body.dataset.seq : null")
            except Exception:  # noqa: BLE001 - mid-navigation errors: keep waiting
                return False
            return seq is not None and seq != old_seq

        WebDriverWait(self.driver, self.timeout_s, poll_frequency=0.01).until(changed)
        self._dom = None

    # ----------------------------------------------------------------- hooks
    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        raw, task = super()._reset_game(seed, options)  # picks the goal, resets the shop
        self._crashed = False
        for attempt in range(2):
            try:
                if self.driver is None:
                    self._start()
                self._dom = None
                self.driver.get(self.site.url)  # type: ignore[union-attr]
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
        acts += [f"click[{c}]" for c in dict.fromkeys(dom["clicks"])]
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
        try:
            old_seq = self._read_dom()["seq"]
            d = self.driver
            if verb == "search":
                self._n_searches += 1
                box = d.find_element("id", "search_input")  # type: ignore[union-attr]
                d.execute_script("arguments[0].value = arguments[1];", box, arg)  # type: ignore[union-attr]
                d.find_element("css selector", "#search-form button[type=submit]").click()  # type: ignore[union-attr]
            else:
                el = d.execute_script(_FIND_CLICK_JS, arg.lower())  # type: ignore[union-attr]
                if el is None:
                    raise RuntimeError(f"no element for {arg!r}")
                el.click()
            self._wait_new_page(old_seq)
            dom = self._read_dom()
            text = SEP.join(dom["texts"])
        except Exception:  # noqa: BLE001 - crashed, hung or vanished browser: restart, truncate
            self._crashed = True
            try:
                self._restart()
            except Exception:  # noqa: BLE001 - restart failed: the next reset retries
                self._stop_browser()
            self._dom = None
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
