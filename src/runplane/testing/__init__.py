"""In-memory fakes of every port, holding state; the contract suites prove
each beside its real backends."""
