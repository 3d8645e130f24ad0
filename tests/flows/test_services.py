"""AWS services answer from many addresses: with v5 records, the service is the destination.

The narrated cluster's node (tests/flows/narrated.py) backs up to S3 every working hour of
2026-03-20 and 21 through 52.218.152.10:443; the v5 custom format carries
``pkt-dst-aws-service``, which says the address is S3's. On the 22nd, when ci:deployer's
CronJob pod starts on the node, S3 answers from 3.5.76.22: a rotated address, the same
service, as many bytes. That is not a new destination. An address in EC2's ranges is not
keyed by the service: anyone rents those, an attacker's server among them.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from flows.join import quality_text
from flows.source import NetworkEvidence
from tests.flows.narrated import V5, at, cluster_events, flow
from tests.flows.test_evidence import _normal_days

SERVICES = V5 + " pkt-src-aws-service pkt-dst-aws-service"


def _call(remote: str, service: str, when) -> str:
    return flow("10.0.1.5", remote, "10.0.1.5", remote, 443, 20_000, when) + f" - {service}"


def _evidence(tmp_path, today: list[str]):
    events, _ = _normal_days()
    audit = tmp_path / "audit.jsonl"
    audit.write_text("".join(json.dumps(e) + "\n" for e in events + cluster_events()))
    before = [_call("52.218.152.10", "S3", at(h, 15) - timedelta(days=n)) for n in (2, 1) for h in range(9, 17)]
    flows = tmp_path / "flows.log"
    flows.write_text(SERVICES + "\n" + "\n".join(before + today) + "\n")
    return NetworkEvidence([str(flows)], [str(audit)])(None, date(2026, 3, 22))


def test_a_rotated_s3_address_is_not_a_new_destination(tmp_path):
    found = _evidence(tmp_path, [_call("3.5.76.22", "S3", at(h, 15)) for h in range(9, 17)])
    assert found.contributions.empty


def test_an_address_in_ec2s_ranges_stays_keyed_by_its_address(tmp_path):
    found = _evidence(tmp_path, [_call("3.5.76.22", "EC2", at(10, 15))])
    terms = {t for (who, _), row in found.contributions.iterrows() for t, v in row.items() if v > 0}
    assert "network:new-destination" in terms
    reason = found.reasons[("ci:deployer", found.contributions.index[0][1], "network:new-destination")]
    assert "3.5.76.22:443 (EC2), a destination never seen in the cluster" in reason


def test_without_v5_the_quality_line_says_service_addresses_count_one_by_one():
    quality = {"flows": 10, "share_pod": 0.5, "share_node": 0.5, "share_none": 0.0}
    quality |= {"pods_leased": 1, "pods_without_address": 0}
    assert "without pkt-dst-aws-service (v5) each rotating address of an AWS service" in quality_text(quality, 2)
    assert "pkt-dst-aws-service" not in quality_text(quality, 5)


def test_a_service_field_that_is_no_aws_code_is_not_repeated_in_the_reason(tmp_path):
    # the field comes from a file: only AWS's upper-case codes are shown beside the address
    found = _evidence(tmp_path, [_call("3.5.76.22", "<b>[red]S3</b>", at(10, 15))])
    reason = found.reasons[("ci:deployer", found.contributions.index[0][1], "network:new-destination")]
    assert reason.endswith("sent 20 kB to 3.5.76.22:443, a destination never seen in the cluster")
