"""Business rules. Services add and flush; the caller (a view or CLI command) commits once."""
