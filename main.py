"""Command-line entry point: builds the subcommands and dispatches. Each command's flags live in its module.

    python main.py <command> --help
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no pygame banner on every command
# torch's OpenMP threads busy-wait 300,000 spins (libgomp's default) after each parallel region; beside
# another busy process (a `test` while training, the environment workers) they spin on cores the other one
# needs. Spinning briefly keeps the single-process speed and stops the collapse (bench/two_processes.py,
# README). Read when torch loads, so set before any command imports it; a value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "2000")

from errors import UserError

# command -> (module, one-line help); each module defines add_arguments(parser) and run(args).
COMMANDS = {
    "human": ("human", "drive with the keyboard and record demonstrations"),
    "expert": ("expert", "record demonstrations with the scripted autopilot"),
    "replay": ("replay", "play back, verify or summarise recorded demonstrations"),
    "train_bc": ("bc", "pre-train actor and critics by behaviour cloning"),
    "train_rl": ("rl", "fine-tune with SAC / BC-SAC (or SAC from scratch)"),
    "test": ("evaluate", "evaluate a run on held-out tracks"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Appends each flag's default to its help, except a None default (it means "required", "off" or "decided
    from other flags", which the help text says itself) and a switch's False (off). Keeps the line breaks of the
    usage examples in epilogs."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="BC-SAC for CarRacing: imitation robustified with reinforcement learning, from pixels.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip().splitlines()[0],
            formatter_class=HelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def stop_on_sigterm(signum, frame) -> None:
    """Schedulers and torchrun stop jobs with SIGTERM: treat it like Ctrl-C (final checkpoint, no lost episode)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        return args.run(args) or 0
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
