"""Request signing against botocore, and the checks the reference backend makes."""
