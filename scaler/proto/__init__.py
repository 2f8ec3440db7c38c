"""Generated from protos/externalscaler.proto by `make proto`; do not edit."""
