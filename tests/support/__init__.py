"""What the tests share besides fixtures (those live in the conftest files): data and configs,
throwaway servers, the CLI as a subprocess, killed processes. Tests import from here, never from
another test module."""
