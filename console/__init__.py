"""The office console under /console: staff, supervisors and the triage desk sign in, work
their queue and act on cases in server-rendered pages (Chinese first, English on request)."""
