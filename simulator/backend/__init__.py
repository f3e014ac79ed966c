"""The reference backend of the AWS IoT 1-Click Devices API, as pure models first."""
