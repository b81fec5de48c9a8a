"""``diqa-edge web``: build the browser client with the shipped model and serve it on localhost."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cachedir import cache_root
from ..logs import verbose_wanted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("The page opens the camera (or takes a photo file), applies the model's preprocessing "
                     "contract in JavaScript and runs the phone's own .tflite file with LiteRT.js (WebAssembly, "
                     "2 threads): nothing leaves the browser. Needs `npm ci --prefix clients/web` once "
                     "(`make web` does it). A camera works on localhost or https only.")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 to open it from a phone on "
                             "the same network, which then needs https for the camera)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a .tflite export with its manifest (inside or beside it; default: the shipped "
                             "diqa_edge/models/default.tflite, the phone's file)")
    parser.add_argument("--site", type=Path, default=None,
                        help=f"where to lay out the site (default {cache_root() / 'web' / 'site'})")
    parser.add_argument("--build-only", action="store_true", help="build the site, print its folder, do not serve")
    parser.add_argument("--verbose", action="store_true", help="log every request")


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from .server import make_server
    from .site import build_site

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a port is 0-65535")
    site = build_site(args.site or cache_root() / "web" / "site", model=args.model)
    if args.build_only:
        print(site)
        return 0
    server = make_server(site, args.host, args.port, quiet=not verbose_wanted(args.verbose, getattr(args, "verbosity", 0)))
    host, port = server.server_address[:2]
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    print(f"diqa-edge web: serving {site} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
    return 0
