"""Local folders and object storage (s3, gs, az): locations, atomic file replacement, the storage root check."""
