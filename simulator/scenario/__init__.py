"""Scenarios: YAML scripts of devices and API calls, checked, run and reported.

``loader`` turns a file into the ``model`` (refusing a bad one with file:line),
``variables`` and ``matchers`` say what ``${...}`` and ``expect`` mean, ``runner``
plays the steps against a ``target`` and ``report`` writes what happened.
"""
