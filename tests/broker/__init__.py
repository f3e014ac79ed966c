"""The embedded MQTT broker: mutual TLS, client id = certificate CN, topic ACL."""
