"""Where calls come from: the address pools that benign change and intruders both draw on.

A real cluster sees new public addresses every week for ordinary reasons: hosted CI runners
are leased from a cloud provider's whole address space, people work from home, hotels and
phones, VPN exits move. An intruder's addresses come from the same kinds of networks (a cloud
VM, a residential proxy, a VPN exit, or a pod inside the cluster), so in this simulator no
pool belongs to attacks alone.

The prefixes are /16 networks of the right kind (cloud provider, consumer ISP, VPN hosting)
chosen for realism of shape, not as claims about any operator; the simulator sends no traffic.
"""

from __future__ import annotations

import numpy as np

#: First two octets of /16 networks, by kind. Hosted runners and cloud VMs span many
#: networks (a GitHub-hosted runner's address comes from the provider's whole range);
#: consumer ISPs hand out addresses from many networks per country.
POOLS: dict[str, tuple[str, ...]] = {
    "cloud": (
        "3.84",
        "3.91",
        "13.52",
        "13.58",
        "18.144",
        "18.206",
        "20.42",
        "20.55",
        "20.81",
        "20.102",
        "20.119",
        "23.20",
        "34.72",
        "34.102",
        "35.160",
        "40.71",
        "40.78",
        "44.202",
        "52.10",
        "52.23",
        "52.88",
        "54.68",
        "54.149",
        "104.43",
        "104.208",
        "137.116",
        "138.91",
        "172.171",
    ),
    "residential": (
        "24.16",
        "24.56",
        "46.114",
        "62.226",
        "67.180",
        "71.190",
        "73.92",
        "77.181",
        "79.211",
        "81.173",
        "84.58",
        "85.214",
        "87.123",
        "89.204",
        "91.64",
        "93.199",
        "95.90",
        "98.207",
        "109.42",
        "151.27",
        "176.199",
        "188.102",
        "212.95",
        "217.229",
    ),
    "mobile": ("37.80", "80.187", "100.34", "172.56", "174.205", "176.0", "188.96", "2.247"),
    "vpn": ("45.83", "45.134", "89.187", "146.70", "149.88", "185.107", "185.220", "193.176"),
}


def address(rng: np.random.Generator, kind: str) -> str:
    """One host address from a network of ``kind`` (a key of :data:`POOLS`)."""
    prefixes = POOLS[kind]
    prefix = prefixes[int(rng.integers(len(prefixes)))]
    return f"{prefix}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"


def pod_address(rng: np.random.Generator) -> str:
    """An address in the cluster's pod subnets (10.0.16.0/20 to 10.0.48.0/20), as the VPC CNI gives."""
    return f"10.0.{16 * int(rng.integers(1, 4)) + int(rng.integers(0, 15))}.{int(rng.integers(2, 254))}"
