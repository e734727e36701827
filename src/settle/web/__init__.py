"""Pages Settle serves to people: the hosted checkout (and later the dashboard)."""
