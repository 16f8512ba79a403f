"""Provisioning from an inventory: service groups and devices (IoT Agent north API), static entities and
Device entities (NGSI-v2), subscriptions from ``orion_config/``; plan, apply, diff, export, delete.

Talks only the standard APIs, so the same inventory provisions the embedded stack and real FIWARE GEs.
See docs/provisioning.md. Import from the submodules (``operations``, ``inventory``, ``errors``...): this
package is imported by every `flexmeter` process and stays empty to keep start-up fast.
"""
