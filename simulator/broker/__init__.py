"""MQTT brokers for clicksim.

``simulator.broker.embedded`` runs one in-process (amqtt, mutual TLS, client id =
certificate CN, per-device topic ACL). Import it from there: this package imports
nothing, so that modules beside it do not pay for loading amqtt.
"""
