"""The replay engines: a plain reference engine and a numba kernel that agree request by request."""
