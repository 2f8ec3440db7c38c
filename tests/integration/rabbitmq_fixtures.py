"""RabbitMQ fixtures (filled in with the RabbitMQ broker); imported by conftest.py."""
