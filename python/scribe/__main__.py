"""``python -m scribe COMMAND ...``: the ``scribe`` program's commands from the
package (``python -m scribe generate models/demo-gpt2 --prompt Hi``), for an
installation that has no ``scribe`` program on its PATH."""

import sys

from . import ScribeError, cli


def main() -> int:
    try:
        return cli(sys.argv[1:])
    except ScribeError as e:
        print(f"scribe: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
