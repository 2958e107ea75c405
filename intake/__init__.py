"""The reporters' and integrators' door: the REST report API, Open311 GeoReport v2, the reporter
page and stored photos. HTTP only: every use case it calls lives in ``services``."""
