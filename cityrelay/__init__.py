"""The wiring of CityRelay: the Flask app factory (``cityrelay.app``), settings, the Celery app,
the ``cityrelay`` command and the embedded runner behind ``cityrelay up``. Nothing below this
package imports it."""
