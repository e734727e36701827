"""Operations that touch invoices and payments together: creating an invoice with the
transaction that will pay it, changing what an unpaid invoice asks for, and (with payments)
settling, capturing and refunding. ``invoices`` and ``payments`` know nothing of each other;
this package coordinates them, inside the caller's one transaction."""
