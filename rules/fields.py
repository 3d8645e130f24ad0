"""Sigma's field names for Kubernetes audit events, mapped to kaad's event table.

Sigma rules name the audit event's own dotted fields (``objectRef.resource``); kaad keeps a
flat table (:data:`events.schema.EVENT_SCHEMA`). A pySigma processing pipeline maps one to the
other, so rules are used as written. A rule naming a field the table does not keep, or
comparing a numeric field with a word, is refused with that reason instead of being rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigma.exceptions import SigmaTransformationError
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaCompareExpression, SigmaNumber, SigmaString

#: Sigma field -> column of the rules' view of the event table (rules/run.py builds the view).
#: Undotted ``apiGroup``, ``hostPath`` and ``capabilities`` are the names SigmaHQ's own
#: Kubernetes rules use; ``kaad.*`` names facts kaad derives that an audit event does not carry.
FIELDS: dict[str | None, str | list[str]] = {
    "auditID": "audit_id",
    "stage": "stage",
    "level": "level",
    "verb": "verb",
    "requestURI": "request_uri",
    "userAgent": "user_agent",
    "sourceIPs": "source_ips",
    "user.username": "identity",
    "user.groups": "user_groups",
    "impersonatedUser.username": "impersonated_user",
    "objectRef.resource": "target_resource",
    "objectRef.subresource": "target_subresource",
    "objectRef.namespace": "target_namespace",
    "objectRef.name": "target_name",
    "objectRef.apiGroup": "api_group",
    "objectRef.apiVersion": "api_version",
    "apiGroup": "api_group",
    "responseStatus.code": "response_code",
    "annotations.authorization.k8s.io/decision": "auth_decision",
    "annotations.authorization.k8s.io/reason": "auth_reason",
    "requestObject.kind": "request_object_kind",
    "requestObject.spec.hostPID": "pod_host_pid",
    "requestObject.spec.hostNetwork": "pod_host_network",
    "requestObject.spec.hostIPC": "pod_host_ipc",
    "requestObject.spec.containers.securityContext.privileged": "pod_privileged",
    "requestObject.spec.volumes.hostPath.path": "pod_host_paths",
    "hostPath": "pod_host_paths",
    "requestObject.spec.containers.securityContext.capabilities.add": "pod_capabilities",
    "capabilities": "pod_capabilities",
    "requestObject.spec.containers.image": "pod_images",
    "requestObject.roleRef.kind": "role_ref_kind",
    "requestObject.roleRef.name": "role_ref_name",
    "requestObject.subjects.name": "subject_names",
    "requestObject.spec.type": "service_type",
    "requestObject.spec.signerName": "csr_signer",
    "kaad.auditIDReused": "audit_id_reused",
    "kaad.forwardedUnverified": "forwarded_unverified",
    "kaad.execCommand": "exec_command",
    "kaad.sourceIP": "source_ip",
}

#: Columns holding lists: a condition on them holds when it holds for any element.
LIST_COLUMNS = frozenset(
    {"source_ips", "user_groups", "pod_host_paths", "pod_capabilities", "pod_images", "subject_names"}
)
#: Numeric columns: compared with numbers only.
NUMERIC_COLUMNS = frozenset({"response_code"})


@dataclass
class CheckFields(DetectionItemTransformation):
    """Refuse, with the reason, a detection item the event table cannot answer."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> SigmaDetection | SigmaDetectionItem | None:
        field = detection_item.field
        if field is None:
            raise SigmaTransformationError(
                "keyword search (a value with no field): kaad's event table has no raw text to search"
            )
        if field not in FIELDS:
            raise SigmaTransformationError(f"field {field!r} is not in kaad's event table (rules/fields.py)")
        if FIELDS[field] in NUMERIC_COLUMNS:
            for value in detection_item.value:
                if isinstance(value, SigmaNumber | SigmaCompareExpression):
                    continue
                if isinstance(value, SigmaString) and str(value).lstrip("-").isdigit():
                    continue
                raise SigmaTransformationError(
                    f"field {field!r} is a number; the rule compares it with {str(value)!r}, which no event can match"
                )
        return None


def audit_pipeline() -> ProcessingPipeline:
    """The processing pipeline from Sigma's audit field names to kaad's event columns."""
    return ProcessingPipeline(
        name="kaad Kubernetes audit fields",
        priority=20,
        items=[
            ProcessingItem(identifier="kaad_check_fields", transformation=CheckFields()),
            ProcessingItem(identifier="kaad_field_mapping", transformation=FieldMappingTransformation(dict(FIELDS))),
        ],
    )
