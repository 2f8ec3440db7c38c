"""Kafka fixtures (filled in with the Kafka broker); imported by conftest.py."""
