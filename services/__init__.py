"""What CityRelay does, one module per use case: filing a report, processing it into a case,
casework by offices, routing-rule changes, accounts and keys.

A service takes a SQLAlchemy session and plain values. It never commits, and it imports neither
Flask nor Celery: the unit of work of a web request or a task owns the transaction, and work to
do after commit is scheduled with ``models.session.enqueue_after_commit``."""

# Keeps the case_stats rows in step with case events in every process that uses services.
import services.statistics  # noqa: F401
