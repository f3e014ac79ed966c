"""The conformance suite: check by check, where a backend departs from the Devices API."""
