"""iot_agents/dlms"""
