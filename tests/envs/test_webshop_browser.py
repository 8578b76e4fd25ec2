"""T2PO/WebShopBrowser-v0: a real headless Chromium on the Flask site (skipped without Chromium)."""

from __future__ import annotations

import os
import shutil
import signal
import urllib.request

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import t2po_gym  # noqa: F401
from t2po_gym.envs.webshop.env import WebShopEnv

pytest.importorskip("selenium", reason="the browser extra is not installed")
pytest.importorskip("flask", reason="the browser extra is not installed")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("Chromium not installed: apt-get install -y chromium chromium-driver", allow_module_level=True)

from t2po_gym.envs.webshop.browser_env import CRASH_TEXT, BrowserUnavailableError, WebShopBrowserEnv  # noqa: E402

KW = dict(observation_mode="raw", strict_format=False, split="test", show_attrs=True)


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("T2PO_CACHE", str(tmp_path_factory.mktemp("t2po_cache")))
    browser, text = WebShopBrowserEnv(**KW), WebShopEnv(**KW)
    yield browser, text
    browser.close()
    mp.undo()


def _same(b, t):
    ob, rb, tb, trb, ib = b
    ot, rt, tt, trt, it = t
    assert ob == ot
    assert (rb, tb, trb) == (rt, tt, trt)
    assert ib["admissible_actions"] == it["admissible_actions"]
    assert (ib["won"], ib["task_score"], ib["action_valid"]) == (it["won"], it["task_score"], it["action_valid"])


def test_oracle_parity_with_text_env(envs):
    browser, text = envs
    for seed in (0, 1, 2):
        ob, ib = browser.reset(seed=seed)
        ot, it = text.reset(seed=seed)
        assert ob == ot and ib["admissible_actions"] == it["admissible_actions"]
        for _ in range(15):
            a = text.oracle_action()
            assert a == browser.oracle_action()
            rb, rt = browser.step(a), text.step(a)
            _same(rb, rt)
            if rt[2] or rt[3]:
                break
        assert rt[2] and rt[4]["won"] and rb[1] == 1.0


def test_browsing_parity_pages_subpages_and_bad_input(envs):
    browser, text = envs
    browser.reset(seed=5)
    text.reset(seed=5)
    script = ["search[black free long lasting]", "click[next >]", "click[< prev]", "click[nope]", "search[x]"]
    for a in script:
        _same(browser.step(a), text.step(a))
    first = next(a for a in text._admissible_actions() if a.startswith("click[b0"))
    for a in [first, "click[description]", "click[< prev]", "click[features]", "click[< prev]",
              "click[reviews]", "click[< prev]", "click[attributes]", "click[back to search]"]:
        _same(browser.step(a), text.step(a))


def test_server_is_on_localhost_free_port(envs):
    browser, _ = envs
    browser.reset(seed=0)
    assert browser.site.host == "127.0.0.1" and browser.site.port > 0
    html = urllib.request.urlopen(browser.site.url, timeout=5).read().decode()
    assert 'id="search_input"' in html


def test_crash_truncates_and_recovers(envs):
    browser, text = envs
    browser.reset(seed=9)
    text.reset(seed=9)
    os.kill(browser.driver.service.process.pid, signal.SIGKILL)  # chromedriver dies mid-episode
    obs, r, term, trunc, info = browser.step("search[shampoo]")
    assert trunc and not term and r == 0 and obs == CRASH_TEXT and info["admissible_actions"] == []
    with pytest.raises(RuntimeError):
        browser.step("search[shampoo]")
    ob, _ = browser.reset(seed=9)
    assert ob == text.reset(seed=9)[0] and browser.restarts >= 1


def test_check_env_and_close():
    env = gym.make("T2PO/WebShopBrowser-v0")
    try:
        check_env(env.unwrapped, skip_render_check=True)
        site = env.unwrapped.site
    finally:
        env.close()
    assert env.unwrapped.driver is None and env.unwrapped.site is None
    with pytest.raises(OSError):
        urllib.request.urlopen(site.url, timeout=2)


def test_missing_chromium_names_the_fix():
    env = WebShopBrowserEnv(chromium_path="/nonexistent/chromium", **KW)
    try:
        with pytest.raises(BrowserUnavailableError, match="apt-get install -y chromium chromium-driver"):
            env.reset(seed=0)
    finally:
        env.close()
