"""A Dask client: the users' scheduler (``--scheduler`` or ``DASK_SCHEDULER_ADDRESS``), or a
LocalCluster of worker processes on 127.0.0.1 with the machine's cores."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from errors import KaadError

#: How long to wait for a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = "5s"

#: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers to hand freed memory back
#: to the OS sooner. Setting it also turns off glibc's adaptive mmap threshold, so every
#: pandas/numpy buffer above 128 KiB is mapped and unmapped afresh: featurising 10 partition-days
#: of the 30-day benchmark lake on 1 worker took 4.8-5.5 CPU s with it, 3.6-4.3 s without (8x
#: the page faults; docs/performance.md).
UNSET_WORKER_ENV = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def local_cluster(workers: int | None = None):
    """A LocalCluster of worker processes on 127.0.0.1 (one thread each), set up as kaad runs
    its tasks: glibc's adaptive malloc left on (:data:`UNSET_WORKER_ENV`)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(UNSET_WORKER_ENV):  # read by each nanny when it is made
        return LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # a free port: several runs may share a machine
        )


@contextmanager
def dask_client(address: str | None = None, *, workers: int | None = None) -> Iterator:
    """Yield a connected ``distributed.Client``; a LocalCluster started here is stopped after.

    The dashboard link goes to stderr (stdout is for results).
    """
    try:
        from distributed import Client
    except ImportError:
        raise KaadError("the dask engine needs the dask extra: pip install 'kaad[dask]'") from None
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    cluster = None
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise KaadError(f"cannot reach the Dask scheduler at {address}: {reason}") from None
    else:
        cluster = local_cluster(workers)
        client = Client(cluster)
    print(f"kaad: Dask dashboard at {client.dashboard_link}", file=sys.stderr, flush=True)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
