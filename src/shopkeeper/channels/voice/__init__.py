"""Voice and call-centre records (SPEC §5): calls from a call system become interactions on the
customer's timeline (docs/calls.md)."""
