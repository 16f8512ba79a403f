"""The analytics: pure functions over readings (no I/O), each tested with known answers."""
