"""Benchmarks drive the public CLI in-process, exactly as a user would type it."""
import sys

import main


def cli(*argv) -> None:
    print("$ python main.py " + " ".join(map(str, argv)), flush=True)
    code = main.main([str(a) for a in argv])
    if code:
        sys.exit(code)
