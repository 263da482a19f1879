"""Entry point of one SSH dashboard: ``python -m tui.sshd.child <sessionwatch args>``.

The server starts it in a new session with a pty as stdin/stdout/stderr. Making that pty
the controlling terminal here (rather than in a ``preexec_fn``, unsafe in a threaded
server) means a window change reaches the dashboard as SIGWINCH, and closing the pty
hangs up the whole session.
"""

from __future__ import annotations

import fcntl
import sys
import termios


def main(argv: list[str]) -> int:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    from tui.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
