"""clicksim: a test bench for backends of the AWS IoT 1-Click Devices API.

Layers, with imports pointing one way only::

    cli -> scenario / conformance / load / backend -> api, runtime -> device -> protocol

``device`` is sans-I/O: it reads no clock and touches no socket or file.
"""

__version__ = "0.1.0"
