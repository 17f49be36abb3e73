"""Crossover Studio — builds the studio and launches it (also the Hugging Face Space entry point).

    python app.py                       # http://127.0.0.1:7860, offline, embedded model
    python app.py --host 0.0.0.0 --port 7860

Nothing is loaded at import: models load on first use, inside the services.
"""

from __future__ import annotations

import argparse
import os


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Crossover Studio")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--queue-size", type=int, default=32, help="requests waiting at most; more are turned away")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")          # the studio never downloads weights
    from studio import build_studio, launch_kwargs
    demo = build_studio(warm_up=True)        # engines load in the background while the server starts
    demo.queue(default_concurrency_limit=4, max_size=args.queue_size)
    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs())


if __name__ == "__main__":
    main()
