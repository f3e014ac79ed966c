"""The AWS IoT 1-Click Devices API on the wire: request signing and its checks."""
