"""The client address the API server saw, past the proxies the operator trusts.

``sourceIPs`` lists the X-Forwarded-For addresses first and the API server's TCP peer last;
the audit API says every entry but the last can be set arbitrarily by the client. So the
client is the rightmost address that is not a trusted proxy, and anything left of it is a
claim nobody vouches for: a remote attacker that sends ``X-Forwarded-For: <a pod's IP>`` is
still seen at its own address, with the chain flagged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from errors import KaadError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Only loopback is trusted by default: a proxy on the API server's own host. EKS needs none
#: (its load balancer does not add X-Forwarded-For).
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")


def parse_proxies(spec: str | Iterable[str] | None) -> tuple[Network, ...]:
    """Parse ``"10.0.0.0/8,192.0.2.7"`` (or a list of them) into networks.

    Raises :class:`errors.KaadError` naming the entry that is not an address or CIDR.
    """
    if spec is None:
        spec = DEFAULT_TRUSTED_PROXIES
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    nets = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise KaadError(f"--trusted-proxies: {item!r} is not an IP address or CIDR") from None
    return tuple(nets)


class TrustedAddress:
    """Pick the client address of each event from ``source_ips``.

    Examples
    --------
    >>> pick = TrustedAddress(parse_proxies("127.0.0.0/8"))
    >>> pick.client(["10.1.2.3", "198.51.100.7"])
    ('198.51.100.7', True)
    >>> pick.client(["203.0.113.9", "127.0.0.1"])
    ('203.0.113.9', False)
    """

    def __init__(self, proxies: Sequence[Network] | None = None) -> None:
        self.proxies = tuple(parse_proxies(None) if proxies is None else proxies)
        self._cache: dict[str, bool] = {}

    def _trusted(self, address: str) -> bool:
        hit = self._cache.get(address)
        if hit is None:
            try:
                ip = ipaddress.ip_address(address.strip())
                hit = any(ip in net for net in self.proxies)
            except ValueError:
                hit = False  # not an address: nobody vouches for it
            if len(self._cache) < 100_000:
                self._cache[address] = hit
        return hit

    def client(self, chain: Sequence[str] | None) -> tuple[str | None, bool]:
        """Return (client address, whether addresses beyond it are unverified)."""
        if not chain:
            return None, False
        for i in range(len(chain) - 1, -1, -1):
            if not self._trusted(chain[i]):
                return chain[i], i > 0
        return chain[0], False  # every hop a trusted proxy: the origin is the first

    def apply(self, table: pa.Table) -> pa.Table:
        """Set ``source_ip`` and ``forwarded_unverified`` of an event table.

        Rows with at most one address keep it (nothing precedes it). Forwarded chains are
        walked once per distinct chain: behind a proxy every row has one, but few differ.
        """
        lengths = pc.fill_null(pc.list_value_length(table["source_ips"]), 0)
        if (pc.max(lengths).as_py() or 0) <= 1:
            return table
        rows = np.flatnonzero(lengths.to_numpy(zero_copy_only=False) > 1)
        # A chain as one string (the unit separator is no address character), dictionary-encoded.
        joined = pc.binary_join(table["source_ips"].take(rows), "\x1f").combine_chunks()
        encoded = pc.dictionary_encode(joined)
        picked = [self.client(chain.split("\x1f")) for chain in encoded.dictionary.to_pylist()]
        codes = encoded.indices
        mask = pa.array(lengths.to_numpy(zero_copy_only=False) > 1)
        new_ips = pa.array([ip for ip, _ in picked], pa.string()).take(codes)
        new_flags = pa.array([flag for _, flag in picked], pa.bool_()).take(codes)
        ips = pc.replace_with_mask(table["source_ip"].combine_chunks(), mask, new_ips)
        flags = pc.replace_with_mask(table["forwarded_unverified"].combine_chunks(), mask, new_flags)
        table = table.set_column(table.column_names.index("source_ip"), "source_ip", ips)
        return table.set_column(table.column_names.index("forwarded_unverified"), "forwarded_unverified", flags)
