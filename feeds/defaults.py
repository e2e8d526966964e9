"""Defaults of the feed's workers, each defined and documented here once (as rq's ``defaults.py``).

The workers take them as keyword defaults (:class:`feeds.ingest.Ingest`,
:class:`feeds.simulator.Simulator`, :func:`feeds.history.build_history`,
:meth:`feeds.deadletters.DeadLetters.newest`, :meth:`feeds.health.FeedState.alive`) and the
command line offers them as its option defaults (``gridhall ingest``, ``simulate``, ``demo``,
``deadletters list``, ``check``): both read them here, so the two cannot drift apart. Plain
constants and no imports, so the command line reads them without loading the workers.
"""

BATCH_SIZE = 500
"""Stream entries the ingest reads at a time and applies in one SQL transaction."""

CLAIM_IDLE_MS = 60_000
"""Milliseconds an entry may stay pending with a silent consumer before another ingest claims
it (``XAUTOCLAIM``): that consumer is taken for dead."""

ILLEGAL_GRACE_S = 600
"""Seconds an illegal event (one that breaks the case loop where it falls) waits for a late
event that makes it legal, before it is taken out of the history and dead-lettered."""

INGEST_ALIVE_S = 60.0
"""Seconds since the newest ingest heartbeat within which an ingest counts as alive."""

DAILY_CASES = 300.0
"""New cases per day at a normal weekday rhythm: the live simulator's and the demo history's."""

SPEEDUP = 1.0
"""How many times faster than real time the simulated city runs (more arrivals, quicker handling)."""

DEAD_LETTERS_SHOWN = 50
"""Dead letters a listing shows, newest first, unless told otherwise."""

BRIDGE_SETTLE_S = 1.0
"""Seconds a file dropped in a bridge's folder must stay unmodified before it is read (a file
written as ``.tmp`` and renamed is complete at once; docs/sources.md)."""

HOTLINE_SIM_EVERY_S = 20.0
"""Seconds between two 工单 files of the demo's 12345 source (``gridhall bridge hotline-sim``)."""

ACK_WAIT_MS = 2000
"""How long a producer waits (``WAIT <replicas> <ms>``) for GRIDHALL_FEED_ACK_REPLICAS replicas
to have its XADDs before it reports them as not acknowledged (docs/feed.md, "Redis Cluster")."""
