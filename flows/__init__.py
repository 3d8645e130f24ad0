"""Network evidence: VPC flow logs read, joined to pod address leases from the audit log."""
