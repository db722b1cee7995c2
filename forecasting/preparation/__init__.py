"""From pulled rows to network inputs: validation and regular grids, windows, scaling, seasonality, future inputs."""
