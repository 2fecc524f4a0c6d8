"""Builder of the synthetic sample workspace (deterministic; nothing is committed as a blob)."""
