"""The Reepay dialect, mounted at ``/v1``: customers by handle, invoices with order lines in
minor units, numeric error codes."""
