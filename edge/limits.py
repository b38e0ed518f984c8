"""The file-descriptor budget: outsiders' connections stay far below the process's limit."""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

PAGE_CONNECTIONS = 32     # the phone page's handlers at a time (edge/control/web.py)
SOCKET_CONNECTIONS = 32   # the control socket's (edge/control/socket.py)
RESERVED_FDS = 64         # camera, tracks, model, log, notify, Python (about 20 in use)
NEEDED_FDS = PAGE_CONNECTIONS + SOCKET_CONNECTIONS + RESERVED_FDS
UNIT_LIMIT = 4096         # systemd/moodbox.service's LimitNOFILE= (tests/test_systemd.py)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; the soft limit in force after it.
    A limit below NEEDED_FDS is logged (the caps above then may not hold)."""
    try:
        import resource
    except ImportError:  # not a POSIX system
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, UNIT_LIMIT)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the open-files limit from %d to %d (%s)", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < NEEDED_FDS:
        logger.warning("the open-files limit is %d, under the %d moodbox budgets for; raise it "
                       "(LimitNOFILE= in the unit, ulimit -n)", soft, NEEDED_FDS)
    return soft
