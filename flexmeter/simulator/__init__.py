"""The Turin and Malmö pilots as meters that emit real protocol frames (``flexmeter simulate``, docs/simulator.md)."""
