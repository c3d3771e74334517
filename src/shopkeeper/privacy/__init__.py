"""Privacy guardrails: sensitive traits and their allowances, GDPR export and erasure."""
