"""The event table: audit JSON parsed into one typed row per API request.

Everything that reads audit events builds on this package: the schema (:mod:`events.schema`),
the one parsing query (:mod:`events.parse`, with request bodies in :mod:`events.request_body`),
one row per request (:mod:`events.dedupe`), salvage of cut-off lines (:mod:`events.salvage`)
and the trusted client address (:mod:`events.source_address`). It imports nothing of kaad's
but :mod:`errors`; :mod:`sources` and :mod:`features` build on it.
"""
