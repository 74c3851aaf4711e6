"""The console's reads (issue 18): what each screen of the web console shows,
bounded and scoped to the caller's workspace. Read functions only; the rows
come from service.store.console, which queries the families' tables."""
