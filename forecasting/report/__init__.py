"""The HTML report: what it shows, its charts and its template."""
