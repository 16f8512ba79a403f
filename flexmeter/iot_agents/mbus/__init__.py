"""iot_agents/mbus"""
