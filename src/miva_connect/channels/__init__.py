"""Channels: the apps that send merchants to us, and what they may read back."""
