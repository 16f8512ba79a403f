"""iot_agents/connode"""
