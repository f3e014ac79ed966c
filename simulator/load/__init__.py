"""``clicksim load``: offer a backend rising click rates until it breaks, with the figures.

``plan`` says what to offer (stages of rising rate, thresholds that define breaking),
``metrics`` summarises latencies, ``runner`` drives real devices and API calls at a
target and verifies afterwards that every acknowledged click was listed.
"""
