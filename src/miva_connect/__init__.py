"""miva-connect: onboard Miva Merchant stores for a commerce platform."""

__version__ = "0.1.0"
