"""Serve the app with the standard library's WSGI server: python -m hello [--host H] [--port P].

For development and checks; on servers uwsgi runs hello.app:application (config/*/uwsgi.ini).
"""

import argparse
import sys
from wsgiref.simple_server import make_server

from hello.app import application


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m hello", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    with make_server(args.host, args.port, application) as srv:
        print(f"serving hello on http://{args.host}:{srv.server_port}/", flush=True)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
