"""The embedded Orion-compatible NGSI-v2 context broker."""
