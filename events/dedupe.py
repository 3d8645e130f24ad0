"""One row per request: merge the stages of an auditID and drop re-delivered copies.

The API server may write a request at several stages (RequestReceived, ResponseStarted,
ResponseComplete, Panic), and overlapping CloudWatch reads deliver the same line twice.
Batches arrive in file order, so the state carried between batches is a compact set of the
request hashes already emitted (8 bytes a request) and the few requests still waiting for
their ResponseComplete (watches and exec sessions that are still open).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from events.hashset import HashSet
from events.rows import filter_rows

# The stage rank itself (lower is preferred: ResponseComplete 0, ResponseStarted 1, Panic 2,
# RequestReceived 3, anything else 4) is computed in the parsing SQL, events/parse.py.
# ResponseStarted beats Panic: exec/attach/watch that never complete still say what was done;
# Panic only says that the server failed.


class StageDeduplicator:
    """Keep the best stage of each request across a stream of event batches.

    Feed batches with :meth:`push` (each returns the rows that are final now: their
    ResponseComplete has arrived) and call :meth:`flush` at the end for requests that never
    completed. Counts of merged rows are kept in ``n_stage_merged`` (another stage of a request
    already kept) and ``n_redelivered`` (the same auditID and stage read again). Once a request
    is complete only its auditID is remembered, so a late copy of one of its earlier stages
    counts as a stage merge.
    """

    def __init__(self, schema: pa.Schema | None = None) -> None:
        #: Batches from different parsers are cast to this one schema: rows waiting for their
        #: ResponseComplete from one batch are concatenated with rows of another.
        self.schema = schema
        self._done = HashSet()
        self._pending: pa.Table | None = None
        self.n_stage_merged = 0
        self.n_redelivered = 0

    def push(self, batch: pa.Table) -> pa.Table:
        """Add a batch with ``audit_hash`` and ``stage_rank`` columns; return final rows.

        Rows waiting for their ResponseComplete are never emitted here, so the output is
        always a subset of ``batch``: one boolean filter, no concatenation.
        """
        if self.schema is not None:
            batch = batch.select(self.schema.names).cast(self.schema)
        pending = self._pending
        n_old = 0 if pending is None else pending.num_rows
        new_keys = batch["audit_hash"].to_numpy().astype(np.uint64, copy=False)
        new_ranks = batch["stage_rank"].to_numpy()
        if pending is not None and n_old:
            keys = np.concatenate([pending["audit_hash"].to_numpy().astype(np.uint64), new_keys])
            ranks = np.concatenate([pending["stage_rank"].to_numpy(), new_ranks])
        else:
            keys, ranks = new_keys, new_ranks
        # One stable sort by key: the stages and copies of a request become neighbours in read
        # order, and the sorted distinct keys probe the set of finished requests in order.
        by_key = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_key]
        new_key = np.ones(len(keys), dtype=bool)
        new_key[1:] = sorted_keys[1:] != sorted_keys[:-1]
        starts = np.flatnonzero(new_key)
        sizes = np.diff(np.append(starts, len(keys)))
        best = by_key[starts]  # one row a request: the first read, unless a group says otherwise
        multi = sizes > 1
        if multi.any():  # requests read more than once here: keep the best stage, first read
            rows = by_key[np.repeat(multi, sizes)]
            order = rows[np.lexsort((rows, ranks[rows], keys[rows]))]
            k, r = keys[order], ranks[order]
            repeat = np.zeros(len(k), dtype=bool)
            repeat[1:] = k[1:] == k[:-1]
            same_stage = np.zeros(len(k), dtype=bool)
            same_stage[1:] = repeat[1:] & (r[1:] == r[:-1])
            self.n_redelivered += int(same_stage.sum())
            self.n_stage_merged += int((repeat & ~same_stage).sum())
            best[multi] = order[~repeat]  # both in key order
        request_keys = sorted_keys[starts]
        seen = self._done.contains(request_keys, is_sorted=True)
        best_ranks = ranks[best]
        self.n_redelivered += int((seen & (best_ranks == 0)).sum())
        self.n_stage_merged += int((seen & (best_ranks != 0)).sum())

        finished = ~seen & (best_ranks == 0)
        complete = best[finished]  # always rows of the new batch
        waiting = np.sort(best[~seen & (best_ranks != 0)])  # old pending rows first, then new
        self._done.add(request_keys[finished], is_sorted=True)
        keep_old, keep_new = waiting[waiting < n_old], waiting[waiting >= n_old] - n_old
        parts = []
        if pending is not None and len(keep_old):
            parts.append(pending.take(keep_old))
        if len(keep_new):
            parts.append(batch.take(keep_new))
        self._pending = pa.concat_tables(parts).combine_chunks() if parts else None
        if len(complete) == len(new_keys):
            return batch
        mask = np.zeros(len(new_keys), dtype=bool)
        mask[complete - n_old] = True
        return filter_rows(batch, mask)

    def flush(self) -> pa.Table | None:
        """Return the requests that never reached ResponseComplete, best stage each."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._done.add(pending["audit_hash"].to_numpy().astype(np.uint64, copy=False))
        return pending


class AuditIdReuse:
    """Mark requests whose auditID an earlier request already carried.

    kube-apiserver takes the auditID from the client's ``Audit-ID`` header, so a client can
    give a second request the ID of its first. Requests are distinct by content (see
    :data:`events.parse.REQUEST_KEY_SQL`); this remembers the ID hashes of the requests
    emitted so far (8 bytes each) and flags every later request that shares one.
    """

    def __init__(self) -> None:
        self._seen = HashSet()

    def mark(self, id_hashes: np.ndarray) -> np.ndarray:
        """Return which of these requests (in emit order) reuse an auditID seen before."""
        if len(id_hashes) == 0:
            return np.zeros(0, dtype=bool)
        ids = id_hashes.astype(np.uint64, copy=False)
        order = np.argsort(ids, kind="stable")
        ordered = ids[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        distinct = ordered[first]
        seen = self._seen.contains(distinct, is_sorted=True)
        reused_sorted = ~first
        reused_sorted[np.flatnonzero(first)[seen]] = True
        self._seen.add(distinct[~seen], is_sorted=True)
        reused = np.empty(len(ids), dtype=bool)
        reused[order] = reused_sorted
        return reused
