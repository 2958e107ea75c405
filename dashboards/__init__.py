"""The door for supervisors and the public: the city's directory (offices with their
jurisdictions, the category taxonomy) and the service's health. HTTP only."""
