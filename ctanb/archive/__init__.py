"""The embedded archive: ObsCore storage, ingestion, simulation and the TAP service."""
