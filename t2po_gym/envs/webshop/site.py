"""The WebShop site: a Flask app that serves one :class:`Shop` as HTML on 127.0.0.1.

Every visible string of a page is one element carrying ``data-ws``; clickables carry
``data-click`` (their lower-cased text). Buttons are form submits (``POST /click``), product
ids are links (``GET /item``), option values are radio buttons that submit on click, and the
search page has a real text box and submit button (``POST /search``). ``<body data-seq>``
increases with every page served, so a client can tell that a navigation happened.
The server runs in a daemon thread on a free port (``port=0``); :meth:`ShopSite.close`
stops it.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from urllib.parse import quote

from markupsafe import escape

from t2po_gym.envs.webshop.shop import Shop

__all__ = ["ShopSite", "render_page"]


def render_page(shop: Shop, seq: int) -> str:
    """The current page of ``shop`` as an HTML document."""
    parts: list[str] = []
    radio = itertools.count()
    for e in shop.elements():
        text = escape(e.text)
        low = escape(e.text.lower())
        if e.kind == "text":
            extra = ' id="reward"' if shop.page == "done" and e is shop.elements()[-1] else ""
            parts.append(f'<div class="txt" data-ws="t"{extra}>{text}</div>')
        elif e.kind == "button":
            parts.append(
                f'<form method="post" action="/click"><input type="hidden" name="target" value="{low}">'
                f'<button type="submit" class="btn" data-ws="b" data-click="{low}">{text}</button></form>'
            )
        elif e.kind == "link":
            parts.append(
                f'<a class="product-link" data-ws="l" data-click="{low}" href="/item?target={quote(e.text.lower())}">'
                f"{text}</a>"
            )
        elif e.kind == "option":
            rid = f"radio{next(radio)}"
            checked = " checked" if e.selected else ""
            parts.append(
                f'<form method="post" action="/click" class="opt"><input type="hidden" name="target" value="{low}">'
                f'<input type="radio" id="{rid}" name="{escape(e.group)}" data-click="{low}"{checked} '
                f'onclick="this.form.submit()"><label for="{rid}" data-ws="o">{text}</label></form>'
            )
        elif e.kind == "search":
            parts.append(
                '<form method="post" action="/search" id="search-form">'
                '<input id="search_input" type="text" name="search_query" placeholder="Search...">'
                f'<button type="submit" class="btn" data-ws="s">{text}</button></form>'
            )
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>WebShop</title>"
        '<link rel="icon" href="data:,"></head>'
        f'<body data-seq="{seq}" data-page="{shop.page}">\n{body}\n</body></html>'
    )


class ShopSite:
    """Serve ``shop`` over HTTP on ``127.0.0.1:<free port>`` in a background thread."""

    def __init__(self, shop: Shop, host: str = "127.0.0.1", port: int = 0):
        from flask import Flask, redirect, request
        from werkzeug.serving import make_server

        self.shop = shop
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        app = Flask("t2po_webshop")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        @app.get("/")
        def index():  # type: ignore[no-untyped-def]
            with self._lock:
                html = render_page(self.shop, next(self._seq))
            return html, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}

        @app.post("/search")
        def search():  # type: ignore[no-untyped-def]
            q = request.form.get("search_query", "")
            with self._lock:
                if self.shop.has_search_box and q.strip():
                    self.shop.search(q)
            return redirect("/", code=303)

        def _click(target: str):  # type: ignore[no-untyped-def]
            with self._lock:
                if target.lower() in self.shop.clickables():
                    self.shop.click(target)
            return redirect("/", code=303)

        @app.post("/click")
        def click():  # type: ignore[no-untyped-def]
            return _click(request.form.get("target", ""))

        @app.get("/item")
        def item():  # type: ignore[no-untyped-def]
            return _click(request.args.get("target", ""))

        self.app = app
        self._server = make_server(host, port, app, threaded=True)
        self.host, self.port = host, int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"webshop-site-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def alive(self) -> bool:
        """Whether the server still serves: its thread runs and its port accepts a connection."""
        if self._server is None or not self._thread.is_alive():
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def close(self) -> None:
        """Stop the server and its thread (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None  # type: ignore[assignment]
