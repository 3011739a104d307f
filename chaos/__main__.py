"""`python -m chaos [--seed N ...] [--seconds S]`: chaos runs in a row; exit 1 on any loss.

Without --seed, three fresh random seeds run one after the other (each is
printed, so a failing run can be repeated with `--seed N`).
"""

from __future__ import annotations

import argparse
import random
import sys

from chaos.run import run

DEFAULT_PORT_BASE = 27000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", help="run this seed (repeatable)")
    parser.add_argument("--runs", type=int, default=3, help="random seeds to run when no --seed is given")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of writes and faults per run")
    parser.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    parser.add_argument("--no-kill", action="store_true", help="do not kill a region server")
    parser.add_argument(
        "--no-kick",
        action="store_true",
        help="never disable+enable `down` subscriptions; wait for pglogical (up to its 180 s sleep)",
    )
    parser.add_argument(
        "--patience", type=float, default=20.0, help="seconds to wait after healing before kicking"
    )
    parser.add_argument("--keep", action="store_true", help="leave the servers of the last run running")
    args = parser.parse_args(argv)
    seeds = args.seed or [random.SystemRandom().randrange(1, 10**6) for _ in range(args.runs)]
    print(f"chaos seeds: {' '.join(str(s) for s in seeds)}", flush=True)
    outcomes = []
    for i, seed in enumerate(seeds):
        keep = args.keep and i == len(seeds) - 1
        result = run(
            seed,
            args.seconds,
            args.port_base,
            keep=keep,
            kill=not args.no_kill,
            kick=not args.no_kick,
            patience=args.patience,
        )
        outcomes.append(result.ok)
    print(
        "chaos: "
        + ", ".join(f"seed {s} {'ok' if ok else 'FAILED'}" for s, ok in zip(seeds, outcomes, strict=True))
    )
    return 0 if all(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
