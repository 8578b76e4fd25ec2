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

KW = dict(observation_mode="raw", strict_format=False, split="test", show_attrs=True, protocol="strict")


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


def _chromium_pid(env) -> int:
    """The Chromium browser process: the child of chromedriver whose command line is Chromium's."""
    driver_pid = env._procs.driver_proc.pid
    for pid in env.browser_pids():
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat[1]) == driver_pid and b"chromium" in cmd:
            return pid
    raise AssertionError("no Chromium process found")


def _alive(pids) -> list[int]:
    """Those of ``pids`` that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def _fault_chromium_kill(env):
    os.kill(_chromium_pid(env), signal.SIGKILL)


def _fault_chromedriver_kill(env):
    os.kill(env._procs.driver_proc.pid, signal.SIGKILL)


def _fault_chromium_stop(env):
    # every process of the browser stopped, as a frozen machine would leave it
    for pid in env.browser_pids():
        if pid != env._procs.driver_proc.pid:
            os.kill(pid, signal.SIGSTOP)


def _fault_site_stop(env):
    env.site.close()


@pytest.mark.parametrize("fault", [_fault_chromium_kill, _fault_chromedriver_kill, _fault_chromium_stop,
                                   _fault_site_stop], ids=["kill-chromium", "kill-chromedriver",
                                                           "sigstop-chromium", "stop-flask"])
def test_fault_truncates_in_time_and_reset_recovers(tmp_path, monkeypatch, fault):
    """Each fault: the step truncates within timeout_s + 2 s, no process of the old browser is
    left, the next reset works (same first page as the text env), and close leaves nothing."""
    import time

    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    timeout_s = 4.0
    env, text = WebShopBrowserEnv(timeout_s=timeout_s, **KW), WebShopEnv(**KW)
    try:
        env.reset(seed=9)
        old = env.browser_pids()
        assert len(old) >= 2
        fault(env)
        t0 = time.monotonic()
        obs, r, term, trunc, info = env.step("search[shampoo]")
        elapsed = time.monotonic() - t0
        assert trunc and not term and r == 0 and obs == CRASH_TEXT and info["admissible_actions"] == []
        assert elapsed < timeout_s + 2, elapsed
        assert not _alive(old), "processes of the failed browser are left"
        with pytest.raises(RuntimeError):
            env.step("search[shampoo]")
        ob, info = env.reset(seed=9)
        assert ob == text.reset(seed=9)[0] and info["admissible_actions"]
        _same(env.step("search[shampoo]"), text.step("search[shampoo]"))
        pids = env.browser_pids()
    finally:
        env.close()
    assert not _alive(pids)
    assert env.browser_pids() == []


_OWNER = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from t2po_gym.envs.webshop.browser_env import WebShopBrowserEnv
env = WebShopBrowserEnv(observation_mode="raw", strict_format=False, split="test")
env.reset(seed=0)
print(json.dumps({{"pids": env.browser_pids(), "profile": env._profile_dir}}), flush=True)
if {mode!r} == "exit":
    sys.exit(0)  # no close(): the finaliser runs at interpreter exit
time.sleep(600)  # killed by the test
"""


@pytest.mark.parametrize("mode", ["exit", "kill"])
def test_no_process_outlives_its_owner(tmp_path, mode):
    """The owner exits without close(), or is killed with SIGKILL: every browser process goes."""
    import json
    import subprocess
    import sys
    import time
    from pathlib import Path

    from t2po_gym.envs.webshop.browser_env import _pids_of_profile

    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen([sys.executable, "-c", _OWNER.format(root=root, mode=mode)],
                            env=dict(os.environ, T2PO_CACHE=str(tmp_path)), stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert len(_alive(info["pids"])) >= 2
        if mode == "kill":
            proc.kill()
        proc.wait(timeout=60)
        deadline = time.monotonic() + 15  # the watchdog reacts at once; leave time on a busy box
        while (_alive(info["pids"]) or _alive(_pids_of_profile(info["profile"]))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(info["pids"]) and not _alive(_pids_of_profile(info["profile"]))
    finally:
        proc.kill()


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


def test_released_protocol_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="protocol='released' is not supported.*strict"):
        WebShopBrowserEnv(protocol="released")
    with pytest.raises(ValueError, match="timeout_s"):
        WebShopBrowserEnv(timeout_s=float("inf"))


def test_close_kills_a_browser_that_cannot_quit(tmp_path, monkeypatch):
    """quit() on a stopped browser fails (bounded); close() still leaves no process behind."""
    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    env = WebShopBrowserEnv(timeout_s=2.0, **KW)
    try:
        env.reset(seed=1)
        pids = env.browser_pids()
        _fault_chromium_stop(env)
    finally:
        env.close()
    assert not _alive(pids) and env.browser_pids() == []
