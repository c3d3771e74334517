"""The behavioural log: Segment-spec schemas, the batched durable ingest path and the /v1 API."""
