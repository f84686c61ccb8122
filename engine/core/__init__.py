"""The hook layer: the adapter table, block hooks, and the observers that record, capture and intervene."""
