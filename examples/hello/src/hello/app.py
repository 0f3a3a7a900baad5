"""The WSGI application: uwsgi serves hello.app:application, `python -m hello` serves it too."""

import html
import os
from urllib.parse import parse_qs

from greeting import greet

HERE = os.path.dirname(os.path.abspath(__file__))

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hello</title></head>
<body>
<h1>{greeting}</h1>
<p>hello {version} on {env}</p>
</body>
</html>
"""


def version():
    """The version of the installed package (the project's VERSION file, shipped beside the code)."""
    try:
        with open(os.path.join(HERE, "VERSION"), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "dev"


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    if path == "/health":
        body = b"ok\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path != "/":
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["world"])[0]
    body = PAGE.format(
        greeting=html.escape(greet(name)),
        version=html.escape(version()),
        env=html.escape(os.environ.get("HELLO_ENV", "development")),
    ).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
