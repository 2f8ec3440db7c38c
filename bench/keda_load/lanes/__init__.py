"""The load generators of the KEDA load benchmark: ghz phases, the stream holder, the activation
queues (one per backend kind, each with a stream on it)."""
